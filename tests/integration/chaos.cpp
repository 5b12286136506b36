// The chaos test: every transport at once on one server with two io
// threads, messages published at a steady rate from another thread, clients
// cut at random moments (short cuts: resume from the last id; long outages:
// the history has moved on, so a gap must be reported). At the end every
// client holds every message once and in order, except where it was told
// about a gap.
#include <catch2/catch.hpp>
#include <courier/courier.hpp>

#include "integration/support.hpp"

#include <atomic>
#include <functional>
#include <memory>
#include <random>
#include <thread>

using namespace courier;
using namespace courier::test;
using namespace std::chrono_literals;

namespace {

// What one subscriber saw, checked as it arrives.
struct ledger {
    std::string name;
    long long next = 0;          // the n expected next
    long long received = 0;
    long long skipped = 0;       // messages passed over after a gap
    int gaps = 0;
    bool gap_pending = false;    // a gap was reported and no message came since
    int duplicates = 0, unexplained_skips = 0;
    std::string last_id;

    void gap() {
        ++gaps;
        gap_pending = true;
    }
    void message(const delivery& d) {
        const long long n = n_of(d.data);
        ++received;
        last_id.assign(d.id);
        if (n == next) {
            ++next;
        } else if (n < next) {
            ++duplicates;  // or out of order: either way seen before its turn passed
        } else if (gap_pending) {
            skipped += n - next;  // the server said so: delivery restarts at its oldest message
            next = n + 1;
        } else {
            ++unexplained_skips;
            next = n + 1;
        }
        gap_pending = false;
    }
};

// One subscriber on any transport, restartable: a long outage stops its
// client and builds a new one later that resumes from the last id seen.
struct agent {
    std::shared_ptr<ledger> book;
    std::function<void(std::string since)> start;
    std::function<void()> cut;   // drop the connection; the client resumes by itself
    std::function<void()> stop;
    bool down = false;
    std::chrono::steady_clock::time_point back_at;
    int outages = 0;
};

/// An agent on `url`; it adds to `book` when given (the same subscriber,
/// moved to another server), else to a ledger of its own.
template <class T>
agent make_agent(asio::io_context& io, std::string url, std::string name, std::shared_ptr<ledger> book = nullptr) {
    agent a;
    a.book = book ? std::move(book) : std::make_shared<ledger>();
    a.book->name = std::move(name);
    auto c = std::make_shared<std::unique_ptr<client<T>>>();
    a.start = [&io, url, c, book = a.book](std::string since) {
        *c = std::make_unique<client<T>>(io.get_executor(), client_options{.url = url, .interval = 20ms,
                                                                          .backoff_min = 5ms, .backoff_max = 40ms});
        (*c)->on_gap([book](std::string_view, std::string_view) { book->gap(); });
        (*c)->subscribe("chaos", [book](const delivery& d) { book->message(d); }, std::move(since));
    };
    a.cut = [c] { if (*c) (*c)->reconnect(); };
    a.stop = [c] { if (*c) (*c)->stop(); c->reset(); };
    return a;
}

} // namespace

