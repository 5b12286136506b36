// Unit tests of the HTTP layer: the request parser (every error it names),
// query strings, responses and CORS.
#include <catch2/catch.hpp>
#include <courier/courier.hpp>

#include <string>

using namespace courier;
using http::request_parser;

namespace {

struct parsed {
    request_parser::status status;
    std::size_t consumed = 0;
    error failure = error::bad_request;
    http::request req;
};

// Feeds `text` in pieces of `step` bytes, as a socket would deliver it.
parsed parse(std::string_view text, std::size_t step = std::string_view::npos, http::parser_limits lim = {}) {
    request_parser p(lim);
    parsed out{request_parser::status::need_more};
    std::size_t pos = 0;
    std::string pending;
    while (pos < text.size() || !pending.empty()) {
        const auto piece = text.substr(pos, step);
        pos += piece.size();
        pending += piece;
        std::size_t used = 0;
        auto st = p.feed(pending, used);
        out.consumed += used;
        pending.erase(0, used);
        if (st == request_parser::status::head_done) st = p.feed(pending, used), out.consumed += used, pending.erase(0, used);
        out.status = st;
        if (st == request_parser::status::done) {
            out.req = p.release();
            return out;
        }
        if (st == request_parser::status::failed) {
            out.failure = p.failure();
            return out;
        }
        if (pos >= text.size() && used == 0) break;
    }
    return out;
}

error failure_of(std::string_view text, http::parser_limits lim = {}) {
    auto r = parse(text, std::string_view::npos, lim);
    REQUIRE(r.status == request_parser::status::failed);
    return r.failure;
}

} // namespace

TEST_CASE("parser reads a GET with headers and a query", "[parser]") {
    const std::string text = "GET /poll/room?since=ab-1&x=%41+b HTTP/1.1\r\nHost: h\r\nX-Y:  v w \r\n\r\n";
    for (std::size_t step : {std::size_t(1), std::size_t(3), std::size_t(7), text.size()}) {
        INFO("step " << step);
        auto r = parse(text, step);
        REQUIRE(r.status == request_parser::status::done);
        CHECK(r.consumed == text.size());
        CHECK(r.req.method() == http::verb::get);
        CHECK(r.req.path() == "/poll/room");
        CHECK(r.req.query().get("since") == "ab-1");
        CHECK(r.req.query().get("x") == "A b");
        CHECK_FALSE(r.req.query().get("none"));
        CHECK(r.req.header("x-y") == "v w");
        CHECK(r.req.header("HOST") == "h");
        CHECK(r.req.keep_alive());
        CHECK(r.req.version_minor() == 1);
    }
}

TEST_CASE("parser reads Content-Length and chunked bodies", "[parser]") {
    auto r = parse("POST /p/t HTTP/1.1\r\nHost: h\r\nContent-Length: 7\r\n\r\n{\"a\":1}", 2);
    REQUIRE(r.status == request_parser::status::done);
    CHECK(r.req.body() == R"({"a":1})");
    CHECK(r.req.has_length());

    const std::string chunked =
        "POST /p/t HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
        "3;ext=1\r\n{\"a\r\n4\r\n\":1}\r\n0\r\nTrailer: x\r\n\r\n";
    for (std::size_t step : {std::size_t(1), std::size_t(5), chunked.size()}) {
        auto c = parse(chunked, step);
        REQUIRE(c.status == request_parser::status::done);
        CHECK(c.req.body() == R"({"a":1})");
        CHECK(c.consumed == chunked.size());
    }
}

TEST_CASE("parser leaves a pipelined request for the next round", "[parser]") {
    const std::string two = "GET /a HTTP/1.1\r\nHost: h\r\n\r\nGET /b HTTP/1.1\r\nHost: h\r\n\r\n";
    request_parser p;
    std::size_t used = 0;
    REQUIRE(p.feed(two, used) == request_parser::status::done);
    CHECK(p.get().path() == "/a");
    p.reset();
    std::size_t used2 = 0;
    REQUIRE(p.feed(std::string_view(two).substr(used), used2) == request_parser::status::done);
    CHECK(p.get().path() == "/b");
    CHECK(used + used2 == two.size());
}

