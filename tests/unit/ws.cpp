// Unit tests of the WebSocket codec (RFC 6455, RFC 7692), sans I/O. The
// sections follow the Autobahn Testsuite's case groups: 1 framing, 2 pings
// and pongs, 3 reserved bits, 4 opcodes, 5 fragmentation, 6 UTF-8, 7 close,
// 9 limits; then the handshake and permessage-deflate.
#include <catch2/catch.hpp>
#include <courier/ws/deflate.hpp>
#include <courier/ws/frame.hpp>
#include <courier/ws/handshake.hpp>
#include <courier/http/request.hpp>

#include <string>
#include <vector>

using namespace courier::ws;
using courier::is_valid_utf8;
namespace http = courier::http;
using event = frame_reader::event;

namespace {

constexpr std::uint8_t key[4] = {0x37, 0xfa, 0x21, 0x3d};

// A client frame (masked) with explicit flags.
std::string client_frame(std::uint8_t op, std::string_view payload, bool fin = true, std::uint8_t rsv = 0) {
    std::string f;
    append_frame(f, static_cast<opcode>(op), payload, false, key, fin);
    f[0] = static_cast<char>(f[0] | (rsv << 4));
    return f;
}

struct outcome {
    std::vector<event> events;
    std::vector<std::string> payloads;  // message or control payload per event
    close_code failure = close_code::normal;
};

// Feeds `bytes` in pieces of `step` bytes (0: all at once) and records events.
outcome run(std::string_view bytes, std::size_t step = 0, frame_reader::options opt = {}) {
    frame_reader r(opt);
    outcome o;
    std::size_t pos = 0;
    while (pos < bytes.size()) {
        const auto piece = bytes.substr(pos, step == 0 ? bytes.size() : step);
        std::size_t at = 0;
        while (at < piece.size()) {
            std::size_t used = 0;
            const auto ev = r.feed(piece.substr(at), used);
            at += used;
            if (ev == event::need_more) break;
            o.events.push_back(ev);
            if (ev == event::message) {
                o.payloads.push_back(r.payload());
                r.next_message();
            } else if (ev == event::failed) {
                o.failure = r.failure();
                return o;
            } else {
                o.payloads.emplace_back(r.control_payload());
                if (ev == event::close) return o;
            }
        }
        pos += piece.size();
    }
    return o;
}

std::string close_payload(std::uint16_t code, std::string_view reason = {}) {
    std::string p;
    p.push_back(static_cast<char>(code >> 8));
    p.push_back(static_cast<char>(code & 0xff));
    p.append(reason);
    return p;
}

} // namespace

TEST_CASE("ws 1: text and binary messages of every length class, whole and byte by byte", "[ws][unit]") {
    for (std::size_t len : {0u, 1u, 125u, 126u, 127u, 128u, 65535u, 65536u, 100000u}) {
        const std::string payload(len, 'x');
        for (std::uint8_t op : {1, 2}) {
            const auto f = client_frame(op, payload);
            for (std::size_t step : {std::size_t{0}, std::size_t{1}, std::size_t{7}}) {
                if (step == 1 && len > 70000) continue;  // slow and adds nothing
                auto o = run(f, step);
                REQUIRE(o.events.size() == 1);
                CHECK(o.events[0] == event::message);
                CHECK(o.payloads[0] == payload);
            }
        }
    }
    // Header sizes: 2, 4 and 10 bytes plus the 4-byte mask.
    CHECK(client_frame(1, std::string(125, 'a')).size() == 2 + 4 + 125);
    CHECK(client_frame(1, std::string(126, 'a')).size() == 4 + 4 + 126);
    CHECK(client_frame(1, std::string(65536, 'a')).size() == 10 + 4 + 65536);
}

TEST_CASE("ws 1: masking is undone, server frames are unmasked, and the masking direction is enforced", "[ws][unit]") {
    const auto f = client_frame(1, "Hello");
    CHECK(f.substr(2, 4) == std::string(reinterpret_cast<const char*>(key), 4));
    CHECK(f.substr(6) != "Hello");
    CHECK(run(f).payloads.at(0) == "Hello");
    // RFC 6455, 5.7: an unmasked "Hello" from the server.
    std::string server;
    append_frame(server, opcode::text, "Hello");
    CHECK(server == std::string("\x81\x05Hello", 7));
    // A server must refuse unmasked client frames, a client masked server frames.
    auto o = run(server);
    CHECK(o.events == std::vector{event::failed});
    CHECK(o.failure == close_code::protocol_error);
    CHECK(run(f, 0, {.expect_masked = false}).failure == close_code::protocol_error);
    CHECK(run(server, 0, {.expect_masked = false}).payloads.at(0) == "Hello");
}

