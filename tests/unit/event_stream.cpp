// Unit tests of the event-stream parser against the WHATWG HTML rules
// ("Parsing an event stream"), and of the UTF-8 validator behind it.
#include <catch2/catch.hpp>
#include <courier/courier.hpp>

#include <string>
#include <vector>

using namespace courier;

namespace {

struct seen {
    std::string type, data, id;
    bool operator==(const seen&) const = default;
};

std::vector<seen> parse_all(event_stream::parser& p, std::string_view bytes, std::size_t step = std::string_view::npos) {
    std::vector<seen> out;
    for (std::size_t i = 0; i < bytes.size(); i += step) {
        REQUIRE(p.feed(bytes.substr(i, step), [&](const event_stream::event& e) {
            out.push_back({std::string(e.type), std::string(e.data), std::string(e.last_event_id)});
        }));
        if (step == std::string_view::npos) break;
    }
    return out;
}

std::vector<seen> parse_all(std::string_view bytes, std::size_t step = std::string_view::npos) {
    event_stream::parser p;
    return parse_all(p, bytes, step);
}

} // namespace

TEST_CASE("event stream: LF, CR and CRLF line ends, in any split", "[event-stream]") {
    const std::vector<seen> want{{"message", "a", "1"}, {"message", "b", "2"}};
    for (std::string_view text : {"id: 1\ndata: a\n\nid: 2\ndata: b\n\n", "id: 1\rdata: a\r\rid: 2\rdata: b\r\r",
                                  "id: 1\r\ndata: a\r\n\r\nid: 2\r\ndata: b\r\n\r\n", "id: 1\r\ndata: a\n\rid: 2\rdata: b\r\n\n"}) {
        for (std::size_t step : {std::size_t(1), std::size_t(2), std::size_t(5), text.size()}) {
            INFO(step);
            CHECK(parse_all(text, step) == want);
        }
    }
}

TEST_CASE("event stream: a leading BOM is skipped once", "[event-stream]") {
    CHECK(parse_all("\xef\xbb\xbf" "data: x\n\n") == std::vector<seen>{{"message", "x", ""}});
    CHECK(parse_all("\xef\xbb\xbf" "data: x\n\n", 1) == std::vector<seen>{{"message", "x", ""}});
    // A second BOM is part of the line: the field name is then not "data".
    CHECK(parse_all("\xef\xbb\xbf\xef\xbb\xbf" "data: x\n\n").empty());
    CHECK(parse_all("data: a\n\n\xef\xbb\xbf" "data: b\n\n") == std::vector<seen>{{"message", "a", ""}});
}

TEST_CASE("event stream: multi-line data, comments, event types", "[event-stream]") {
    CHECK(parse_all("data: one\ndata: two\ndata\n\n") == std::vector<seen>{{"message", "one\ntwo\n", ""}});
    CHECK(parse_all(": a comment\ndata: x\n: another\n\n") == std::vector<seen>{{"message", "x", ""}});
    CHECK(parse_all("event: gap\ndata: {}\n\ndata: y\n\n") ==
          std::vector<seen>{{"gap", "{}", ""}, {"message", "y", ""}});
    // Only one leading space is removed; a value may contain colons.
    CHECK(parse_all("data:  two spaces\ndata:none\ndata: a:b\n\n") ==
          std::vector<seen>{{"message", " two spaces\nnone\na:b", ""}});
    // Unknown fields and fields without a colon that are not known are ignored.
    CHECK(parse_all("foo: bar\nevent\ndata: z\nxyz\n\n") == std::vector<seen>{{"message", "z", ""}});
}

TEST_CASE("event stream: ids, NUL, empty events and the last event ID", "[event-stream]") {
    event_stream::parser p;
    CHECK(parse_all(p, "id: 7\n\n").empty());  // no data: nothing dispatched...
    CHECK(p.last_event_id() == "7");            // ...but the id is kept
    CHECK(parse_all(p, std::string_view("id: 8\0x\ndata: a\n\n", 17)) == std::vector<seen>{{"message", "a", "7"}});
    CHECK(parse_all(p, "id\ndata: b\n\n") == std::vector<seen>{{"message", "b", ""}});  // `id` alone resets
    CHECK(parse_all(p, "id: 9\ndata: c\n\ndata: d\n\n") == std::vector<seen>{{"message", "c", "9"}, {"message", "d", "9"}});
}

TEST_CASE("event stream: retry takes digits only", "[event-stream]") {
    event_stream::parser p;
    parse_all(p, "retry: 1500\n\n");
    CHECK(p.retry() == 1500u);
    parse_all(p, "retry: 15x\nretry: -1\nretry:  200\nretry:\n\n");
    CHECK(p.retry() == 1500u);
}

TEST_CASE("event stream: an unfinished event is dropped at reconnection", "[event-stream]") {
    event_stream::parser p;
    CHECK(parse_all(p, "id: 1\ndata: a\n\nid: 2\ndata: half").size() == 1);
    p.reconnect();
    CHECK(p.last_event_id() == "1");
    CHECK(parse_all(p, "\xef\xbb\xbf" "data: b\n\n") == std::vector<seen>{{"message", "b", "1"}});
}

TEST_CASE("event stream: invalid UTF-8 becomes U+FFFD, long lines fail", "[event-stream]") {
    CHECK(parse_all("data: a\xff" "b\n\n") == std::vector<seen>{{"message", "a\xef\xbf\xbd" "b", ""}});
    event_stream::parser p(16);
    CHECK_FALSE(p.feed(std::string(17, 'x'), [](const event_stream::event&) {}));
}

TEST_CASE("utf8_validator follows RFC 3629 across splits", "[utf8]") {
    CHECK(is_valid_utf8("plain"));
    CHECK(is_valid_utf8("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"));
    for (std::string_view bad : {"\xc0\xaf", "\xe0\x80\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xf5", "\x80", "\xc3"})
        CHECK_FALSE(is_valid_utf8(bad));
    utf8_validator v;
    CHECK(v.feed("\xf0\x9f"));
    CHECK_FALSE(v.complete());
    CHECK(v.feed("\x98\x80"));
    CHECK(v.complete());
    CHECK_FALSE(v.feed("\xff"));
    std::string out;
    append_utf8_replacing(out, "a\xe2\x82x");
    CHECK(out == "a\xef\xbf\xbdx");
}
