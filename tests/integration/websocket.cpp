// Integration tests of channel<websocket> and client<websocket>: raw frames
// over loopback sockets (handshake errors, protocol violations and their
// close codes, ops, pings, slow consumers, shutdown) and the C++ client
// (publish with ack, resume, gaps, 100,000 messages across reconnects).
#include <catch2/catch.hpp>
#include <courier/courier.hpp>

#include "integration/support.hpp"

#include <random>

using namespace courier::test;
using namespace std::chrono_literals;
using courier::broker_options;
using courier::read_result;
using courier::channel;
using courier::client;
using courier::client_options;
using courier::http_options;
using courier::server;
using courier::server_options;
using courier::websocket;
namespace ws = courier::ws;

namespace {

struct ws_server {
    explicit ws_server(websocket::options o = {}, http_options http = {}, broker_options b = {}, std::size_t threads = 2)
        : hub(b), srv(hub, server_options{.address = "127.0.0.1", .port = 0, .threads = threads, .http = std::move(http)}) {
        srv.mount(channel<websocket>{"/ws", std::move(o)});
        srv.start();
    }
    ~ws_server() {
        srv.stop();
        srv.wait();
    }
    std::string url() const { return "ws://127.0.0.1:" + std::to_string(srv.port()) + "/ws"; }
    courier::broker hub;
    server srv;
};

std::string upgrade(std::string_view target, std::string_view extra = {}) {
    return "GET " + std::string(target) +
           " HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n" +
           std::string(extra) + "\r\n";
}

constexpr std::uint8_t mask[4] = {1, 2, 3, 4};

std::string frame(ws::opcode op, std::string_view payload, bool fin = true) {
    std::string f;
    ws::append_frame(f, op, payload, false, mask, fin);
    return f;
}
std::string text(std::string_view payload) { return frame(ws::opcode::text, payload); }

// A raw WebSocket client: does the handshake, then reads server frames.
struct raw_ws {
    raw_ws(std::uint16_t port, std::string_view target, std::string_view extra = {}) : sock(port) {
        sock.send(upgrade(target, extra));
        res = sock.read(true);
        reader.set_options({.expect_masked = false, .max_message = 64 << 20});
    }
    // The next server frame: a message's payload, or a control frame's.
    struct frame_in {
        ws::frame_reader::event ev = ws::frame_reader::event::failed;
        std::string payload;
        std::uint16_t close_code = 0;
    };
    frame_in next() {
        for (;;) {
            std::size_t used = 0;
            const auto ev = reader.feed(pending, used);
            pending.erase(0, used);
            if (ev != ws::frame_reader::event::need_more) {
                frame_in f{ev, {}, 0};
                if (ev == ws::frame_reader::event::message) {
                    f.payload = reader.payload();
                    reader.next_message();
                } else if (ev == ws::frame_reader::event::close) {
                    f.close_code = reader.close_info().code;
                    f.payload = std::string(reader.close_info().reason);
                } else {
                    f.payload = std::string(reader.control_payload());
                }
                return f;
            }
            auto more = sock.read_some();
            if (more.empty()) return {};
            pending += more;
        }
    }
    std::string next_text() {
        auto f = next();
        return f.ev == ws::frame_reader::event::message ? f.payload : "<" + std::to_string(static_cast<int>(f.ev)) + ">";
    }
    raw_socket sock;
    raw_response res;
    ws::frame_reader reader;
    std::string pending;
};

} // namespace