TEST_CASE("ws 1: lengths must use their shortest form and 64-bit lengths their top bit clear", "[ws][unit]") {
    // 5 bytes announced with the 16-bit form.
    std::string f = "\x81\xfe";
    f += std::string("\x00\x05", 2);
    f += std::string(reinterpret_cast<const char*>(key), 4) + "abcde";
    CHECK(run(f).failure == close_code::protocol_error);
    std::string big = "\x82\xff";
    big += std::string("\x80\x00\x00\x00\x00\x00\x00\x00", 8);
    big += std::string(reinterpret_cast<const char*>(key), 4);
    CHECK(run(big, 0, {.max_message = std::size_t(-1)}).failure == close_code::protocol_error);
}

TEST_CASE("ws 2: pings and pongs", "[ws][unit]") {
    auto o = run(client_frame(9, "hi") + client_frame(10, "unsolicited") + client_frame(9, std::string(125, 'p')));
    CHECK(o.events == std::vector{event::ping, event::pong, event::ping});
    CHECK(o.payloads[0] == "hi");
    CHECK(o.payloads[2] == std::string(125, 'p'));
    CHECK(run(client_frame(9, "")).events == std::vector{event::ping});
    // Over 125 bytes, or fragmented: a protocol error.
    CHECK(run(client_frame(9, std::string(126, 'p'))).failure == close_code::protocol_error);
    CHECK(run(client_frame(9, "frag", false)).failure == close_code::protocol_error);
    CHECK(run(client_frame(10, "frag", false)).failure == close_code::protocol_error);
}

TEST_CASE("ws 3: reserved bits are refused, RSV1 only with permessage-deflate on a first data frame", "[ws][unit]") {
    for (std::uint8_t rsv : {1, 2, 4, 7}) {
        CHECK(run(client_frame(1, "x", true, rsv)).failure == close_code::protocol_error);
        CHECK(run(client_frame(9, "x", true, rsv)).failure == close_code::protocol_error);
    }
    const frame_reader::options deflate{.allow_compressed = true};
    auto o = run(client_frame(1, "x", true, 4), 0, deflate);
    CHECK(o.events == std::vector{event::message});
    CHECK(run(client_frame(1, "x", true, 2), 0, deflate).failure == close_code::protocol_error);
    CHECK(run(client_frame(9, "x", true, 4), 0, deflate).failure == close_code::protocol_error);
    CHECK(run(client_frame(1, "a", false, 4) + client_frame(0, "b", true, 4), 0, deflate).failure ==
          close_code::protocol_error);
    // A good frame before the bad one is still delivered.
    o = run(client_frame(1, "ok") + client_frame(1, "x", true, 1));
    CHECK(o.events == std::vector{event::message, event::failed});
}

TEST_CASE("ws 4: reserved opcodes are refused", "[ws][unit]") {
    for (std::uint8_t op : {3, 4, 5, 6, 7, 11, 12, 13, 14, 15}) {
        INFO("opcode " << int(op));
        CHECK(run(client_frame(op, "")).failure == close_code::protocol_error);
        CHECK(run(client_frame(op, "payload")).failure == close_code::protocol_error);
    }
}

TEST_CASE("ws 5: fragmented messages, with control frames in between", "[ws][unit]") {
    const auto msg = client_frame(1, "frag", false) + client_frame(9, "p1") + client_frame(0, "men", false) +
                     client_frame(10, "") + client_frame(0, "ted");
    for (std::size_t step : {std::size_t{0}, std::size_t{1}, std::size_t{3}}) {
        auto o = run(msg, step);
        CHECK(o.events == std::vector{event::ping, event::pong, event::message});
        CHECK(o.payloads[0] == "p1");
        CHECK(o.payloads[2] == "fragmented");
    }
    // Binary, empty fragments, many fragments.
    std::string many = client_frame(2, "", false);
    for (int i = 0; i < 100; ++i) many += client_frame(0, std::string(1, static_cast<char>('a' + i % 26)), false);
    many += client_frame(0, "");
    auto o = run(many, 5);
    REQUIRE(o.events == std::vector{event::message});
    CHECK(o.payloads[0].size() == 100);
    // A continuation with no message, a new message inside one.
    CHECK(run(client_frame(0, "x")).failure == close_code::protocol_error);
    CHECK(run(client_frame(1, "a", false) + client_frame(1, "b")).failure == close_code::protocol_error);
    CHECK(run(client_frame(1, "a", false) + client_frame(2, "b")).failure == close_code::protocol_error);
    // After a whole message, a continuation is an error again.
    CHECK(run(client_frame(1, "a") + client_frame(0, "b")).failure == close_code::protocol_error);
}

