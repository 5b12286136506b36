// Integration tests of channel<sse> and client<sse>: raw sockets, curl and
// the C++ client; resume, gaps, multi-topic streams, slow consumers.
#include <catch2/catch.hpp>
#include <courier/courier.hpp>

#include "integration/support.hpp"

#include <cstdio>
#include <random>

using namespace courier;
using namespace courier::test;
using namespace std::chrono_literals;

namespace {

struct sse_server {
    explicit sse_server(sse::options o = {}, http_options http = {}, broker_options b = {}, std::size_t threads = 2)
        : hub(b), srv(hub, server_options{.address = "127.0.0.1", .port = 0, .threads = threads, .http = std::move(http)}) {
        srv.mount(channel<sse>{"/sse", o});
        srv.start();
    }
    ~sse_server() {
        srv.stop();
        srv.wait();
    }
    std::string url() const { return "http://127.0.0.1:" + std::to_string(srv.port()) + "/sse"; }
    broker hub;
    server srv;
};


} // namespace

TEST_CASE("SSE streams the retry line, then id and data per message", "[sse]") {
    sse_server s;
    auto first = s.hub.publish("", "room", R"({"a":1})");
    raw_socket c(s.srv.port());
    c.send(get("/sse/room?since=earliest"));
    auto text = read_until(c, "retry: 2000\n\n");  // head + retry block
    CHECK(text.starts_with("HTTP/1.1 200 OK\r\n"));
    CHECK(text.find("Content-Type: text/event-stream\r\n") != std::string::npos);
    CHECK(text.find("Cache-Control: no-cache\r\n") != std::string::npos);
    CHECK(text.find("X-Accel-Buffering: no\r\n") != std::string::npos);
    CHECK(text.find("Content-Length") == std::string::npos);
    text += read_until(c, R"("data":{"a":1}})");
    CHECK(text.find("\r\n\r\nretry: 2000\n\nid: earliest\n\nid: " + std::string(first.msg->id()) + "\ndata: " +
                    std::string(first.msg->envelope()) + "\n\n") != std::string::npos);
    auto second = s.hub.publish("", "room", "[2]");
    auto live = read_until(c, "[2]}\n\n");
    CHECK(live.find("id: " + std::string(second.msg->id()) + "\ndata: " + std::string(second.msg->envelope()) + "\n\n") !=
          std::string::npos);
}

TEST_CASE("SSE resumes from Last-Event-ID, which wins over since", "[sse]") {
    sse_server s;
    std::vector<std::string> ids;
    for (int i = 0; i < 4; ++i) ids.emplace_back(s.hub.publish("", "t", std::to_string(i)).msg->id());
    raw_socket c(s.srv.port());
    c.send("GET /sse/t?since=" + ids[0] + " HTTP/1.1\r\nHost: t\r\nLast-Event-ID: " + ids[2] + "\r\n\r\n");
    auto text = read_until(c, "\"data\":3}");
    CHECK(text.find("\"data\":1}") == std::string::npos);
    CHECK(text.find("\"data\":2}") == std::string::npos);
    CHECK(text.find("id: " + ids[3]) != std::string::npos);
    CHECK(text.find("event: gap") == std::string::npos);

    raw_socket d(s.srv.port());
    d.send(get("/sse/t?since=" + ids[1]));
    auto from_since = read_until(d, "\"data\":3}");
    CHECK(from_since.find("\"data\":1}") == std::string::npos);
    CHECK(from_since.find("\"data\":2}") != std::string::npos);
}

TEST_CASE("SSE announces a gap before the first message", "[sse]") {
    sse_server s({}, {}, {.history = 2});
    for (int i = 0; i < 5; ++i) s.hub.publish("", "t", std::to_string(i));
    raw_socket c(s.srv.port());
    c.send("GET /sse/t HTTP/1.1\r\nHost: t\r\nLast-Event-ID: old-1\r\n\r\n");
    auto text = read_until(c, "\"data\":4}");
    const auto gap = text.find("event: gap\ndata: {\"topic\":\"t\",\"next\":\"");
    REQUIRE(gap != std::string::npos);
    CHECK(gap < text.find("\"data\":3}"));
    CHECK(text.find("\"data\":2}") == std::string::npos);
}

