// Integration tests of client<polling> and client<long_polling> against a
// real server: delivery, publish, resume, gaps, errors, and the 100,000
// message exactly-once run.
#include <catch2/catch.hpp>
#include <courier/courier.hpp>

#include "integration/support.hpp"

#include <asio/steady_timer.hpp>

#include <random>

using namespace courier;
using namespace courier::test;
using namespace std::chrono_literals;

TEMPLATE_TEST_CASE("client subscribes, publishes and receives in order", "[client]", polling, long_polling) {
    hub_server s;
    asio::io_context io(1);
    const std::string mount = std::is_same_v<TestType, polling> ? "/poll" : "/lp";
    client<TestType> c(io.get_executor(), {.url = s.url(mount), .interval = 20ms, .timeout = 5s});
    std::vector<std::string> got;
    c.subscribe("room", [&](const delivery& d) {
        CHECK(d.topic == "room");
        got.emplace_back(d.data);
    }, "earliest");
    std::vector<std::string> ids;
    for (int i = 0; i < 3; ++i) {
        c.async_publish("room", R"({"n":)" + std::to_string(i) + "}", [&](std::error_code ec, std::string id) {
            CHECK_FALSE(ec);
            ids.push_back(id);
        });
        REQUIRE(run_until(io, [&] { return ids.size() == std::size_t(i + 1); }));
    }
    REQUIRE(run_until(io, [&] { return got.size() == 3; }));
    CHECK(got == std::vector<std::string>{R"({"n":0})", R"({"n":1})", R"({"n":2})"});
    CHECK(c.cursor("room") == ids.back());
    c.stop();
}

TEST_CASE("client reports errors and ends a subscription on a permanent one", "[client]") {
    http_options http;
    http.authorize = [](std::string_view token, action, std::string_view) -> authorization {
        return token == "good" ? authorization{{}, "t"} : authorization{error::unauthorized, {}};
    };
    hub_server s(std::move(http));
    asio::io_context io(1);
    client<long_polling> bad(io.get_executor(), {.url = s.url("/lp"), .token = "bad"});
    std::vector<std::error_code> errors;
    bad.on_error([&](std::string_view, std::error_code ec) { errors.push_back(ec); });
    bad.subscribe("room", [](const delivery&) {});
    std::error_code pub_ec;
    bool published = false;
    bad.async_publish("room", "1", [&](std::error_code ec, std::string) { pub_ec = ec, published = true; });
    REQUIRE(run_until(io, [&] { return !errors.empty() && published; }));
    CHECK(errors.front() == error::unauthorized);
    CHECK(pub_ec == error::unauthorized);
    io.run_for(200ms);
    CHECK(errors.size() == 1);  // not retried

    client<long_polling> good(io.get_executor(), {.url = s.url("/lp"), .token = "good"});
    std::error_code bad_json;
    bool done = false;
    good.async_publish("room", "{not json", [&](std::error_code ec, std::string) { bad_json = ec, done = true; });
    REQUIRE(run_until(io, [&] { return done; }));
    CHECK(bad_json == error::invalid_json);
    CHECK_THROWS_AS(client<polling>(io.get_executor(), {.url = "ftp://x"}), std::invalid_argument);
    CHECK_THROWS_AS(good.subscribe("bad topic", [](const delivery&) {}), std::invalid_argument);
}

TEST_CASE("client resumes after a server restart and reports the gap", "[client][resume]") {
    asio::io_context io(1);
    auto first = std::make_unique<hub_server>();
    const auto port = first->srv.port();
    client<long_polling> c(io.get_executor(), {.url = first->url("/lp"), .timeout = 2s, .backoff_min = 20ms, .backoff_max = 100ms});
    std::vector<int> got;
    std::vector<std::string> gaps;
    c.on_gap([&](std::string_view topic, std::string_view) { gaps.emplace_back(topic); });
    c.subscribe("t", [&](const delivery& d) { got.push_back(n_of(d.data)); }, "earliest");
    first->hub.publish("", "t", R"({"n":1})");
    REQUIRE(run_until(io, [&] { return got.size() == 1; }));
    first.reset();  // the server goes away; the client retries

    // A new server life on the same port: the old cursor is unknown to it.
    broker hub2;
    server srv2{hub2, {.address = "127.0.0.1", .port = port, .threads = 1}};
    srv2.mount(channel<long_polling>{"/lp"});
    srv2.start();
    hub2.publish("", "t", R"({"n":2})");
    REQUIRE(run_until(io, [&] { return got.size() == 2; }));
    CHECK(got == std::vector<int>{1, 2});
    CHECK(gaps == std::vector<std::string>{"t"});
    c.stop();
    srv2.stop();
    srv2.wait();
}

TEST_CASE("100,000 messages to 50 long-poll clients: each gets every message once, in order",
          "[client][load]") {
    constexpr int messages = 100'000;
    constexpr int clients = 50;
    hub_server s({}, 1, {.history = 10'000});
    asio::io_context io(1);
    std::vector<std::unique_ptr<client<long_polling>>> subs;
    std::vector<int> next(clients, 0);
    int errors = 0, out_of_order = 0;
    for (int i = 0; i < clients; ++i) {
        subs.push_back(std::make_unique<client<long_polling>>(io.get_executor(), client_options{.url = s.url("/lp"), .timeout = 5s}));
        subs.back()->on_gap([&](std::string_view, std::string_view) { ++errors; });
        subs.back()->subscribe("load", [&, i](const delivery& d) {
            if (n_of(d.data) != next[i]) ++out_of_order;
            next[i] = n_of(d.data) + 1;
        }, "earliest");
    }
    // One publisher, one message in flight at a time, so "n" order is id order.
    client<long_polling> pub(io.get_executor(), {.url = s.url("/lp")});
    int sent = 0;
    std::function<void()> send_next = [&] {
        if (sent == messages) return;
        pub.async_publish("load", R"({"n":)" + std::to_string(sent) + "}", [&](std::error_code ec, std::string) {
            if (ec) ++errors;
            ++sent;
            send_next();
        });
    };
    send_next();
    const bool done = run_until(io, [&] {
        return sent == messages && std::all_of(next.begin(), next.end(), [&](int n) { return n == messages; });
    }, 300s);
    CHECK(done);
    CHECK(errors == 0);
    CHECK(out_of_order == 0);
    for (int i = 0; i < clients; ++i) CHECK(next[i] == messages);
    for (auto& c : subs) c->stop();
    pub.stop();
}