TEST_CASE("ws 6: UTF-8 of text messages, across fragment boundaries, failing fast", "[ws][unit]") {
    const std::string kosme = "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5";  // Autobahn's "κόσμε"
    CHECK(run(client_frame(1, kosme)).payloads.at(0) == kosme);
    // Split inside each code point, one fragment per byte.
    std::string frags;
    for (std::size_t i = 0; i < kosme.size(); ++i)
        frags += client_frame(i == 0 ? 1 : 0, kosme.substr(i, 1), i + 1 == kosme.size());
    CHECK(run(frags).payloads.at(0) == kosme);
    CHECK(run(frags, 1).payloads.at(0) == kosme);
    // Invalid sequences: overlong, surrogate, beyond U+10FFFF, a bare
    // continuation byte, a truncated sequence at the end of the message.
    for (std::string bad : {std::string("\xc0\xaf"), std::string("\xed\xa0\x80"), std::string("\xf4\x90\x80\x80"),
                            std::string("\x80"), std::string("\xce"), std::string("\xff")}) {
        CHECK(run(client_frame(1, "ok" + bad)).failure == close_code::invalid_payload);
    }
    // Fail fast: the bad byte is reported before the message ends.
    auto o = run(client_frame(1, "a\xff", false));
    CHECK(o.failure == close_code::invalid_payload);
    // A truncated code point is fine mid-message, not at its end.
    CHECK(run(client_frame(1, "\xce", false)).events.empty());
    // Binary messages are not checked.
    CHECK(run(client_frame(2, "\xff\xfe")).events == std::vector{event::message});
}

TEST_CASE("ws 7: close frames, their codes and reasons", "[ws][unit]") {
    auto o = run(client_frame(8, ""));
    CHECK(o.events == std::vector{event::close});
    o = run(client_frame(8, close_payload(1000, "bye")));
    REQUIRE(o.events == std::vector{event::close});
    {
        frame_reader r;
        std::size_t used = 0;
        const auto f = client_frame(8, close_payload(4000, "done"));
        REQUIRE(r.feed(f, used) == event::close);
        CHECK(r.close_info().code == 4000);
        CHECK(r.close_info().reason == "done");
        // Nothing may follow a close.
        CHECK(r.feed(client_frame(1, "late"), used) == event::failed);
    }
    for (std::uint16_t good : {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999}) {
        INFO("code " << good);
        CHECK(run(client_frame(8, close_payload(good))).events == std::vector{event::close});
    }
    for (std::uint16_t bad : {0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535}) {
        INFO("code " << bad);
        CHECK(run(client_frame(8, close_payload(bad))).failure == close_code::protocol_error);
    }
    CHECK(run(client_frame(8, "\x03")).failure == close_code::protocol_error);  // one byte
    CHECK(run(client_frame(8, close_payload(1000, "\xff"))).failure == close_code::invalid_payload);
    CHECK(run(client_frame(8, close_payload(1000, std::string(124, 'r')))).failure == close_code::protocol_error);
    // Writing a close frame keeps it within 125 bytes and on a UTF-8 boundary.
    std::string out;
    append_close(out, 1001, std::string(121, 'a') + "\xce\xba\xce\xba");
    frame_reader client({.expect_masked = false});
    std::size_t used = 0;
    REQUIRE(client.feed(out, used) == event::close);
    CHECK(client.control_payload().size() <= 125);
    CHECK(is_valid_utf8(client.close_info().reason));
}