TEST_CASE("chaos: four transports, random cuts and outages at a steady publish rate: every message once in order, "
          "or an explicit gap", "[chaos][threads]") {
    // 2,000 messages a second for 6 s; the history holds half a second, so
    // an outage of 0.8 s or more must end in a gap.
    constexpr int rate = 2000, seconds = 6, per_transport = 6;
    constexpr long long total = rate * seconds;
    broker hub({.history = rate / 2});
    server srv{hub, {.address = "127.0.0.1", .port = 0, .threads = 2}};
    srv.mount(channel<polling>{"/poll"});
    srv.mount(channel<long_polling>{"/lp"});
    srv.mount(channel<sse>{"/sse"});
    srv.mount(channel<websocket>{"/ws"});
    srv.start();
    const auto base = "http://127.0.0.1:" + std::to_string(srv.port());

    asio::io_context io(1);
    std::vector<agent> agents;
    for (int i = 0; i < per_transport; ++i) {
        agents.push_back(make_agent<polling>(io, base + "/poll", "poll-" + std::to_string(i)));
        agents.push_back(make_agent<long_polling>(io, base + "/lp", "lp-" + std::to_string(i)));
        agents.push_back(make_agent<sse>(io, base + "/sse", "sse-" + std::to_string(i)));
        agents.push_back(make_agent<websocket>(io, base + "/ws", "ws-" + std::to_string(i)));
    }
    for (auto& a : agents) a.start("earliest");
    REQUIRE(run_until(io, [&] { return srv.metrics().read(metrics::per_transport::subscribers,
                                                          metrics::slot<sse>()) == per_transport; }));

    // The publisher: a steady rate from its own thread, in 5 ms ticks.
    std::atomic<long long> published{0};
    std::thread publisher([&] {
        const auto start = std::chrono::steady_clock::now();
        for (long long n = 0; n < total;) {
            const auto due = start + std::chrono::microseconds(n * 1'000'000 / rate);
            std::this_thread::sleep_until(due);
            for (int k = 0; k < rate / 200 && n < total; ++k, ++n)
                hub.publish("", "chaos", R"({"n":)" + std::to_string(n) + "}");
            published.store(n, std::memory_order_relaxed);
        }
    });

    std::mt19937 rng(Catch::rngSeed());
    int cuts = 0, outages = 0;
    auto pick = [&]() -> agent& { return agents[rng() % agents.size()]; };
    const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
    auto next_outage = std::chrono::steady_clock::now() + 500ms;
    while (std::chrono::steady_clock::now() < end) {
        io.run_for(3ms);
        const auto now = std::chrono::steady_clock::now();
        if (rng() % 3 == 0) {  // about 100 short cuts a second
            auto& a = pick();
            if (!a.down) {
                a.cut();
                ++cuts;
            }
        }
        if (now >= next_outage && now + 1500ms < end) {  // a long outage every 0.6 s
            auto& a = pick();
            if (!a.down) {
                a.stop();
                a.down = true;
                a.back_at = now + 800ms + std::chrono::milliseconds(rng() % 300);
                ++a.outages;
                ++outages;
            }
            next_outage = now + 600ms;
        }
        for (auto& a : agents)
            if (a.down && now >= a.back_at) {
                a.down = false;
                a.start(a.book->last_id.empty() ? "earliest" : a.book->last_id);
            }
    }
    publisher.join();
    for (auto& a : agents)
        if (a.down) {
            a.down = false;
            a.start(a.book->last_id.empty() ? "earliest" : a.book->last_id);
        }
    const bool all_done = run_until(io, [&] {
        return std::all_of(agents.begin(), agents.end(), [](const agent& a) { return a.book->next == total; });
    }, 30s);

    CHECK(published.load() == total);
    CHECK(all_done);
    CHECK(cuts > 100);
    CHECK(outages >= 5);
    long long delivered = 0, skipped = 0;
    for (const auto& a : agents) {
        const auto& b = *a.book;
        INFO(b.name << ": next " << b.next << ", received " << b.received << ", gaps " << b.gaps << ", outages "
                    << a.outages);
        CHECK(b.next == total);
        CHECK(b.duplicates == 0);
        CHECK(b.unexplained_skips == 0);
        CHECK(b.received + b.skipped == total);
        if (a.outages > 0) CHECK(b.gaps > 0);  // an outage longer than the history is reported
        delivered += b.received;
        skipped += b.skipped;
    }
    std::printf("chaos: %lld messages x %zu clients, %d cuts, %d outages; %lld delivered, %lld passed over after gaps\n",
                total, agents.size(), cuts, outages, delivered, skipped);
    for (auto& a : agents) a.stop();
    srv.stop();
    srv.wait();
}