TEST_CASE("SSE sends keepalive comments after silence", "[sse]") {
    sse_server s({.keepalive = 100ms});
    raw_socket c(s.srv.port());
    c.send(get("/sse/t"));
    auto text = read_until(c, ": keepalive\n\n");
    CHECK(text.find(": keepalive\n\n") != std::string::npos);
}

TEST_CASE("SSE carries several topics with a cursor per topic in the id", "[sse]") {
    sse_server s;
    raw_socket c(s.srv.port());
    c.send(get("/sse?topic=a&topic=b"));
    read_until(c, "retry: 2000\n\n");
    auto a1 = s.hub.publish("", "a", "1").msg;
    auto b1 = s.hub.publish("", "b", "2").msg;
    auto text = read_until(c, R"("topic":"b","data":2})");
    const auto composite = std::string(a1->id()) + "_" + std::string(b1->id());
    REQUIRE(text.find("id: " + composite + "\ndata: " + std::string(b1->envelope())) != std::string::npos);

    // One "earliest" stands for every topic of the stream.
    raw_socket all(s.srv.port());
    all.send(get("/sse?topic=a&topic=b&since=earliest"));
    auto everything = read_until(all, R"("topic":"b","data":2})");
    CHECK(everything.find(R"("topic":"a","data":1})") != std::string::npos);

    // Resuming from the composite id loses nothing and repeats nothing.
    auto a2 = s.hub.publish("", "a", "3").msg;
    raw_socket r(s.srv.port());
    r.send("GET /sse?topic=a&topic=b HTTP/1.1\r\nHost: t\r\nLast-Event-ID: " + composite + "\r\n\r\n");
    auto resumed = read_until(r, R"("data":3})");
    CHECK(resumed.find(R"("data":1})") == std::string::npos);
    CHECK(resumed.find(R"("data":2})") == std::string::npos);
    CHECK(resumed.find("id: " + std::string(a2->id()) + "_" + std::string(b1->id()) + "\n") != std::string::npos);
}

TEST_CASE("SSE refuses bad requests with the protocol's errors", "[sse][errors]") {
    http_options http;
    http.authorize = [](std::string_view token, action, std::string_view) -> authorization {
        return token == "ok" ? authorization{} : authorization{error::unauthorized, {}};
    };
    sse_server s({.max_topics = 2}, std::move(http));
    auto status = [&](std::string_view req) {
        raw_socket c(s.srv.port());
        return c.exchange(req).status;
    };
    CHECK(status(get("/sse/bad%20topic?access_token=ok")) == 400);
    CHECK(status(get("/sse?access_token=ok")) == 400);
    CHECK(status(get("/sse?topic=a&topic=a&access_token=ok")) == 400);
    CHECK(status(get("/sse?topic=a&topic=b&topic=c&access_token=ok")) == 429);
    CHECK(status(get("/sse/t?since=no%20way&access_token=ok")) == 400);
    CHECK(status(get("/sse?topic=a&topic=b&since=x-1&access_token=ok")) == 400);  // one cursor for two topics
    CHECK(status(get("/sse/t")) == 401);
    CHECK(status(get("/sse/t?access_token=nope")) == 401);
}