TEST_CASE("ws 9: the message size limit, checked from headers before buffering", "[ws][unit]") {
    const frame_reader::options small{.max_message = 1000};
    CHECK(run(client_frame(1, std::string(1000, 'a')), 0, small).events == std::vector{event::message});
    // Only the header of an oversized frame is needed to refuse it.
    const auto big = client_frame(2, std::string(1001, 'a'));
    frame_reader r(small);
    std::size_t used = 0;
    CHECK(r.feed(std::string_view(big).substr(0, 8), used) == event::failed);
    CHECK(r.failure() == close_code::message_too_big);
    CHECK(r.buffered() < 1000);
    // Fragments add up.
    auto o = run(client_frame(1, std::string(600, 'a'), false) + client_frame(0, std::string(401, 'a')), 0, small);
    CHECK(o.failure == close_code::message_too_big);
    // Control frames do not count toward a message.
    o = run(client_frame(1, std::string(600, 'a'), false) + client_frame(9, std::string(100, 'p')) +
                client_frame(0, std::string(400, 'a')), 0, small);
    CHECK(o.events == std::vector{event::ping, event::message});
}

TEST_CASE("ws handshake: SHA-1, base64 and the accept key of RFC 6455", "[ws][unit][handshake]") {
    const auto abc = detail::sha1("abc");
    CHECK(detail::base64(abc.data(), abc.size()) == "qZk+NkcGgWq6PiVxeFDCbJzQ2J0=");
    const auto empty = detail::sha1("");
    CHECK(detail::base64(empty.data(), empty.size()) == "2jmj7l5rSw0yVb/vlWAYkK/YBwk=");
    // 56 and 64 bytes: the padding crosses a block.
    const auto d56 = detail::sha1("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq");
    CHECK(detail::base64(d56.data(), d56.size()) == "hJg+RBw70m66rkqh+VEp5eVGcPE=");
    CHECK(accept_key("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    CHECK(detail::base64_size("dGhlIHNhbXBsZSBub25jZQ==") == std::size_t{16});
    CHECK_FALSE(detail::base64_size("dGhlIHNhbXBsZSBub25jZQ="));
    CHECK_FALSE(detail::base64_size("dGhlIHNhbXBsZSBub25j*Q=="));
    CHECK_FALSE(detail::base64_size("dGhl=HNhbXBsZSBub25jZQ=="));
}

TEST_CASE("ws handshake: the upgrade request is checked", "[ws][unit][handshake]") {
    using http::request;
    using fields = std::vector<std::pair<std::string, std::string>>;
    auto make = [](fields f) {
        fields base = {{"Host", "x"}, {"Upgrade", "websocket"}, {"Connection", "keep-alive, Upgrade"},
                       {"Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="}, {"Sec-WebSocket-Version", "13"}};
        for (auto& [n, v] : f)
            for (auto& b : base)
                if (b.first == n) b.second = v;
        return request::make(http::verb::get, "GET", "/ws", base);
    };
    upgrade_request up;
    REQUIRE_FALSE(check_upgrade(make({}), {}, true, up));
    CHECK(up.accept == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    CHECK_FALSE(up.deflate.enabled);
    CHECK(check_upgrade(make({{"Upgrade", "h2c"}}), {}, true, up) == courier::error::upgrade_required);
    CHECK(check_upgrade(make({{"Sec-WebSocket-Version", "8"}}), {}, true, up) == courier::error::upgrade_required);
    CHECK(check_upgrade(make({{"Connection", "keep-alive"}}), {}, true, up) == courier::error::bad_request);
    CHECK(check_upgrade(make({{"Sec-WebSocket-Key", "short"}}), {}, true, up) == courier::error::bad_request);
    CHECK(check_upgrade(make({{"Sec-WebSocket-Key", "AAAAAAAAAAAAAAAAAAAAAAAAAAAA"}}), {}, true, up) == courier::error::bad_request);
}

TEST_CASE("ws handshake: subprotocols and permessage-deflate offers", "[ws][unit][handshake]") {
    auto req = http::request::make(http::verb::get, "GET", "/ws",
                                   {{"Upgrade", "websocket"}, {"Connection", "Upgrade"},
                                    {"Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="}, {"Sec-WebSocket-Version", "13"},
                                    {"Sec-WebSocket-Protocol", "chat.v2, courier.v1"}});
    upgrade_request up;
    REQUIRE_FALSE(check_upgrade(req, {"courier.v1", "chat.v2"}, true, up));
    CHECK(up.subprotocol == "courier.v1");  // the server's preference
    REQUIRE_FALSE(check_upgrade(req, {"other"}, true, up));
    CHECK(up.subprotocol.empty());

    auto d = negotiate_deflate("permessage-deflate; client_max_window_bits");
    CHECK(d.enabled);
    CHECK(d.response() == "permessage-deflate; server_no_context_takeover");
    d = negotiate_deflate("permessage-deflate; server_max_window_bits=10; client_no_context_takeover");
    CHECK(d.server_max_window_bits == 10);
    CHECK(negotiate_deflate("permessage-deflate; server_max_window_bits=15").response() ==
          "permessage-deflate; server_no_context_takeover; server_max_window_bits=15");
    CHECK(d.response() == "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10");
    d = negotiate_deflate("permessage-deflate; client_max_window_bits=12");
    CHECK(d.response() == "permessage-deflate; server_no_context_takeover; client_max_window_bits=12");
    // Bad offers are declined; a later good one is taken.
    CHECK_FALSE(negotiate_deflate("permessage-deflate; server_max_window_bits=7").enabled);
    CHECK_FALSE(negotiate_deflate("permessage-deflate; server_max_window_bits").enabled);
    CHECK_FALSE(negotiate_deflate("permessage-deflate; unknown_param").enabled);
    CHECK_FALSE(negotiate_deflate("permessage-deflate; server_no_context_takeover; server_no_context_takeover").enabled);
    CHECK_FALSE(negotiate_deflate("x-webkit-deflate-frame").enabled);
    d = negotiate_deflate("permessage-deflate; server_max_window_bits=99, permessage-deflate; server_max_window_bits=\"9\"");
    CHECK(d.enabled);
    CHECK(d.server_max_window_bits == 9);
}

#if defined(COURIER_WITH_ZLIB)
TEST_CASE("ws permessage-deflate: compress once, inflate with limits", "[ws][unit][deflate]") {
    deflater z;
    std::string hello;
    z.compress("Hello", hello);
    // RFC 7692, 7.2.3.1: "Hello" as one compressed block.
    CHECK(hello == std::string("\xf2\x48\xcd\xc9\xc9\x07\x00", 7));
    inflater in;
    std::string out;
    bool too_big = false;
    REQUIRE(in.inflate(hello, out, 100, too_big));
    CHECK(out == "Hello");
    // A long repetitive message compresses far; inflating it again works.
    const std::string text(20000, 'z');
    std::string packed;
    z.compress(text, packed);
    CHECK(packed.size() < 200);
    out.clear();
    REQUIRE(in.inflate(packed, out, 1 << 20, too_big));
    CHECK(out == text);
    // A bomb: 20,000 bytes from under 200, refused past the limit.
    out.clear();
    CHECK_FALSE(in.inflate(packed, out, 10000, too_big));
    CHECK(too_big);
    // A peer that keeps its context: the second message refers back to the
    // first; and one that ends a message with a final block (BFINAL=1).
    {
        z_stream peer{};
        REQUIRE(deflateInit2(&peer, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) == Z_OK);
        auto send = [&](std::string_view text, int flush) {
            std::string outbuf(text.size() + 64, '\0');
            peer.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(text.data()));
            peer.avail_in = static_cast<uInt>(text.size());
            peer.next_out = reinterpret_cast<Bytef*>(outbuf.data());
            peer.avail_out = static_cast<uInt>(outbuf.size());
            deflate(&peer, flush);
            std::size_t produced = outbuf.size() - peer.avail_out;
            if (flush == Z_SYNC_FLUSH) produced -= 4;  // minus 00 00 ff ff
            outbuf.resize(produced);
            return outbuf;
        };
        const std::string phrase = "the quick brown fox jumps over the lazy dog, again and again";
        inflater keeps;
        const auto first = send(phrase, Z_SYNC_FLUSH);
        const auto second = send(phrase, Z_SYNC_FLUSH);
        CHECK(second.size() < first.size() / 2);  // a back-reference into the first
        out.clear();
        REQUIRE(keeps.inflate(first, out, 1 << 20, too_big));
        out.clear();
        REQUIRE(keeps.inflate(second, out, 1 << 20, too_big));
        CHECK(out == phrase);
        const auto final_block = send(phrase, Z_FINISH);  // BFINAL=1
        out.clear();
        REQUIRE(keeps.inflate(final_block, out, 1 << 20, too_big));
        CHECK(out == phrase);
        deflateReset(&peer);  // the peer starts afresh after a final block
        const auto after = send("after", Z_SYNC_FLUSH);
        out.clear();
        REQUIRE(keeps.inflate(after, out, 1 << 20, too_big));
        CHECK(out == "after");
        deflateEnd(&peer);
    }
    // Garbage is an error, not a crash.
    inflater fresh;
    out.clear();
    CHECK_FALSE(fresh.inflate("\xff\xff\xff\xff garbage", out, 1 << 20, too_big));
    CHECK_FALSE(too_big);
}
#endif