TEST_CASE("parser keep-alive rules", "[parser]") {
    CHECK_FALSE(parse("GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n").req.keep_alive());
    CHECK_FALSE(parse("GET / HTTP/1.0\r\n\r\n").req.keep_alive());
    CHECK(parse("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").req.keep_alive());
    CHECK(parse("\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n").status == request_parser::status::done);
}

TEST_CASE("parser announces Expect: 100-continue before the body", "[parser]") {
    request_parser p;
    std::size_t used = 0;
    const std::string head = "POST /p/t HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n";
    CHECK(p.feed(head, used) == request_parser::status::head_done);
    CHECK(p.expects_continue());
    CHECK(p.feed("[]", used) == request_parser::status::done);
    CHECK(p.get().body() == "[]");
}

TEST_CASE("parser errors are the ones PROTOCOL.md names", "[parser]") {
    CHECK(failure_of("GET / HTTP/1.1\r\nHost: h\r\nX: " + std::string(17000, 'a') + "\r\n\r\n") == error::header_too_large);
    CHECK(failure_of("GET /" + std::string(17000, 'a')) == error::header_too_large);
    {
        std::string many = "GET / HTTP/1.1\r\nHost: h\r\n";
        for (int i = 0; i < 101; ++i) many += "X-" + std::to_string(i) + ": 1\r\n";
        CHECK(failure_of(many + "\r\n") == error::header_too_large);
    }
    CHECK(failure_of("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1048577\r\n\r\n") == error::payload_too_large);
    CHECK(failure_of("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999999\r\n\r\n") == error::payload_too_large);
    CHECK(failure_of("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n100001\r\n") == error::payload_too_large);
    CHECK(failure_of("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffffffff\r\n") == error::payload_too_large);
    CHECK(failure_of("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n") == error::not_implemented);
    CHECK(failure_of("GET / HTTP/2.0\r\nHost: h\r\n\r\n") == error::version_not_supported);
    CHECK(failure_of("GET / HTTP/1.2\r\nHost: h\r\n\r\n") == error::version_not_supported);
    for (std::string_view bad : {
             "GET / HTTP/1.1\r\n\r\n",                                                   // no Host
             "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",                             // two Hosts
             "GET  / HTTP/1.1\r\nHost: h\r\n\r\n",                                       // double space
             "GET / HTTP/1.1 x\r\nHost: h\r\n\r\n",                                      // junk version
             "GET noslash HTTP/1.1\r\nHost: h\r\n\r\n",                                  // not origin-form
             "G(T / HTTP/1.1\r\nHost: h\r\n\r\n",                                        // bad method token
             "GET / HTTP/1.1\r\nHost: h\r\nBad Name: x\r\n\r\n",                         // space in name
             "GET / HTTP/1.1\r\nHost: h\r\nNoColon\r\n\r\n",                             // no colon
             "GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n folded\r\n\r\n",                     // obs-fold
             "GET / HTTP/1.1\r\nHost: h\r\nX: a\x01b\r\n\r\n",                           // control char
             "GET / HTTP/1.1\nHost: h\n\n\r\n\r\n",                                      // bare LF
             "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",  // conflicting
             "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n",
             "POST / HTTP/1.1\r\nHost: h\r\nContent-Length:\r\nTransfer-Encoding: chunked\r\n\r\n",  // empty length
             "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1x\r\n\r\n",
             "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",  // smuggling
             "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
             "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",    // bad chunk size
             "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab\r\n",  // chunk overrun
         }) {
        INFO(bad);
        CHECK(failure_of(bad) == error::bad_request);
    }
}

TEST_CASE("parser limits are configurable", "[parser]") {
    http::parser_limits lim{.head = 64, .headers = 2, .body = 4};
    CHECK(failure_of("GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\n\r\n", lim) == error::header_too_large);
    CHECK(failure_of("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\n", lim) == error::payload_too_large);
    CHECK(parse("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n\r\n[12]", 1, lim).status ==
          request_parser::status::done);
}

TEST_CASE("percent-decoding and query parameters", "[url]") {
    CHECK(http::percent_decode("a%3Ab") == "a:b");
    CHECK(http::percent_decode("a+b", true) == "a b");
    CHECK(http::percent_decode("a+b") == "a+b");
    CHECK_FALSE(http::percent_decode("%4"));
    CHECK_FALSE(http::percent_decode("%zz"));
    CHECK_FALSE(http::percent_decode("%00"));
    http::query_view q("topic=a&topic=b&&flag&since=");
    CHECK(q.all("topic") == std::vector<std::string>{"a", "b"});
    CHECK(q.has("flag"));
    CHECK(q.get("since") == "");
    CHECK_FALSE(q.has("none"));
}