TEST_CASE("graceful stop: streams end properly, and clients resume on another server of the same broker without loss",
          "[stop][threads]") {
    // Two servers on one broker, as behind a load balancer: A stops while
    // messages flow; its clients come back on B from their last id.
    broker hub({.history = 10'000});
    auto a = std::make_unique<server>(hub, server_options{.address = "127.0.0.1", .port = 0, .threads = 2});
    server b{hub, {.address = "127.0.0.1", .port = 0, .threads = 2}};
    for (auto* s : {a.get(), &b}) {
        s->mount(channel<polling>{"/poll"});
        s->mount(channel<long_polling>{"/lp"});
        s->mount(channel<sse>{"/sse"});
        // The raw WebSocket below never answers A's close: do not wait 5 s for it.
        s->mount(channel<websocket>{"/ws", {.close_timeout = 200ms}});
        s->start();
    }
    const auto url = [](const server& s, std::string_view mount) {
        return "http://127.0.0.1:" + std::to_string(s.port()) + std::string(mount);
    };

    asio::io_context io(1);
    std::vector<agent> on_a, on_b;
    for (std::string mount : {"/poll", "/lp", "/sse", "/ws"}) {
        auto make = [&](const server& s, std::shared_ptr<ledger> book) {
            if (mount == "/poll") return make_agent<polling>(io, url(s, mount), mount, std::move(book));
            if (mount == "/lp") return make_agent<long_polling>(io, url(s, mount), mount, std::move(book));
            if (mount == "/sse") return make_agent<sse>(io, url(s, mount), mount, std::move(book));
            return make_agent<websocket>(io, url(s, mount), mount, std::move(book));
        };
        on_a.push_back(make(*a, nullptr));
        on_b.push_back(make(b, on_a.back().book));  // the same subscriber, moved to B
    }
    for (auto& ag : on_a) ag.start("earliest");
    // A held long poll and a raw WebSocket see how A ends.
    raw_socket held(a->port());
    held.send(get("/lp/quiet?since=earliest&timeout=60"));
    raw_socket ws(a->port());
    ws.send("GET /ws/chaos HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n");
    REQUIRE(ws.read(true).status == 101);
    REQUIRE(run_until(io, [&] { return a->metrics().read(metrics::per_transport::subscribers,
                                                        metrics::slot<long_polling>()) >= 1; }));

    constexpr long long total = 3000;
    long long n = 0;
    auto publish_some = [&](long long count) {
        for (long long end = n + count; n < end; ++n) hub.publish("", "chaos", R"({"n":)" + std::to_string(n) + "}");
    };
    publish_some(1000);
    run_until(io, [] { return false; }, 50ms);
    // Stop A from another thread while publishing goes on.
    std::thread stopper([&] {
        a->stop();
        a->wait();
    });
    publish_some(1000);
    stopper.join();
    publish_some(total - n);

    // A's ends: the held long poll was answered, the WebSocket got 1001.
    auto answer = held.read();
    CHECK(answer.status == 200);
    // A close frame (0x88), 2 + 13 bytes: 1001 and the reason "shutting_down".
    const std::string close_1001 = std::string("\x88\x0f\x03\xe9", 4) + "shutting_down";
    CHECK(read_until(ws, close_1001).ends_with(close_1001));

    for (auto& ag : on_a) ag.stop();
    a.reset();
    for (auto& ag : on_b) ag.start(ag.book->last_id.empty() ? "earliest" : ag.book->last_id);
    const bool done = run_until(io, [&] {
        return std::all_of(on_b.begin(), on_b.end(), [](const agent& ag) { return ag.book->next == total; });
    }, 20s);
    CHECK(done);
    for (const auto& ag : on_b) {
        const auto& book = *ag.book;
        INFO(book.name << ": next " << book.next << ", received " << book.received << ", gaps " << book.gaps);
        CHECK(book.next == total);
        CHECK(book.gaps == 0);  // the history covers the move: nothing passed over
        CHECK(book.duplicates == 0);
        CHECK(book.unexplained_skips == 0);
        CHECK(book.received == total);
    }
    for (auto& ag : on_b) ag.stop();
    b.stop();
    b.wait();
}