TEST_CASE("WebSocket handshake: 101 with the accept key, or the protocol's errors", "[ws][handshake]") {
    ws_server s;
    {
        raw_ws c(s.srv.port(), "/ws");
        CHECK(c.res.status == 101);
        CHECK(c.res.header("Sec-WebSocket-Accept") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        CHECK(c.res.header("Upgrade") == "websocket");
        CHECK(c.res.header("Connection") == "Upgrade");
        CHECK(c.res.header("Content-Length").empty());
    }
    auto status = [&](std::string request) {
        raw_socket c(s.srv.port());
        return c.exchange(request);
    };
    auto plain = status(get("/ws/room"));
    CHECK(plain.status == 426);
    CHECK(plain.header("Sec-WebSocket-Version") == "13");
    CHECK(json_string(plain.body, "error") == "upgrade_required");
    auto v8 = status("GET /ws HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n");
    CHECK(v8.status == 426);
    CHECK(v8.header("Sec-WebSocket-Version") == "13");
    CHECK(status("GET /ws HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 "Sec-WebSocket-Key: bm90IDE2IGJ5dGVz\r\nSec-WebSocket-Version: 13\r\n\r\n").status == 400);
    CHECK(status("GET /ws HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: keep-alive\r\n"
                  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n").status == 400);
    CHECK(status(upgrade("/ws/bad%20name")).status == 400);
    CHECK(status(upgrade("/ws/room?since=not*a*cursor")).status == 400);
    CHECK(status(upgrade("/ws/room", "Origin: http://elsewhere.example\r\n")).status == 403);
    // Same origin passes without any allow-list.
    raw_ws same(s.srv.port(), "/ws/room", "Origin: http://t\r\n");
    CHECK(same.res.status == 101);
    // Publishing over HTTP works on the WebSocket mount too.
    raw_socket p(s.srv.port());
    CHECK(p.exchange(post("/ws/room", "{\"a\":1}")).status == 200);
    const auto env = same.next_text();
    CHECK(json_string(env, "topic") == "room");
    CHECK(env.ends_with(R"(","topic":"room","data":{"a":1}})"));
}

TEST_CASE("WebSocket handshake with an authorizer: 401 for a missing or unknown token, even on the bare mount",
          "[ws][handshake][auth]") {
    // "good" may read every topic but "secret"; any other token is unknown.
    ws_server s(websocket::options{}, http_options{.authorize = [](std::string_view token, courier::action,
                                                                   std::string_view topic) {
        courier::authorization a;
        if (token != "good") a.ec = courier::error::unauthorized;
        else if (topic == "secret" || topic.empty()) a.ec = courier::error::forbidden;
        return a;
    }});
    auto status = [&](std::string_view target) {
        raw_socket c(s.srv.port());
        return c.exchange(upgrade(target)).status;
    };
    CHECK(status("/ws") == 401);
    CHECK(status("/ws?access_token=wrong") == 401);
    CHECK(status("/ws/room?access_token=wrong") == 401);
    CHECK(status("/ws/secret?access_token=good") == 403);
    // A known token opens the bare mount whatever the authorizer says of the
    // empty topic; each topic is checked when it is subscribed.
    raw_ws c(s.srv.port(), "/ws?access_token=good");
    REQUIRE(c.res.status == 101);
    c.sock.send(text(R"({"op":"subscribe","topic":"secret","ref":1})"));
    CHECK(json_string(c.next_text(), "error") == "forbidden");
    c.sock.send(text(R"({"op":"subscribe","topic":"room","ref":2})"));
    CHECK(c.next_text().starts_with(R"({"op":"ack","ref":2,"id":")"));
}

TEST_CASE("WebSocket subprotocols: the server's first choice the client offers, or none", "[ws][handshake]") {
    ws_server s({.subprotocols = {"courier.v1", "chat"}});
    raw_ws both(s.srv.port(), "/ws", "Sec-WebSocket-Protocol: chat, courier.v1\r\n");
    CHECK(both.res.status == 101);
    CHECK(both.res.header("Sec-WebSocket-Protocol") == "courier.v1");
    raw_ws other(s.srv.port(), "/ws", "Sec-WebSocket-Protocol: mqtt\r\n");
    CHECK(other.res.status == 101);
    CHECK(other.res.header("Sec-WebSocket-Protocol").empty());
    raw_ws none(s.srv.port(), "/ws");
    CHECK(none.res.header("Sec-WebSocket-Protocol").empty());
}

TEST_CASE("WebSocket delivers envelopes byte for byte, from a cursor, with gaps", "[ws]") {
    ws_server s({}, {}, {.history = 3});
    std::vector<courier::message_ptr> sent;
    for (int i = 0; i < 5; ++i) sent.push_back(s.hub.publish("", "room", "{\"n\":" + std::to_string(i) + "}").msg);
    {
        raw_ws c(s.srv.port(), "/ws/room?since=" + std::string(sent[2]->id()));
        REQUIRE(c.res.status == 101);
        CHECK(c.next_text() == sent[3]->envelope());
        CHECK(c.next_text() == sent[4]->envelope());
        auto live = s.hub.publish("", "room", "[\"live\"]").msg;
        CHECK(c.next_text() == live->envelope());
    }
    {
        raw_ws c(s.srv.port(), "/ws/room?since=" + std::string(sent[0]->id()));  // left the history
        const auto gap = c.next_text();
        CHECK(gap.starts_with(R"({"op":"gap","topic":"room","next":")"));
        CHECK(c.next_text() == sent[3]->envelope());
    }
}

TEST_CASE("WebSocket ops: subscribe, unsubscribe, publish with ack, errors that keep the connection", "[ws][ops]") {
    ws_server s;
    raw_ws c(s.srv.port(), "/ws");
    REQUIRE(c.res.status == 101);
    c.sock.send(text(R"({"op":"subscribe","topic":"a","ref":1})") + text(R"({"op":"subscribe","topic":"b"})"));
    CHECK(json_string(c.next_text(), "op") == "ack");
    c.sock.send(text(R"({"op":"publish","topic":"a","data":{"x":[1,2]},"ref":"p1"})"));
    // The ack and the message, in either order.
    std::string one = c.next_text(), two = c.next_text();
    if (json_string(one, "op") != "ack") std::swap(one, two);
    CHECK(one.starts_with(R"({"op":"ack","ref":"p1","id":")"));
    CHECK(two == R"({"id":")" + json_string(one, "id") + R"(","topic":"a","data":{"x":[1,2]}})");
    // Malformed ops: each gets an error frame, with its ref when it has one.
    c.sock.send(text("not json"));
    CHECK(json_string(c.next_text(), "error") == "invalid_json");
    c.sock.send(text(R"({"op":"subscribe","topic":"x","since":5,"ref":6})"));
    CHECK(c.next_text().starts_with(R"({"op":"error","ref":6,"error":"bad_request")"));
    c.sock.send(text(R"([1,2])"));
    CHECK(c.next_text().starts_with(R"({"op":"error","ref":null,"error":"bad_request")"));
    c.sock.send(text(R"({"op":"dance","ref":7})"));
    auto e = c.next_text();
    CHECK(e.starts_with(R"({"op":"error","ref":7,"error":"bad_request")"));
    c.sock.send(text(R"({"op":"publish","topic":"a","data":{bad},"ref":8})"));
    CHECK(json_string(c.next_text(), "error") == "invalid_json");
    c.sock.send(text(R"({"op":"publish","topic":"no spaces","data":1,"ref":9})"));
    CHECK(json_string(c.next_text(), "error") == "invalid_topic");
    c.sock.send(text(R"({"op":"publish","topic":"a","ref":10})"));
    CHECK(json_string(c.next_text(), "error") == "invalid_json");
    c.sock.send(text(R"({"op":"subscribe","topic":"a","ref":11})"));
    const auto twice = c.next_text();
    CHECK(json_string(twice, "error") == "bad_request");
    CHECK(json_string(twice, "message") == "already subscribed to this topic");
    c.sock.send(text(R"({"op":"subscribe","topic":"c","since":"x*y","ref":12})"));
    CHECK(json_string(c.next_text(), "error") == "invalid_cursor");
    c.sock.send(frame(ws::opcode::binary, "\x01\x02"));
    CHECK(json_string(c.next_text(), "error") == "bad_request");
    // Topic b still delivers; after unsubscribing from a, a does not.
    c.sock.send(text(R"({"op":"unsubscribe","topic":"a","ref":13})"));
    CHECK(c.next_text() == R"({"op":"ack","ref":13})");
    s.hub.publish("", "a", "\"gone\"");
    auto b = s.hub.publish("", "b", "\"here\"").msg;
    CHECK(c.next_text() == b->envelope());
}

TEST_CASE("WebSocket: too many subscriptions is an error frame", "[ws][ops][limits]") {
    ws_server s({.max_topics = 2});
    raw_ws c(s.srv.port(), "/ws/t0");
    c.sock.send(text(R"({"op":"subscribe","topic":"t1","ref":1})") + text(R"({"op":"subscribe","topic":"t2","ref":2})"));
    CHECK(json_string(c.next_text(), "op") == "ack");
    CHECK(json_string(c.next_text(), "error") == "too_many_subscriptions");
}

TEST_CASE("WebSocket protocol violations close with 1002, 1007 and 1009", "[ws][errors]") {
    ws_server s({.max_message = 1000});
    auto closed_with = [&](std::string bytes) {
        raw_ws c(s.srv.port(), "/ws");
        REQUIRE(c.res.status == 101);
        c.sock.send(bytes);
        auto f = c.next();
        CHECK(f.ev == ws::frame_reader::event::close);
        // The server then closes the TCP connection.
        CHECK(c.sock.closed_by_peer());
        return f.close_code;
    };
    std::string unmasked;
    ws::append_frame(unmasked, ws::opcode::text, R"({"op":"subscribe","topic":"a"})");
    CHECK(closed_with(unmasked) == 1002);
    CHECK(closed_with(text("\xce\xba\xff")) == 1007);
    CHECK(closed_with(frame(ws::opcode::text, "\xce", false) + frame(ws::opcode::continuation, "\x41")) == 1007);
    CHECK(closed_with(text(std::string(1001, 'a'))) == 1009);
    CHECK(closed_with(frame(ws::opcode::binary, std::string(600, 'a'), false) +
                      frame(ws::opcode::continuation, std::string(600, 'a'))) == 1009);
    CHECK(closed_with(frame(static_cast<ws::opcode>(3), "")) == 1002);
    CHECK(closed_with(frame(ws::opcode::continuation, "x")) == 1002);
    CHECK(closed_with(frame(ws::opcode::ping, std::string(126, 'p'))) == 1002);
    // Other connections are untouched.
    raw_ws ok(s.srv.port(), "/ws/fine");
    s.hub.publish("", "fine", "1");
    CHECK(json_string(ok.next_text(), "topic") == "fine");
}

TEST_CASE("WebSocket close handshake, pings, and the idle ping timeout", "[ws][close]") {
    ws_server s({.ping_interval = 200ms, .pong_timeout = 300ms});
    {
        raw_ws c(s.srv.port(), "/ws");
        ws::close_reason r;
        std::string bye;
        ws::append_close(bye, 4001, "done", mask);
        c.sock.send(frame(ws::opcode::ping, "hello") + bye);
        auto pong = c.next();
        CHECK(pong.ev == ws::frame_reader::event::pong);
        CHECK(pong.payload == "hello");
        auto close = c.next();
        CHECK(close.ev == ws::frame_reader::event::close);
        CHECK(close.close_code == 4001);  // echoed
        CHECK(c.sock.closed_by_peer());
    }
    {
        raw_ws c(s.srv.port(), "/ws");
        c.sock.send(frame(ws::opcode::close, ""));
        auto close = c.next();
        CHECK(close.ev == ws::frame_reader::event::close);
        CHECK(close.payload.empty());
    }
    {
        // A silent client is pinged; one that never answers is dropped.
        raw_ws c(s.srv.port(), "/ws");
        auto ping = c.next();
        CHECK(ping.ev == ws::frame_reader::event::ping);
        CHECK(c.sock.closed_by_peer());
    }
    {
        // One that answers stays.
        raw_ws c(s.srv.port(), "/ws/keep");
        for (int i = 0; i < 3; ++i) {
            REQUIRE(c.next().ev == ws::frame_reader::event::ping);
            c.sock.send(frame(ws::opcode::pong, ""));
        }
        s.hub.publish("", "keep", "true");
        CHECK(json_string(c.next_text(), "topic") == "keep");
    }
}

TEST_CASE("WebSocket: pongs queued while a long write is in flight arrive intact", "[ws][close]") {
    ws_server s;
    // A backlog of about 2 MB that a small receive window keeps in flight.
    const std::string big = "\"" + std::string(20'000, 'b') + "\"";
    for (int i = 0; i < 100; ++i) s.hub.publish("", "big", big);
    raw_ws c(s.srv.port(), "/ws/big?since=earliest");
    REQUIRE(c.res.status == 101);
    std::string pings;
    for (int i = 0; i < 200; ++i) pings += frame(ws::opcode::ping, "p" + std::to_string(i));
    c.sock.send(pings);
    // Only the latest ping needs its pong (RFC 6455, 5.5.3): pongs may skip
    // pings but come in order, and the last ping is answered.
    int messages = 0, last_pong = -1;
    while (messages < 100 || last_pong < 199) {
        auto f = c.next();
        if (f.ev == ws::frame_reader::event::message) {
            CHECK(f.payload.size() > 20'000);
            ++messages;
        } else {
            REQUIRE(f.ev == ws::frame_reader::event::pong);
            REQUIRE(f.payload.size() >= 2);
            REQUIRE(f.payload[0] == 'p');
            const int n = std::stoi(f.payload.substr(1));
            CHECK(n > last_pong);
            CHECK(f.payload == "p" + std::to_string(n));
            last_pong = n;
        }
    }
}

TEST_CASE("WebSocket: a server stop closes streams with 1001", "[ws][stop]") {
    auto s = std::make_unique<ws_server>();
    raw_ws c(s->srv.port(), "/ws/room");
    REQUIRE(c.res.status == 101);
    auto m = s->hub.publish("", "room", "1").msg;
    CHECK(c.next_text() == m->envelope());
    std::thread stopper([&] { s.reset(); });
    auto close = c.next();
    CHECK(close.ev == ws::frame_reader::event::close);
    CHECK(close.close_code == 1001);
    std::string bye;
    ws::append_close(bye, 1001, {}, mask);
    c.sock.send(bye);
    stopper.join();
}

TEST_CASE("slow WebSocket consumers are closed, the others keep up", "[ws][slow]") {
    ws_server s({.queue_bytes = 64 * 1024});
    raw_ws fast(s.srv.port(), "/ws/t");
    raw_socket slow_sock(s.srv.port(), 10s, 4096);
    slow_sock.send(upgrade("/ws/t"));
    REQUIRE(slow_sock.read(true).status == 101);
    const std::string big = "\"" + std::string(2000, 'x') + "\"";
    int got = 0;
    for (int i = 0; i < 2000; ++i) {
        s.hub.publish("", "t", big);
        if (i % 20 == 19)
            while (got < i + 1 - 10) {  // keep the fast reader close behind
                auto f = fast.next();
                REQUIRE(f.ev == ws::frame_reader::event::message);
                ++got;
            }
    }
    while (got < 2000) {
        REQUIRE(fast.next().ev == ws::frame_reader::event::message);
        ++got;
    }
    // The slow one was cut: reading what it has ends at a close or EOF.
    std::string drained;
    for (;;) {
        auto more = slow_sock.read_some();
        if (more.empty()) break;
        drained += more;
    }
    CHECK(drained.size() < 2000u * 2000u);
    const auto slot = courier::metrics::slot<websocket>();
    CHECK(s.srv.metrics().read(courier::metrics::per_transport::slow_consumer_disconnects, slot) == 1);
    CHECK(s.srv.metrics().read(courier::metrics::per_transport::messages_delivered, slot) >= 2000);
}

TEST_CASE("client<websocket>: publish with ack, several topics on one connection, resume after reconnect",
          "[ws][client]") {
    ws_server s;
    asio::io_context io;
    client<websocket> c(io.get_executor(), client_options{.url = s.url()});
    std::vector<std::string> a, b;
    c.subscribe("a", [&](const courier::delivery& d) { a.emplace_back(d.data); });
    c.subscribe("b", [&](const courier::delivery& d) { b.emplace_back(d.data); });
    std::vector<std::string> ids;
    std::error_code last_ec;
    auto publish = [&](std::string topic, std::string json) {
        c.async_publish(std::move(topic), std::move(json), [&](std::error_code ec, std::string id) {
            last_ec = ec;
            ids.push_back(std::move(id));
        });
    };
    // Subscribed (the start cursor came back) before publishing.
    REQUIRE(run_until(io, [&] { return !c.cursor("a").empty() && !c.cursor("b").empty(); }));
    publish("a", "{\"n\":1}");
    publish("b", "{\"n\":2}");
    REQUIRE(run_until(io, [&] { return a.size() == 1 && b.size() == 1 && ids.size() == 2; }));
    CHECK(!last_ec);
    CHECK(a[0] == "{\"n\":1}");
    CHECK(c.cursor("a") == ids[0]);
    // Cut the connection; meanwhile two more messages: both arrive once.
    c.reconnect();
    s.hub.publish("", "a", "{\"n\":3}");
    s.hub.publish("", "a", "{\"n\":4}");
    REQUIRE(run_until(io, [&] { return a.size() == 3; }));
    CHECK(a[1] == "{\"n\":3}");
    CHECK(a[2] == "{\"n\":4}");
    // An invalid publish fails, with the protocol's error.
    publish("a", "{oops");
    REQUIRE(run_until(io, [&] { return ids.size() == 3; }));
    CHECK(last_ec == courier::error::invalid_json);
    c.unsubscribe("a");
    s.hub.publish("", "a", "{\"n\":5}");
    auto m = s.hub.publish("", "b", "{\"n\":6}").msg;
    REQUIRE(run_until(io, [&] { return b.size() == 2; }));
    CHECK(a.size() == 3);
}

TEST_CASE("client<websocket>: a publish made while connecting is sent on open, one without a server fails",
          "[ws][client]") {
    asio::io_context io;
    std::string closed_url;
    {
        ws_server s;
        closed_url = s.url();
        client<websocket> c(io.get_executor(), client_options{.url = s.url()});
        std::error_code ec = courier::error::bad_response;
        std::string id;
        c.async_publish("t", "[1]", [&](std::error_code e, std::string i) {
            ec = e;
            id = std::move(i);
        });
        REQUIRE(run_until(io, [&] { return !id.empty(); }));
        CHECK(!ec);
        read_result r;
        REQUIRE_FALSE(s.hub.read("", "t", "earliest", r));
        REQUIRE(r.messages.size() == 1);
        CHECK(r.messages[0]->id() == id);
        c.stop();
        io.run_for(50ms);
    }
    client<websocket> c(io.get_executor(), client_options{.url = closed_url, .backoff_min = 10ms});
    std::error_code ec;
    bool done = false;
    c.async_publish("t", "[2]", [&](std::error_code e, std::string) {
        ec = e;
        done = true;
    });
    REQUIRE(run_until(io, [&] { return done; }));
    CHECK(ec == asio::error::connection_refused);
}

TEST_CASE("client<websocket> retries a subscribe refused by a limit", "[ws][client]") {
    ws_server s({.max_topics = 1});
    asio::io_context io;
    client<websocket> c(io.get_executor(), client_options{.url = s.url(), .backoff_min = 20ms, .backoff_max = 50ms});
    std::vector<std::pair<std::string, std::error_code>> errors;
    std::vector<std::string> got;
    c.on_error([&](std::string_view topic, std::error_code ec) { errors.emplace_back(topic, ec); });
    c.subscribe("a", [](const courier::delivery&) {});
    REQUIRE(run_until(io, [&] { return !c.cursor("a").empty(); }));
    c.subscribe("b", [&](const courier::delivery& d) { got.emplace_back(d.data); });
    REQUIRE(run_until(io, [&] { return errors.size() >= 2; }));  // refused, retried, refused again
    CHECK(errors[0].first == "b");
    CHECK(errors[0].second == courier::error::too_many_subscriptions);
    c.unsubscribe("a");  // room for b: the next retry gets in
    REQUIRE(run_until(io, [&] { return !c.cursor("b").empty(); }));
    s.hub.publish("", "b", "\"finally\"");
    REQUIRE(run_until(io, [&] { return got.size() == 1; }));
    CHECK(got[0] == "\"finally\"");
    c.stop();
    io.run_for(50ms);
}

#if defined(COURIER_WITH_ZLIB)
TEST_CASE("WebSocket permessage-deflate: one compressed frame per message, inflated ops, window limits",
          "[ws][deflate]") {
    ws_server s;
    const std::string long_text = "\"" + std::string(3000, 'q') + "\"";
    auto inflate_frame = [](std::string_view body) {
        ws::inflater z(true);
        std::string out;
        bool too_big = false;
        REQUIRE(z.inflate(body, out, 1 << 20, too_big));
        return out;
    };
    {
        raw_ws c(s.srv.port(), "/ws/z", "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n");
        REQUIRE(c.res.status == 101);
        CHECK(c.res.header("Sec-WebSocket-Extensions") == "permessage-deflate; server_no_context_takeover");
        c.reader.set_options({.expect_masked = false, .allow_compressed = true, .max_message = 1 << 20});
        auto big = s.hub.publish("", "z", long_text).msg;
        auto small = s.hub.publish("", "z", "1").msg;  // under deflate_min_size: plain
        auto f = c.next();
        REQUIRE(f.ev == ws::frame_reader::event::message);
        CHECK(c.reader.compressed());
        CHECK(f.payload.size() < 100);
        CHECK(inflate_frame(f.payload) == big->envelope());
        // The frame is the message's shared compressed encoding.
        CHECK(websocket::encoded_deflate(*big).size() == f.payload.size() + 2);
        f = c.next();
        CHECK_FALSE(c.reader.compressed());
        CHECK(f.payload == small->envelope());
        // A compressed op from the client is inflated and handled.
        ws::deflater z;
        std::string body;
        z.compress(R"({"op":"publish","topic":"z","data":{"k":"v"},"ref":5})", body);
        std::string frame_out;
        ws::append_frame(frame_out, ws::opcode::text, body, true, mask);
        c.sock.send(frame_out);
        std::string ack, env;
        for (int i = 0; i < 2; ++i) {
            auto g = c.next();
            auto text_in = c.reader.compressed() ? inflate_frame(g.payload) : g.payload;
            (text_in.starts_with(R"({"op":"ack")") ? ack : env) = text_in;
        }
        CHECK(ack.starts_with(R"({"op":"ack","ref":5,"id":")"));
        CHECK(env.ends_with(R"("data":{"k":"v"}})"));
        // A bomb: a small frame inflating past the limit closes with 1009.
        std::string bomb_body;
        z.compress(std::string(2 << 20, 'a'), bomb_body);
        std::string bomb;
        ws::append_frame(bomb, ws::opcode::text, bomb_body, true, mask);
        c.sock.send(bomb);
        auto close = c.next();
        CHECK(close.ev == ws::frame_reader::event::close);
        CHECK(close.close_code == 1009);
    }
    {
        // A client that limits the server's window to 2^9 bytes gets longer
        // messages uncompressed.
        raw_ws c(s.srv.port(), "/ws/z?since=earliest",
                 "Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=9\r\n");
        REQUIRE(c.res.status == 101);
        CHECK(c.res.header("Sec-WebSocket-Extensions") ==
              "permessage-deflate; server_no_context_takeover; server_max_window_bits=9");
        c.reader.set_options({.expect_masked = false, .allow_compressed = true, .max_message = 1 << 20});
        auto f = c.next();
        CHECK_FALSE(c.reader.compressed());
        CHECK(json_string(f.payload, "topic") == "z");
        CHECK(f.payload.size() > 3000);
    }
}
#endif

TEST_CASE("WebSocket: the close code reaches a client that is still sending", "[ws][errors]") {
    ws_server s;  // 1 MiB message limit
    raw_ws c(s.srv.port(), "/ws");
    REQUIRE(c.res.status == 101);
    // 4 MiB announced and sent: refused at its header, the rest discarded.
    c.sock.send(frame(ws::opcode::binary, std::string(4 << 20, 'x')));
    auto close = c.next();
    CHECK(close.ev == ws::frame_reader::event::close);
    CHECK(close.close_code == 1009);
    CHECK(c.sock.closed_by_peer());
}

TEST_CASE("client<websocket> reports a refused subscribe, and a gap for a cursor from an earlier server life",
          "[ws][client][resume]") {
    std::string old_cursor;
    asio::io_context io;
    {
        ws_server s(websocket::options{}, http_options{.authorize = [](std::string_view token, courier::action,
                                                                       std::string_view topic) {
            courier::authorization a;
            if (token != "good") a.ec = courier::error::unauthorized;
            else if (topic == "secret") a.ec = courier::error::forbidden;
            return a;
        }});
        client<websocket> c(io.get_executor(), client_options{.url = s.url(), .token = "good"});
        std::vector<std::string> got;
        std::vector<std::pair<std::string, std::error_code>> errors;
        c.on_error([&](std::string_view topic, std::error_code ec) { errors.emplace_back(topic, ec); });
        c.subscribe("room", [&](const courier::delivery& d) { got.emplace_back(d.data); });
        c.subscribe("secret", [&](const courier::delivery&) { FAIL("no delivery from a forbidden topic"); });
        REQUIRE(run_until(io, [&] { return !c.cursor("room").empty() && !errors.empty(); }));
        CHECK(errors[0].first == "secret");
        CHECK(errors[0].second == courier::error::forbidden);
        s.hub.publish("", "secret", "0");
        s.hub.publish("", "room", "1");
        REQUIRE(run_until(io, [&] { return got.size() == 1; }));
        old_cursor = c.cursor("room");

        // Without a token the handshake itself is refused, and not retried.
        client<websocket> anon(io.get_executor(), client_options{.url = s.url()});
        std::error_code anon_ec;
        anon.on_error([&](std::string_view, std::error_code ec) { anon_ec = ec; });
        anon.subscribe("room", [](const courier::delivery&) {});
        REQUIRE(run_until(io, [&] { return bool(anon_ec); }));
        CHECK(anon_ec == courier::error::unauthorized);
        c.stop();  // each sends its close frame before the server goes
        anon.stop();
        io.run_for(100ms);
    }
    // A new server: new epochs, so the old cursor is reported as a gap.
    ws_server again;
    again.hub.publish("", "room", "\"new\"");
    client<websocket> c(io.get_executor(), client_options{.url = again.url()});
    std::vector<std::string> gaps, got;
    c.on_gap([&](std::string_view topic, std::string_view) { gaps.emplace_back(topic); });
    c.subscribe("room", [&](const courier::delivery& d) { got.emplace_back(d.data); }, old_cursor);
    REQUIRE(run_until(io, [&] { return got.size() == 1; }));
    CHECK(gaps == std::vector<std::string>{"room"});
    CHECK(got[0] == "\"new\"");
    c.stop();
    io.run_for(100ms);
}

TEST_CASE("100,000 messages to 50 WebSocket clients cut at random moments: every message once, in order",
          "[ws][client][100k]") {
    ws_server s({}, {}, {.history = 100'000});
    constexpr int clients = 50, total = 100'000;
    asio::io_context io;
    std::vector<std::unique_ptr<client<websocket>>> cs;
    std::vector<int> next(clients, 0);
    int errors = 0, delivered = 0;
    for (int i = 0; i < clients; ++i) {
        cs.push_back(std::make_unique<client<websocket>>(
            io.get_executor(), client_options{.url = s.url(), .backoff_min = 5ms, .backoff_max = 50ms}));
        cs.back()->subscribe(
            "load",
            [&, i](const courier::delivery& d) {
                if (n_of(d.data) != next[i]) ++errors;
                next[i] = n_of(d.data) + 1;
                ++delivered;
            },
            "earliest");
    }
    std::mt19937 rng(42);
    std::thread publisher([&] {
        for (int n = 0; n < total; ++n) {
            s.hub.publish("", "load", "{\"n\":" + std::to_string(n) + "}");
            if (n % 1000 == 999) std::this_thread::sleep_for(1ms);
        }
    });
    int cuts = 0;
    const auto deadline = std::chrono::steady_clock::now() + 120s;
    while (std::chrono::steady_clock::now() < deadline) {
        io.run_for(2ms);
        if (rng() % 8 == 0) {
            cs[rng() % clients]->reconnect();
            ++cuts;
        }
        bool all = true;
        for (int v : next) all = all && v == total;
        if (all) break;
    }
    publisher.join();
    INFO("cuts " << cuts << ", delivered " << delivered);
    CHECK(errors == 0);
    for (int v : next) CHECK(v == total);
    CHECK(delivered == clients * total);
    CHECK(cuts > 100);
}
