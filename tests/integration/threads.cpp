// Threaded tests (run under ThreadSanitizer in CI): concurrent publishers and
// subscribers on several lanes, and a multi-threaded server.
#include <catch2/catch.hpp>
#include <courier/courier.hpp>

#include "integration/support.hpp"

#include <asio/executor_work_guard.hpp>

#include <atomic>
#include <thread>

using namespace courier;
using namespace courier::test;
using namespace std::chrono_literals;

namespace {

// Counts deliveries and checks that sequence numbers only ever increase by one.
struct checking_sink final : sink {
    std::uint64_t last = 0;
    std::atomic<std::uint64_t> count{0};
    std::atomic<int> errors{0};
    bool offer(const message_ptr& m) override {
        if (m->seq() != last + 1) ++errors;
        last = m->seq();
        ++count;
        return true;
    }
    void dropped() override { ++errors; }
};

} // namespace

TEST_CASE("concurrent publishers and subscribers on four lanes", "[threads]") {
    constexpr int lanes = 4, publishers = 4, per_publisher = 5000, subs_per_lane = 5;
    broker hub{{.history = 100'000}};
    std::vector<std::unique_ptr<asio::io_context>> ios;
    std::vector<asio::executor_work_guard<asio::io_context::executor_type>> guards;
    for (int i = 0; i < lanes; ++i) {
        ios.push_back(std::make_unique<asio::io_context>(1));
        guards.emplace_back(ios.back()->get_executor());
    }
    std::vector<std::unique_ptr<checking_sink>> sinks;
    std::vector<subscription> subs(lanes * subs_per_lane * 2);
    std::atomic<int> subscribed{0};
    for (int l = 0; l < lanes; ++l)
        for (int k = 0; k < subs_per_lane * 2; ++k) {
            sinks.push_back(std::make_unique<checking_sink>());
            auto* s = sinks.back().get();
            auto* slot = &subs[l * subs_per_lane * 2 + k];
            const char* topic = k % 2 ? "odd" : "even";
            asio::post(*ios[l], [&, s, slot, l, topic] {  // subscribe on the lane
                read_result backlog;
                std::error_code ec;
                *slot = hub.subscribe("", topic, "earliest", *s, ios[l]->get_executor(), backlog, ec);
                for (auto& m : backlog.messages) s->offer(m);
                ++subscribed;
            });
        }
    std::vector<std::thread> threads;
    for (auto& io : ios) threads.emplace_back([&io] { io->run(); });
    while (subscribed < lanes * subs_per_lane * 2) std::this_thread::yield();

    std::vector<std::thread> pubs;
    for (int p = 0; p < publishers; ++p)
        pubs.emplace_back([&, p] {
            for (int i = 0; i < per_publisher; ++i) hub.publish("", i % 2 ? "odd" : "even", std::to_string(p * per_publisher + i));
        });
    for (auto& t : pubs) t.join();
    const std::uint64_t per_topic = publishers * per_publisher / 2;
    const auto end = std::chrono::steady_clock::now() + 60s;
    auto all_done = [&] {
        return std::all_of(sinks.begin(), sinks.end(), [&](auto& s) { return s->count == per_topic; });
    };
    while (!all_done() && std::chrono::steady_clock::now() < end) std::this_thread::sleep_for(5ms);
    for (int l = 0; l < lanes; ++l)
        asio::post(*ios[l], [&, l] {
            for (int k = 0; k < subs_per_lane * 2; ++k) subs[l * subs_per_lane * 2 + k].reset();
        });
    for (auto& g : guards) g.reset();
    for (auto& t : threads) t.join();
    for (auto& s : sinks) {
        CHECK(s->count == per_topic);
        CHECK(s->errors == 0);
    }
}

TEST_CASE("a four-thread server under concurrent long polls and publishes", "[threads]") {
    hub_server s({}, 4, {.history = 10'000});
    constexpr int messages = 2000, pollers = 8;
    std::atomic<int> finished{0}, errors{0};
    std::vector<std::thread> threads;
    for (int p = 0; p < pollers; ++p)
        threads.emplace_back([&] {
            asio::io_context io(1);
            client<long_polling> c(io.get_executor(), {.url = s.url("/lp"), .timeout = 5s});
            int expect = 0;
            c.subscribe("t", [&](const delivery& d) {
                if (d.data != std::to_string(expect)) ++errors;
                if (++expect == messages) c.stop();
            }, "earliest");
            io.run_for(120s);
            if (expect == messages) ++finished;
        });
    std::thread publisher([&] {
        raw_socket c(s.srv.port());
        for (int i = 0; i < messages; ++i)
            if (c.exchange(post("/lp/t", std::to_string(i))).status != 200) ++errors;
    });
    publisher.join();
    for (auto& t : threads) t.join();
    CHECK(finished == pollers);
    CHECK(errors == 0);
}