TEST_CASE("curl -N shows each published message as an event", "[sse][curl]") {
    sse_server s;
    s.hub.publish("", "room", R"({"text":"hello"})");
    const std::string cmd = "curl -sN --max-time 2 '" + s.url() + "/room?since=earliest'";
    std::string out;
    if (FILE* p = ::popen(cmd.c_str(), "r")) {
        char buf[4096];
        std::size_t n;
        while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
        ::pclose(p);
    }
    CHECK(out.starts_with("retry: 2000\n\nid: earliest\n\nid: "));
    CHECK(out.find(R"(data: {"id":")") != std::string::npos);
    CHECK(out.find(R"("topic":"room","data":{"text":"hello"}})") != std::string::npos);
}

TEST_CASE("slow SSE consumers are disconnected, the others keep their stream", "[sse][slow]") {
    // 8 MB in all: more than the kernel's socket buffers (up to 4 MB on
    // loopback) can absorb for a reader that stopped.
    constexpr int fast_clients = 20, stalled_clients = 5, messages = 4000;
    sse_server s({.queue_bytes = 64 * 1024}, {}, {.history = 10'000});
    std::vector<std::unique_ptr<raw_socket>> stalled;
    for (int i = 0; i < stalled_clients; ++i) {
        stalled.push_back(std::make_unique<raw_socket>(s.srv.port(), 5s, 4096));  // small window, never read
        stalled.back()->send(get("/sse/t"));
    }
    asio::io_context io(1);
    std::vector<std::unique_ptr<client<sse>>> fast;
    std::vector<int> got(fast_clients, 0);
    int errors = 0;
    for (int i = 0; i < fast_clients; ++i) {
        fast.push_back(std::make_unique<client<sse>>(io.get_executor(), client_options{.url = s.url()}));
        fast.back()->on_error([&](std::string_view, std::error_code) { ++errors; });
        fast.back()->subscribe("t", [&, i](const delivery&) { ++got[i]; });
    }
    REQUIRE(run_until(io, [&] { return s.srv.connections() == fast_clients + stalled_clients; }));
    io.run_for(100ms);
    const std::string big = "\"" + std::string(2000, 'x') + "\"";
    auto all_got = [&](int n) { return std::all_of(got.begin(), got.end(), [n](int g) { return g == n; }); };
    for (int i = 0; i < messages; ++i) {
        s.hub.publish("", "t", big);
        if (i % 20 == 19) run_until(io, [&] { return all_got(i + 1); });  // the fast ones keep up
    }
    run_until(io, [&] { return all_got(messages); });
    CAPTURE(got[0], s.srv.connections());
    CHECK(all_got(messages));
    CHECK(errors == 0);
    // The stalled ones were cut off: each reaches EOF once drained, having
    // received less than was published.
    for (auto& sock : stalled) {
        std::size_t drained = 0;
        for (auto more = sock->read_some(); !more.empty(); more = sock->read_some()) drained += more.size();
        CHECK(drained < std::size_t(messages) * big.size());
    }
    CHECK(s.srv.connections() == fast_clients);
    // The counters say so: every stalled stream was a slow consumer, and the
    // fast ones got every message.
    const auto& m = s.srv.metrics();
    const auto slot = metrics::slot<sse>();
    CHECK(m.read(metrics::per_transport::slow_consumer_disconnects, slot) == stalled_clients);
    CHECK(m.read(metrics::per_transport::messages_delivered, slot) >= std::uint64_t(fast_clients) * messages);
    CHECK(m.read(metrics::per_transport::subscribers, slot) == fast_clients);
    CHECK(m.read(metrics::per_transport::subscribers_total, slot) == fast_clients + stalled_clients);
    CHECK(m.read(metrics::per_transport::messages_discarded, slot) > 0);
    for (auto& c : fast) c->stop();
}

TEST_CASE("client<sse> resumes with Last-Event-ID and reports gaps", "[sse][client]") {
    asio::io_context io(1);
    auto first = std::make_unique<sse_server>();
    const auto port = first->srv.port();
    client<sse> c(io.get_executor(), {.url = first->url(), .backoff_min = 20ms, .backoff_max = 100ms});
    std::vector<int> got;
    int gaps = 0;
    c.on_gap([&](std::string_view, std::string_view) { ++gaps; });
    c.subscribe("t", [&](const delivery& d) { got.push_back(n_of(d.data)); }, "earliest");
    first->hub.publish("", "t", R"({"n":1})");
    REQUIRE(run_until(io, [&] { return got.size() == 1; }));
    c.reconnect();  // a dropped connection: resume without loss or repeat
    first->hub.publish("", "t", R"({"n":2})");
    REQUIRE(run_until(io, [&] { return got.size() == 2; }));
    CHECK(gaps == 0);
    first.reset();

    broker hub2;  // a new server life: the old cursor is a gap
    server srv2{hub2, {.address = "127.0.0.1", .port = port, .threads = 1}};
    srv2.mount(channel<sse>{"/sse", {.retry = 50ms}});
    srv2.start();
    hub2.publish("", "t", R"({"n":3})");
    REQUIRE(run_until(io, [&] { return got.size() == 3; }));
    CHECK(got == std::vector<int>{1, 2, 3});
    CHECK(gaps == 1);
    c.stop();
    srv2.stop();
    srv2.wait();
}

TEST_CASE("a stream cut before its first message resumes from where it started", "[sse][client]") {
    sse_server s;
    asio::io_context io(1);
    client<sse> c(io.get_executor(), {.url = s.url()});
    std::vector<int> got;
    c.subscribe("t", [&](const delivery& d) { got.push_back(n_of(d.data)); });  // from now
    REQUIRE(run_until(io, [&] { return s.srv.connections() == 1; }));
    io.run_for(100ms);  // the stream's start id has arrived
    c.reconnect();
    s.hub.publish("", "t", R"({"n":7})");  // before the new stream exists
    REQUIRE(run_until(io, [&] { return got.size() == 1; }, 5s));
    CHECK(got == std::vector<int>{7});
    c.stop();
}

TEST_CASE("100,000 messages to 50 SSE clients cut at random moments: every message once, in order",
          "[sse][load]") {
    constexpr int messages = 100'000, clients = 50;
    sse_server s({}, {}, {.history = 20'000}, 1);
    asio::io_context io(1);
    std::vector<std::unique_ptr<client<sse>>> subs;
    std::vector<int> next(clients, 0);
    int gaps = 0, out_of_order = 0;
    for (int i = 0; i < clients; ++i) {
        subs.push_back(std::make_unique<client<sse>>(io.get_executor(),
                                                     client_options{.url = s.url(), .backoff_min = 10ms, .backoff_max = 50ms}));
        subs.back()->on_gap([&](std::string_view, std::string_view) { ++gaps; });
        subs.back()->subscribe("load", [&, i](const delivery& d) {
            if (n_of(d.data) != next[i]) ++out_of_order;
            next[i] = n_of(d.data) + 1;
        }, "earliest");
    }
    std::mt19937 rng(42);
    int sent = 0, cuts = 0;
    const auto deadline = std::chrono::steady_clock::now() + 300s;
    auto slowest = [&] { return *std::min_element(next.begin(), next.end()); };
    while (std::chrono::steady_clock::now() < deadline) {
        // Publish in bursts, but never more than half the history ahead of
        // the slowest client: this test is about cuts, not about history.
        for (int k = 0; k < 500 && sent < messages && sent - slowest() < 10'000; ++k, ++sent)
            s.hub.publish("", "load", R"({"n":)" + std::to_string(sent) + "}");
        if (sent < messages && rng() % 8 == 0) {
            subs[rng() % clients]->reconnect();
            ++cuts;
        }
        io.run_for(2ms);
        if (slowest() == messages) break;
    }
    CHECK(sent == messages);
    CHECK(cuts > 10);
    CHECK(gaps == 0);
    CHECK(out_of_order == 0);
    for (int i = 0; i < clients; ++i) CHECK(next[i] == messages);
    for (auto& c : subs) c->stop();
}
