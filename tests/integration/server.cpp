// Integration tests: a real server on loopback, driven with raw sockets.
#include <catch2/catch.hpp>
#include <courier/courier.hpp>

#include "integration/support.hpp"

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>

#include <filesystem>
#include <fstream>
#include <future>
#include <mutex>
#include <sstream>
#include <thread>

#include <unistd.h>

using namespace courier;
using namespace courier::test;
using namespace std::chrono_literals;

TEST_CASE("publish answers an id and polling returns the envelope", "[server]") {
    hub_server s;
    raw_socket c(s.srv.port());
    auto start = c.exchange(get("/poll/room"));
    REQUIRE(start.status == 200);
    CHECK(start.body.starts_with(R"({"messages":[],"next":")"));
    const auto since = json_string(start.body, "next");

    auto pub = c.exchange(post("/poll/room", R"({ "a" : 1 })"));
    REQUIRE(pub.status == 200);
    const auto id = json_string(pub.body, "id");
    CHECK(pub.body == R"({"id":")" + id + R"(","topic":"room"})");
    CHECK(pub.header("Content-Type") == "application/json");

    auto got = c.exchange(get("/poll/room?since=" + since));
    REQUIRE(got.status == 200);
    CHECK(got.body == R"({"messages":[{"id":")" + id + R"(","topic":"room","data":{"a":1}}],"next":")" + id + "\"}");

    auto none = c.exchange(get("/poll/room?since=" + id));
    CHECK(none.body == R"({"messages":[],"next":")" + id + "\"}");
}

TEST_CASE("a poll from an unknown cursor reports the gap", "[server]") {
    hub_server s;
    raw_socket c(s.srv.port());
    c.exchange(post("/poll/t", "1"));
    auto r = c.exchange(get("/poll/t?since=zzzzzzzz-9"));
    CHECK(r.body.ends_with(R"(,"gap":true})"));
    CHECK(r.body.find(R"("data":1)") != std::string::npos);
}

TEST_CASE("a long poll returns as soon as a message is published", "[server][long-poll]") {
    hub_server s;
    raw_socket waiter(s.srv.port()), publisher(s.srv.port());
    const auto since = json_string(waiter.exchange(get("/lp/t?timeout=0")).body, "next");
    waiter.send(get("/lp/t?since=" + since + "&timeout=20"));
    std::this_thread::sleep_for(50ms);  // the poll is held by now
    const auto t0 = std::chrono::steady_clock::now();
    publisher.exchange(post("/lp/t", R"("hello")"));
    auto r = waiter.read();
    const auto waited = std::chrono::steady_clock::now() - t0;
    REQUIRE(r.status == 200);
    CHECK(r.body.find(R"("data":"hello")") != std::string::npos);
    CHECK(waited < 5s);  // far below the 20 s timeout; the benchmark measures the real latency
    const double ms = std::chrono::duration<double, std::milli>(waited).count();
    WARN("long poll answered " << ms << " ms after the publish");
}

TEST_CASE("a long poll times out with an empty list and next = since", "[server][long-poll]") {
    hub_server s;
    raw_socket c(s.srv.port());
    const auto since = json_string(c.exchange(get("/lp/t?timeout=0")).body, "next");
    const auto t0 = std::chrono::steady_clock::now();
    auto r = c.exchange(get("/lp/t?since=" + since + "&timeout=1"));
    CHECK(std::chrono::steady_clock::now() - t0 >= 900ms);
    CHECK(r.body == R"({"messages":[],"next":")" + since + "\"}");
    CHECK(c.exchange(get("/lp/t?timeout=abc")).status == 400);
    CHECK(c.exchange(get("/lp/t?timeout=-1")).status == 400);
}