TEST_CASE("responses serialise status, headers and length", "[response]") {
    http::response r(200);
    r.set("X-A", "1");
    r.json("{}");
    CHECK(r.head() == "HTTP/1.1 200 OK\r\nX-A: 1\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n");
    r.keep_alive = false;
    CHECK(r.head().find("Connection: close\r\n") != std::string::npos);
    auto e = http::error_response(error::payload_too_large);
    CHECK(e.status() == 413);
    CHECK(e.body() == R"({"error":"payload_too_large","message":"body is over the size limit"})");
    http::response none(204);
    CHECK(none.head().find("Content-Length") == std::string::npos);
}

TEST_CASE("CORS allow-list and preflight", "[cors]") {
    const std::vector<std::string> allow{"https://app.example"};
    auto req = http::request::make(http::verb::options, "OPTIONS", "/p/t",
                                   {{"Origin", "https://app.example"}, {"Access-Control-Request-Method", "POST"}});
    CHECK(http::is_preflight(req));
    auto ok = http::preflight_response(allow, req);
    CHECK(ok.status() == 204);
    CHECK(ok.head().find("Access-Control-Allow-Origin: https://app.example\r\n") != std::string::npos);
    CHECK(ok.head().find("Access-Control-Allow-Headers: Authorization, Content-Type") != std::string::npos);
    auto evil = http::request::make(http::verb::options, "OPTIONS", "/p/t",
                                    {{"Origin", "https://evil.example"}, {"Access-Control-Request-Method", "POST"}});
    CHECK(http::preflight_response(allow, evil).status() == 403);
    CHECK(http::preflight_response({"*"}, evil).status() == 204);

    auto get = http::request::make(http::verb::get, "GET", "/p/t", {{"Origin", "https://evil.example"}});
    http::response res(200);
    http::apply_cors(allow, get, res);
    CHECK(res.head().find("Access-Control-Allow-Origin") == std::string::npos);
    CHECK(res.head().find("Vary: Origin") != std::string::npos);
}

TEST_CASE("request::make builds requests whose views survive a move", "[request]") {
    auto r = http::request::make(http::verb::get, "GET", "/a", {{"K", "v"}});
    auto moved = std::move(r);
    CHECK(moved.path() == "/a");
    CHECK(moved.header("k") == "v");
}

TEST_CASE("static files: content types, entity tags and If-None-Match", "[static]") {
    CHECK(detail::content_type_of("index.html") == "text/html; charset=utf-8");
    CHECK(detail::content_type_of("dir/app.JS") == "text/javascript; charset=utf-8");
    CHECK(detail::content_type_of("logo.svg") == "image/svg+xml");
    CHECK(detail::content_type_of("archive.tar.gz") == "application/octet-stream");
    CHECK(detail::content_type_of("Makefile") == "application/octet-stream");

    const auto tag = detail::entity_tag("hello");
    CHECK(tag.size() == 18);
    CHECK(tag.front() == '"');
    CHECK(tag.back() == '"');
    CHECK(tag == detail::entity_tag("hello"));
    CHECK(tag != detail::entity_tag("hellp"));

    CHECK(detail::etag_matches(tag, tag));
    CHECK(detail::etag_matches("\"x\", " + tag, tag));
    CHECK(detail::etag_matches("W/" + tag, tag));
    CHECK(detail::etag_matches("*", tag));
    CHECK_FALSE(detail::etag_matches("", tag));
    CHECK_FALSE(detail::etag_matches("\"x\", \"y\"", tag));
    CHECK_FALSE(detail::etag_matches(tag.substr(1), tag));  // unquoted is another tag

    CHECK_THROWS_AS(static_files("pages"), std::invalid_argument);
    CHECK_THROWS_AS(static_files("/", "/nonexistent/courier-pages"), std::invalid_argument);
    CHECK(static_files::courier_js().size() == 1);
    CHECK(web::courier_js.find("export class Courier") != std::string_view::npos);
}