TEST_CASE("a client that leaves during a held long poll is let go at once", "[server][long-poll]") {
    hub_server s;
    {
        raw_socket c(s.srv.port());
        c.send(get("/lp/t?timeout=60"));
        const auto end = std::chrono::steady_clock::now() + 5s;
        while (s.srv.connections() != 1 && std::chrono::steady_clock::now() < end) std::this_thread::sleep_for(5ms);
        REQUIRE(s.srv.connections() == 1);
    }  // the client closes its socket
    const auto t0 = std::chrono::steady_clock::now();
    while (s.srv.connections() != 0 && std::chrono::steady_clock::now() - t0 < 5s) std::this_thread::sleep_for(5ms);
    CHECK(s.srv.connections() == 0);  // not after the 60 s timeout
}

TEST_CASE("a request pipelined behind a held long poll is answered after it", "[server][long-poll]") {
    hub_server s;
    raw_socket c(s.srv.port());
    const auto since = json_string(c.exchange(get("/poll/t")).body, "next");
    c.send(get("/lp/t?since=" + since + "&timeout=20"));
    std::this_thread::sleep_for(50ms);
    c.send(get("/poll/other"));  // arrives while the poll is held
    std::this_thread::sleep_for(50ms);
    raw_socket publisher(s.srv.port());
    publisher.exchange(post("/poll/t", "[1]"));
    auto held = c.read();
    auto next = c.read();
    CHECK(held.body.find(R"("data":[1])") != std::string::npos);
    CHECK(next.status == 200);
    CHECK(next.body.starts_with(R"({"messages":[],"next":")"));
}

TEST_CASE("a long poll answers a burst in one response", "[server][long-poll]") {
    hub_server s;
    raw_socket c(s.srv.port());
    const auto since = json_string(c.exchange(get("/poll/t")).body, "next");
    for (int i = 0; i < 5; ++i) c.exchange(post("/poll/t", std::to_string(i)));
    auto r = c.exchange(get("/lp/t?since=" + since));
    for (int i = 0; i < 5; ++i) CHECK(r.body.find("\"data\":" + std::to_string(i)) != std::string::npos);
}

TEST_CASE("every error PROTOCOL.md names, over the wire, with a JSON body", "[server][errors]") {
    http_options http;
    http.limits.body = 1024;
    hub_server s(std::move(http));
    auto check = [&](std::string_view request, unsigned status, std::string_view code) {
        raw_socket c(s.srv.port());
        auto r = c.exchange(request);
        INFO(request);
        CHECK(r.status == status);
        CHECK(json_string(r.body, "error") == code);
        CHECK(r.header("Content-Type") == "application/json");
    };
    check(post("/poll/t", "{nope"), 400, "invalid_json");
    check(post("/poll/t", "\"\xff\""), 400, "invalid_json");
    check(post("/poll/bad%20topic", "1"), 400, "invalid_topic");
    check(post("/poll/" + std::string(129, 'x'), "1"), 400, "invalid_topic");
    check(post("/poll", "1"), 400, "invalid_topic");
    check(get("/poll/t?since=bad%20cursor"), 400, "invalid_cursor");
    check(get("/poll/a/b"), 404, "not_found");
    check(get("/nothing/here"), 404, "not_found");
    check("PUT /poll/t HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\n\r\n1", 405, "method_not_allowed");
    check("POST /poll/t HTTP/1.1\r\nHost: t\r\n\r\n", 411, "length_required");
    check(post("/poll/t", std::string(1025, '1')), 413, "payload_too_large");
    check("POST /poll/t HTTP/1.1\r\nHost: t\r\nContent-Type: text/html\r\nContent-Length: 1\r\n\r\n1", 415,
          "unsupported_media_type");
    check("GET /poll/t HTTP/1.1\r\nHost: t\r\nX: " + std::string(17000, 'a') + "\r\n\r\n", 431, "header_too_large");
    std::string many = "GET /poll/t HTTP/1.1\r\nHost: t\r\n";
    for (int i = 0; i < 100; ++i) many += "X-" + std::to_string(i) + ": 1\r\n";
    check(many + "\r\n", 431, "header_too_large");  // 101 fields: over the count, not the size
    check("GET /poll/t HTTP/2.0\r\nHost: t\r\n\r\n", 505, "version_not_supported");
    check("POST /poll/t HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: br\r\n\r\n", 501, "not_implemented");
    check("GET /poll/t HTTP/1.1\r\n\r\n", 400, "bad_request");
    check(std::string_view("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11), 400, "bad_request");  // TLS hello
}

TEST_CASE("a malformed request closes its connection, not the others", "[server][errors]") {
    hub_server s;
    raw_socket good(s.srv.port()), bad(s.srv.port());
    CHECK(good.exchange(get("/poll/t")).status == 200);
    auto r = bad.exchange("GARBAGE\r\n\r\n");
    CHECK(r.status == 400);
    CHECK(r.header("Connection") == "close");
    CHECK(bad.closed_by_peer());
    CHECK(good.exchange(get("/poll/t")).status == 200);
}

TEST_CASE("a slow sender gets 408 and an idle connection is closed", "[server][timeouts]") {
    http_options http;
    http.request_timeout = 300ms;
    http.idle_timeout = 300ms;
    hub_server s(std::move(http));
    raw_socket slow(s.srv.port());
    slow.send("GET /poll/t HTTP/1.1\r\nHo");
    auto r = slow.read();
    CHECK(r.status == 408);
    CHECK(json_string(r.body, "error") == "request_timeout");

    raw_socket idle(s.srv.port());
    CHECK(idle.exchange(get("/poll/t")).status == 200);
    const auto t0 = std::chrono::steady_clock::now();
    CHECK(idle.closed_by_peer());
    CHECK(std::chrono::steady_clock::now() - t0 < 5s);

    // Stray line ends after a request keep the idle timeout running.
    raw_socket stray(s.srv.port());
    CHECK(stray.exchange(get("/poll/t") + "\r\n").status == 200);
    CHECK(stray.closed_by_peer());
}

TEST_CASE("keep-alive, pipelining, HEAD and 100-continue", "[server]") {
    hub_server s;
    raw_socket c(s.srv.port());
    c.send(post("/poll/t", "1") + post("/poll/t", "2") + get("/poll/t?since=earliest"));
    auto a = c.read(), b = c.read(), all = c.read();
    CHECK(a.status == 200);
    CHECK(b.status == 200);
    CHECK(json_string(a.body, "id") < json_string(b.body, "id"));
    CHECK(all.body.find(R"("data":1},{)") != std::string::npos);

    c.send("HEAD /poll/t?since=earliest HTTP/1.1\r\nHost: t\r\n\r\n");
    auto head = c.read(true);
    CHECK(head.status == 200);
    CHECK(head.header("Content-Length") == std::to_string(all.body.size()));
    CHECK(head.body.empty());

    c.send("POST /poll/t HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n");
    CHECK(c.read().status == 100);
    c.send("[3]");
    CHECK(c.read().status == 200);

    auto http10 = c.exchange("GET /poll/t HTTP/1.0\r\n\r\n");
    CHECK(http10.status == 200);
    CHECK(c.closed_by_peer());
}

TEST_CASE("chunked publish bodies are accepted", "[server]") {
    hub_server s;
    raw_socket c(s.srv.port());
    auto r = c.exchange("POST /poll/t HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n[1\r\n1\r\n]\r\n0\r\n\r\n");
    CHECK(r.status == 200);
    CHECK(c.exchange(get("/poll/t?since=earliest")).body.find(R"("data":[1])") != std::string::npos);
}

TEST_CASE("CORS: preflight and allow-listed origins", "[server][cors]") {
    http_options http;
    http.allow_origins = {"http://app.test"};
    http.authorize = [](std::string_view, action, std::string_view) { return authorization{}; };
    hub_server s(std::move(http));
    raw_socket c(s.srv.port());
    auto pre = c.exchange("OPTIONS /poll/t HTTP/1.1\r\nHost: t\r\nOrigin: http://app.test\r\n"
                          "Access-Control-Request-Method: POST\r\nAccess-Control-Request-Headers: authorization\r\n\r\n");
    CHECK(pre.status == 204);  // no token needed
    CHECK(pre.header("Access-Control-Allow-Origin") == "http://app.test");
    CHECK(pre.header("Access-Control-Allow-Headers").find("Authorization") != std::string::npos);
    auto bad = c.exchange("OPTIONS /poll/t HTTP/1.1\r\nHost: t\r\nOrigin: http://evil.test\r\n"
                          "Access-Control-Request-Method: POST\r\n\r\n");
    CHECK(bad.status == 403);
    auto ok = c.exchange("GET /poll/t?access_token=x HTTP/1.1\r\nHost: t\r\nOrigin: http://app.test\r\n\r\n");
    CHECK(ok.status == 200);
    CHECK(ok.header("Access-Control-Allow-Origin") == "http://app.test");
    auto other = c.exchange("GET /poll/t?access_token=x HTTP/1.1\r\nHost: t\r\nOrigin: http://evil.test\r\n\r\n");
    CHECK(other.header("Access-Control-Allow-Origin").empty());
}

TEST_CASE("tokens map to tenants and tenants never see each other", "[server][auth]") {
    http_options http;
    http.authorize = [](std::string_view token, action a, std::string_view topic) -> authorization {
        if (token == "alice") return {{}, "A"};
        if (token == "bob") return {{}, "B"};
        if (token == "reader") return a == action::subscribe ? authorization{{}, "A"} : authorization{error::forbidden, {}};
        if (token == "roomless") return topic == "room" ? authorization{error::forbidden, {}} : authorization{{}, "A"};
        return {error::unauthorized, {}};
    };
    hub_server s(std::move(http));
    raw_socket c(s.srv.port());
    const auto bearer = [](std::string_view t) { return "Authorization: Bearer " + std::string(t) + "\r\n"; };
    auto anonymous = c.exchange(post("/poll/room", "1"));
    CHECK(anonymous.status == 401);
    CHECK(anonymous.header("WWW-Authenticate") == "Bearer");
    CHECK(c.exchange(post("/poll/room", "1", bearer("mallory"))).status == 401);
    CHECK(c.exchange(get("/poll/room")).status == 401);
    CHECK(c.exchange(post("/poll/room", R"("from A")", bearer("alice"))).status == 200);
    CHECK(c.exchange(post("/poll/room", R"("from B")", bearer("bob"))).status == 200);
    CHECK(c.exchange(post("/poll/room", "1", bearer("reader"))).status == 403);
    CHECK(c.exchange(get("/poll/room?since=earliest&access_token=roomless")).status == 403);

    auto a = c.exchange("GET /poll/room?since=earliest HTTP/1.1\r\nHost: t\r\n" + bearer("alice") + "\r\n");
    auto b = c.exchange(get("/poll/room?since=earliest&access_token=bob"));
    auto r = c.exchange(get("/lp/room?since=earliest&access_token=reader"));
    CHECK(a.body.find("from A") != std::string::npos);
    CHECK(a.body.find("from B") == std::string::npos);
    CHECK(b.body.find("from B") != std::string::npos);
    CHECK(b.body.find("from A") == std::string::npos);
    CHECK(r.body.find("from A") != std::string::npos);
    CHECK(a.body.find(R"("topic":"room")") != std::string::npos);  // the tenant never shows
}

TEST_CASE("connections over the limit get 503 and the others keep working", "[server][limits]") {
    http_options http;
    http.max_connections = 2;
    hub_server s(std::move(http));
    raw_socket a(s.srv.port()), b(s.srv.port());
    CHECK(a.exchange(get("/poll/t")).status == 200);
    CHECK(b.exchange(get("/poll/t")).status == 200);
    raw_socket third(s.srv.port());
    auto r = third.read();
    CHECK(r.status == 503);
    CHECK(json_string(r.body, "error") == "too_many_connections");
    CHECK(a.exchange(get("/poll/t")).status == 200);
}

TEST_CASE("graceful stop answers held long polls, then closes", "[server][stop]") {
    auto s = std::make_unique<hub_server>();
    raw_socket waiter(s->srv.port()), idle(s->srv.port());
    CHECK(idle.exchange(get("/poll/t")).status == 200);
    waiter.send(get("/lp/t?timeout=60"));
    std::this_thread::sleep_for(50ms);
    const auto t0 = std::chrono::steady_clock::now();
    s->srv.stop();
    auto r = waiter.read();
    CHECK(r.status == 200);
    CHECK(r.body.starts_with(R"({"messages":[])"));
    CHECK(r.header("Connection") == "close");
    CHECK(idle.closed_by_peer());
    s->srv.wait();
    CHECK(std::chrono::steady_clock::now() - t0 < 5s);
    s.reset();
}

TEST_CASE("metrics: Prometheus text at a path of one's choice, and the logger hook", "[server][metrics]") {
    std::mutex mu;
    std::vector<std::pair<log_level, std::string>> logged;
    http_options http;
    http.max_connections = 6;
    http.min_log_level = log_level::debug;
    http.log = [&](log_level l, std::string_view m) {
        std::lock_guard lock(mu);
        logged.emplace_back(l, std::string(m));
    };
    broker hub;
    server srv{hub, {.address = "127.0.0.1", .port = 0, .threads = 2, .http = std::move(http)}};
    srv.mount(channel<polling>{"/poll"});
    srv.mount(channel<long_polling>{"/lp"});
    srv.mount(channel<sse>{"/sse"});
    srv.mount(metrics_endpoint{"/metrics"});
    CHECK_THROWS_AS(metrics_endpoint{"metrics"}, std::invalid_argument);
    srv.start();
    auto scrape = [&] {
        raw_socket c(srv.port());
        auto r = c.exchange(get("/metrics"));
        CHECK(r.status == 200);
        CHECK(r.header("Content-Type") == "text/plain; version=0.0.4; charset=utf-8");
        return r.body;
    };
    auto has = [](const std::string& text, const std::string& line) {
        return text.find("\n" + line + "\n") != std::string::npos;
    };

    raw_socket c(srv.port());
    for (int i = 0; i < 3; ++i) CHECK(c.exchange(post("/poll/t", "[1]")).status == 200);
    CHECK(c.exchange(get("/poll/t?since=earliest")).status == 200);
    CHECK(c.exchange(get("/nowhere")).status == 404);
    raw_socket stream(srv.port());
    stream.send(get("/sse/t?since=earliest"));
    CHECK(read_until(stream, "data:").find("data:") != std::string::npos);
    raw_socket held(srv.port());
    held.send(get("/lp/quiet?since=earliest&timeout=30"));
    REQUIRE(eventually([&] { return srv.metrics().read(metrics::per_transport::subscribers,
                                                           metrics::slot<long_polling>()) == 1; }));

    const auto text = scrape();
    INFO(text);
    CHECK(has(text, "courier_messages_published_total 3"));
    CHECK(has(text, "courier_messages_delivered_total{transport=\"polling\"} 3"));
    CHECK(has(text, "courier_subscribers{transport=\"sse\"} 1"));
    CHECK(has(text, "courier_subscribers{transport=\"long-polling\"} 1"));
    CHECK(has(text, "courier_http_client_errors_total 1"));
    CHECK(has(text, "courier_connections 4"));  // c, stream, held and the scrape itself
    CHECK(has(text, "courier_topics 2"));
    CHECK(text.find("# TYPE courier_messages_delivered_total counter\n") != std::string::npos);
    // Every line is a comment or `name{labels} value`.
    std::istringstream lines(text);
    for (std::string line; std::getline(lines, line);) {
        if (line.starts_with("# HELP ") || line.starts_with("# TYPE ")) continue;
        const auto space = line.rfind(' ');
        REQUIRE(space != std::string::npos);
        CHECK(line.substr(0, 8) == "courier_");
        CHECK(line.find_first_not_of("0123456789", space + 1) == std::string::npos);
    }

    // Over the connection limit: refused, counted and logged as a warning.
    std::vector<std::unique_ptr<raw_socket>> more;
    for (int i = 0; i < 3; ++i) more.push_back(std::make_unique<raw_socket>(srv.port()));
    auto refused = std::make_unique<raw_socket>(srv.port());
    CHECK(refused->read().status == 503);
    CHECK(srv.metrics().read(metrics::total::connections_refused) >= 1);
    more.clear();
    refused.reset();
    REQUIRE(eventually([&] { return srv.connections() <= 3; }));
    // A malformed request is logged at debug level.
    raw_socket bad(srv.port());
    CHECK(bad.exchange("GET / HTTP/1.1\r\nHost t\r\n\r\n").status == 400);
    srv.stop();
    srv.wait();
    std::lock_guard lock(mu);
    auto saw = [&](log_level l, std::string_view needle) {
        return std::any_of(logged.begin(), logged.end(),
                           [&](const auto& e) { return e.first == l && e.second.find(needle) != std::string::npos; });
    };
    CHECK(saw(log_level::warning, "connection refused: max_connections (6) reached"));
    CHECK(saw(log_level::debug, "malformed request: bad_request"));
}

TEST_CASE("metrics: counts from many threads add up", "[metrics][threads]") {
    courier::metrics m;
    std::vector<std::thread> threads;
    for (int t = 0; t < 20; ++t)
        threads.emplace_back([&] {
            for (int i = 0; i < 10'000; ++i) {
                m.add(metrics::total::requests);
                m.add(metrics::per_transport::messages_delivered, 1, 3);
                metrics::subscriber_guard g(m, 2);
            }
        });
    for (auto& t : threads) t.join();
    CHECK(m.read(metrics::total::requests) == 200'000);
    CHECK(m.read(metrics::per_transport::messages_delivered, 1) == 600'000);
    CHECK(m.read(metrics::per_transport::subscribers, 2) == 0);
    CHECK(m.read(metrics::per_transport::subscribers_total, 2) == 200'000);
}

TEST_CASE("static files beside the channels: GET, HEAD, 304, index.html, 404, 405", "[server][static]") {
    namespace fs = std::filesystem;
    const auto dir = fs::temp_directory_path() / ("courier-static-" + std::to_string(::getpid()));
    fs::create_directories(dir / "docs");
    const auto write = [&](const fs::path& name, std::string_view text) {
        std::ofstream(dir / name, std::ios::binary) << text;
    };
    write("index.html", "<h1>home</h1>");
    write("app.js", "export const x = 1;");
    write("docs/index.html", "<h1>docs</h1>");
    write(".env", "SECRET=1");
    fs::create_directories(dir / ".git");
    write(".git/config", "[core]");
    std::ofstream(fs::temp_directory_path() / ("courier-outside-" + std::to_string(::getpid()))) << "outside";
    fs::create_symlink(fs::temp_directory_path() / ("courier-outside-" + std::to_string(::getpid())), dir / "link.txt");

    broker hub;
    server srv{hub, {.address = "127.0.0.1", .port = 0, .threads = 1}};
    srv.mount(channel<polling>{"/poll"});
    srv.mount(static_files{"/", dir});
    srv.mount(static_files::courier_js());
    CHECK_THROWS_AS(srv.mount(static_files{"/poll"}), std::invalid_argument);  // the prefix is taken
    srv.start();
    fs::remove_all(dir);  // read when built: the files are served from memory
    fs::remove(fs::temp_directory_path() / ("courier-outside-" + std::to_string(::getpid())));

    raw_socket c(srv.port());
    auto home = c.exchange(get("/"));
    CHECK(home.status == 200);
    CHECK(home.body == "<h1>home</h1>");
    CHECK(home.header("Content-Type") == "text/html; charset=utf-8");
    CHECK(home.header("Cache-Control") == "no-cache");
    auto js = c.exchange(get("/app.js"));
    CHECK(js.header("Content-Type") == "text/javascript; charset=utf-8");
    CHECK(js.body == "export const x = 1;");
    CHECK(c.exchange(get("/docs/")).body == "<h1>docs</h1>");
    CHECK(c.exchange(get("/%61pp.js")).body == "export const x = 1;");  // percent-decoded

    // Revalidation: the same ETag gives 304 without a body, another gives the file.
    const auto tag = js.header("ETag");
    REQUIRE(tag.size() == 18);
    auto same = c.exchange("GET /app.js HTTP/1.1\r\nHost: t\r\nIf-None-Match: " + tag + "\r\n\r\n");
    CHECK(same.status == 304);
    CHECK(same.body.empty());
    CHECK(same.header("ETag") == tag);
    CHECK(c.exchange("GET /app.js HTTP/1.1\r\nHost: t\r\nIf-None-Match: \"other\"\r\n\r\n").status == 200);

    c.send("HEAD /app.js HTTP/1.1\r\nHost: t\r\n\r\n");
    auto head = c.read(true);
    CHECK(head.status == 200);
    CHECK(head.header("Content-Length") == "19");

    // The longest prefix wins: the channel keeps /poll/... under files at /.
    CHECK(c.exchange(post("/poll/t", "[1]")).status == 200);
    CHECK(c.exchange(get("/poll/t?since=earliest")).body.find(R"("data":[1])") != std::string::npos);

    auto missing = c.exchange(get("/missing.html"));
    CHECK(missing.status == 404);
    CHECK(json_string(missing.body, "error") == "not_found");
    CHECK(c.exchange(get("/../etc/passwd")).status == 404);
    CHECK(c.exchange(get("/docs/../app.js")).status == 404);  // no path walking, even inside the set
    CHECK(c.exchange(get("/link.txt")).status == 404);     // a symbolic link could lead out
    CHECK(c.exchange(get("/.env")).status == 404);         // hidden files stay hidden
    CHECK(c.exchange(get("/.git/config")).status == 404);
    CHECK(c.exchange(get("/%zz")).status == 404);          // a broken escape names nothing (not index.html)
    auto wrong = c.exchange(post("/app.js", "[1]"));
    CHECK(wrong.status == 405);
    CHECK(wrong.header("Allow") == "GET, HEAD");

    auto client = c.exchange(get("/courier.js"));
    CHECK(client.status == 200);
    CHECK(client.header("Content-Type") == "text/javascript; charset=utf-8");
    CHECK(client.body == std::string(web::courier_js));
    srv.stop();
    srv.wait();
}

TEST_CASE("a channel adopts a connection the application accepted", "[server][embed]") {
    asio::io_context io(1);
    broker hub;
    channel<long_polling> events{hub, "/events"};
    asio::ip::tcp::acceptor acceptor(io, {asio::ip::make_address("127.0.0.1"), 0});
    const auto port = acceptor.local_endpoint().port();

    // The application's own server: it reads the request head itself and
    // hands /events requests to the channel; it answers everything else.
    asio::co_spawn(io, [&]() -> asio::awaitable<void> {
        for (int i = 0; i < 2; ++i) {
            auto sock = co_await acceptor.async_accept(asio::use_awaitable);
            std::string buf;
            http::request_parser parser;
            for (;;) {
                char chunk[1024];
                auto n = co_await sock.async_read_some(asio::buffer(chunk), asio::use_awaitable);
                buf.append(chunk, n);
                std::size_t used = 0;
                if (parser.feed(buf, used) == http::request_parser::status::done) {
                    buf.erase(0, used);
                    break;
                }
                buf.erase(0, used);
            }
            auto req = parser.release();
            if (req.path().starts_with("/events")) {
                events.accept(std::move(sock), std::move(req), buf);
            } else {
                const std::string_view res = "HTTP/1.1 200 OK\r\nContent-Length: 4\r\nConnection: close\r\n\r\nmine";
                co_await asio::async_write(sock, asio::buffer(res), asio::use_awaitable);
            }
        }
    }, asio::detached);
    std::thread t([&] { io.run(); });

    raw_socket own(port);
    CHECK(own.exchange(get("/home")).body == "mine");
    raw_socket c(port);
    CHECK(c.exchange(post("/events/t", "[42]")).status == 200);
    auto r = c.exchange(get("/events/t?since=earliest"));  // the same connection, kept alive
    CHECK(r.body.find(R"("data":[42])") != std::string::npos);
    CHECK(c.exchange(get("/elsewhere")).status == 404);
    events.stop();
    t.join();
}
