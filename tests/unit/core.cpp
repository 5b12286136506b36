// Unit tests of the core: JSON validation, names and cursors, messages,
// topics, the in-memory broker and subscriptions.
#include <catch2/catch.hpp>
#include <courier/courier.hpp>

#include <asio/io_context.hpp>

#include <string>
#include <vector>

using namespace courier;

namespace {

std::string compact(std::string_view in) {
    std::string out;
    auto ec = compact_json(in, out);
    return ec ? "<invalid>" : out;
}

// A sink that records what it is offered, with a queue limit in messages.
struct recording_sink final : sink {
    std::vector<message_ptr> got;
    std::size_t limit = 1'000'000;
    int drops = 0;
    bool offer(const message_ptr& m) override {
        if (got.size() >= limit) return false;
        got.push_back(m);
        return true;
    }
    void dropped() override { ++drops; }
};

std::vector<std::uint64_t> seqs(const std::vector<message_ptr>& v) {
    std::vector<std::uint64_t> out;
    for (auto& m : v) out.push_back(m->seq());
    return out;
}

} // namespace

TEST_CASE("compact_json keeps values and removes insignificant whitespace", "[json]") {
    CHECK(compact(" { \"a\" : [ 1 , 2 ] , \"b\" : null } ") == R"({"a":[1,2],"b":null})");
    CHECK(compact("123456789012345678901234567890") == "123456789012345678901234567890");
    CHECK(compact("[1.50000000000000000001, -0, 1e308, 2E-5]") == "[1.50000000000000000001,-0,1e308,2E-5]");
    CHECK(compact(R"("\u00e9\n\"\\\/")") == "\"\xc3\xa9\\n\\\"\\\\/\"");
    CHECK(compact("\"caf\xc3\xa9 \xf0\x9f\x98\x80\"") == "\"caf\xc3\xa9 \xf0\x9f\x98\x80\"");
    CHECK(compact("\t\r\n true \n") == "true");
    CHECK(compact(R"("\u0000")") == R"("\u0000")");
}

TEST_CASE("compact_json rejects what is not one JSON value in UTF-8", "[json]") {
    for (std::string_view bad : {"", " ", "{", "}", "[1,]", "{\"a\":}", "{'a':1}", "01", "1 2", "{} {}", "nul",
                                 "NaN", "\"\xff\"", "\"\xc3\"", "\"\xed\xa0\x80\"", R"("\ud800")", R"("\udc00")", R"({"\udddd":1})", "\"a\nb\"",
                                 "[1] x", "/* c */ 1"}) {
        INFO(bad);
        CHECK(compact(bad) == "<invalid>");
    }
    CHECK(compact(std::string_view("{}\0junk", 7)) == "<invalid>");
    std::string out = "kept";
    CHECK(compact_json("[", out) == error::invalid_json);
    CHECK(out == "kept");
}

TEST_CASE("compact_json bounds nesting depth", "[json]") {
    std::string deep(detail::max_json_depth, '[');
    deep += std::string(detail::max_json_depth, ']');
    CHECK(compact(deep) == deep);
    CHECK(compact("[" + deep + "]") == "<invalid>");
    CHECK(compact(std::string(1 << 20, '[')) == "<invalid>");
    CHECK_FALSE(is_valid_json("[" + deep + "]"));
    CHECK(is_valid_json(" [1, {\"a\": \"b\"}] "));
}

TEST_CASE("topic names and ids follow PROTOCOL.md", "[names]") {
    CHECK(is_valid_topic("room"));
    CHECK(is_valid_topic("a.b_c:d-E9"));
    CHECK(is_valid_topic(std::string(128, 'x')));
    CHECK_FALSE(is_valid_topic(std::string(129, 'x')));
    CHECK_FALSE(is_valid_topic(""));
    for (std::string_view bad : {"a b", "a/b", "a%b", "é", "a\x1f", "a?b"}) CHECK_FALSE(is_valid_topic(bad));
    CHECK(is_valid_id("abc-12"));
    CHECK_FALSE(is_valid_id("abc.12"));
    CHECK_FALSE(is_valid_id(std::string(65, 'a')));
}

TEST_CASE("cursor parsing", "[names]") {
    std::error_code ec;
    CHECK(cursor::parse("", ec).where == cursor::kind::now);
    CHECK(cursor::parse("earliest", ec).where == cursor::kind::earliest);
    auto c = cursor::parse("k3j9x2ab-42", ec);
    CHECK_FALSE(ec);
    CHECK(c.where == cursor::kind::position);
    CHECK(c.well_formed);
    CHECK(c.epoch == "k3j9x2ab");
    CHECK(c.seq == 42);
    CHECK_FALSE(cursor::parse("nodash", ec).well_formed);
    CHECK_FALSE(cursor::parse("x-99999999999999999999999", ec).well_formed);
    CHECK_FALSE(cursor::parse("x-", ec).well_formed);
    cursor::parse("bad cursor", ec);
    CHECK(ec == error::invalid_cursor);
    CHECK(ec == condition::bad_request);
}

TEST_CASE("a message stores its envelope once and caches encodings", "[message]") {
    message m("ep", 7, "room", R"({"a":1})");
    CHECK(m.envelope() == R"({"id":"ep-7","topic":"room","data":{"a":1}})");
    CHECK(m.id() == "ep-7");
    CHECK(m.topic() == "room");
    CHECK(m.data() == R"({"a":1})");
    int renders = 0;
    auto render = [&](const message& x) {
        ++renders;
        return "data: " + std::string(x.envelope()) + "\n\n";
    };
    const std::string& a = m.encoded(wire_format::sse, render);
    const std::string& b = m.encoded(wire_format::sse, render);
    CHECK(&a == &b);
    CHECK(renders == 1);
    m.encoded(wire_format::websocket, render);
    CHECK(renders == 2);
}

TEST_CASE("errors map to status, wire code and condition", "[error]") {
    CHECK(http_status(error::payload_too_large) == 413);
    CHECK(http_status(error::header_too_large) == 431);
    CHECK(http_status(error::length_required) == 411);
    CHECK(http_status(error::unsupported_media_type) == 415);
    CHECK(http_status(error::shutting_down) == 503);
    CHECK(wire_code(error::invalid_json) == "invalid_json");
    CHECK(std::error_code(error::forbidden) == condition::forbidden);
    CHECK(std::error_code(error::unauthorized) != condition::forbidden);
    CHECK(std::error_code(error::payload_too_large) == condition::limit);
    CHECK(std::error_code(error::bad_request).message() == "malformed request");
    CHECK(error_body(error::forbidden, "no \"room\"") == R"({"error":"forbidden","message":"no \"room\""})");
}

TEST_CASE("broker publish assigns strictly increasing ids per topic", "[broker]") {
    broker hub;
    auto a = hub.publish("", "t", "1");
    auto b = hub.publish("", "t", "2");
    auto other = hub.publish("", "u", "3");
    REQUIRE_FALSE(a.ec);
    CHECK(a.msg->seq() == 1);
    CHECK(b.msg->seq() == 2);
    CHECK(other.msg->seq() == 1);
    CHECK(a.msg->id() != other.msg->id());  // epochs differ per topic
    CHECK(hub.publish("", "bad topic", "1").ec == error::invalid_topic);
    CHECK(hub.publish("", "t", "{").ec == error::invalid_json);
}

TEST_CASE("broker read from a cursor, with history limits and gaps", "[broker]") {
    broker hub{{.history = 3, .max_batch = 2}};
    read_result start;
    REQUIRE_FALSE(hub.read("", "t", "", start));  // a topic nobody used: not created by reading
    CHECK(start.messages.empty());
    CHECK_FALSE(start.gap);
    CHECK(start.next == "earliest");
    CHECK(hub.topic_count() == 0);

    const std::string origin(hub.publish("", "t", "1").msg->id());  // seq 1
    for (int i = 2; i <= 5; ++i) hub.publish("", "t", std::to_string(i));

    SECTION("from now returns nothing and the current cursor") {
        read_result r;
        hub.read("", "t", "", r);
        CHECK(r.messages.empty());
        CHECK(r.next.ends_with("-5"));
    }
    SECTION("a cursor older than the history is a gap, from the oldest kept") {
        read_result r;
        hub.read("", "t", origin, r);
        CHECK(r.gap);
        CHECK(seqs(r.messages) == std::vector<std::uint64_t>{3, 4});  // batch of 2
        CHECK(r.next.ends_with("-4"));
        read_result more;
        hub.read("", "t", r.next, more);
        CHECK_FALSE(more.gap);
        CHECK(seqs(more.messages) == std::vector<std::uint64_t>{5});
    }
    SECTION("a cursor at the edge of the history is not a gap") {
        read_result first;
        hub.read("", "t", "earliest", first);
        CHECK_FALSE(first.gap);
        CHECK(seqs(first.messages) == std::vector<std::uint64_t>{3, 4});
        const std::string first_id(first.messages[0]->id());
        const std::string at2 = first_id.substr(0, first_id.rfind('-')) + "-2";
        read_result r;
        hub.read("", "t", at2, r);
        CHECK_FALSE(r.gap);
        CHECK(seqs(r.messages) == std::vector<std::uint64_t>{3, 4});
    }
    SECTION("a cursor from another life or unknown is a gap") {
        for (std::string c : {"zzzzzzzz-4", "nodash", "x-1"}) {
            read_result r;
            REQUIRE_FALSE(hub.read("", "t", c, r));
            CHECK(r.gap);
            CHECK(seqs(r.messages) == std::vector<std::uint64_t>{3, 4});
        }
    }
    SECTION("a cursor ahead of the topic is a gap, not a silent skip") {
        std::string ahead = origin.substr(0, origin.rfind('-')) + "-99";
        read_result r;
        hub.read("", "t", ahead, r);
        CHECK(r.gap);
    }
    SECTION("malformed cursors are refused") {
        read_result r;
        CHECK(hub.read("", "t", "not a cursor", r) == error::invalid_cursor);
        CHECK(hub.read("", "bad/topic", "", r) == error::invalid_topic);
    }
}

TEST_CASE("a poll batch is bounded in bytes, and never empty", "[broker]") {
    broker hub{{.max_batch_bytes = 100}};
    const std::string big = "\"" + std::string(150, 'x') + "\"";
    for (int i = 0; i < 3; ++i) hub.publish("", "t", R"({"n":1})");
    hub.publish("", "t", big);
    read_result small;
    hub.read("", "t", "earliest", small);
    CHECK(small.messages.size() == 2);  // 2 x 47 bytes fit in 100, the third does not
    read_result rest;
    hub.read("", "t", small.next, rest);
    CHECK(rest.messages.size() == 1);
    read_result huge;
    hub.read("", "t", rest.next, huge);
    REQUIRE(huge.messages.size() == 1);  // one message over the cap still goes out alone
    CHECK(huge.messages[0]->data() == big);
}

TEST_CASE("reading a topic that does not exist", "[broker]") {
    broker hub;
    read_result fresh, old;
    hub.read("", "never", "earliest", fresh);
    CHECK_FALSE(fresh.gap);
    CHECK(fresh.next == "earliest");
    hub.read("", "never", "abcdefgh-7", old);  // a cursor from an earlier life
    CHECK(old.gap);
    CHECK(hub.topic_count() == 0);
}

TEST_CASE("broker history age limit", "[broker]") {
    broker hub{{.history = 100, .max_age = std::chrono::milliseconds(30)}};
    hub.publish("", "t", "1");
    std::this_thread::sleep_for(std::chrono::milliseconds(60));
    hub.publish("", "t", "2");
    read_result r;
    hub.read("", "t", "earliest", r);
    CHECK(seqs(r.messages) == std::vector<std::uint64_t>{2});
}

TEST_CASE("tenants never share topics", "[broker]") {
    broker hub;
    hub.publish("a", "room", R"("for a")");
    read_result ra, rb;
    hub.read("a", "room", "earliest", ra);
    hub.read("b", "room", "earliest", rb);
    CHECK(ra.messages.size() == 1);
    CHECK(rb.messages.empty());
    CHECK(ra.messages[0]->topic() == "room");  // the tenant never shows
}

TEST_CASE("broker topic limit", "[broker]") {
    broker hub{{.max_topics = 2}};
    CHECK_FALSE(hub.publish("", "a", "1").ec);
    CHECK_FALSE(hub.publish("", "b", "1").ec);
    CHECK(hub.publish("", "c", "1").ec == error::too_many_topics);
    CHECK_FALSE(hub.publish("", "a", "2").ec);
    CHECK(hub.topic_count() == 2);
}

TEST_CASE("broker options are checked at construction", "[broker]") {
    CHECK_THROWS_AS(broker({.history = 0}), std::invalid_argument);
    CHECK_THROWS_AS(broker({.max_batch = 0}), std::invalid_argument);
}

TEST_CASE("subscriptions get the backlog, then every message once, in order", "[subscription]") {
    asio::io_context lane(1);
    broker hub{{.history = 100}};
    hub.publish("", "t", "1");
    hub.publish("", "t", "2");
    recording_sink s;
    read_result backlog;
    std::error_code ec;
    auto sub = hub.subscribe("", "t", "earliest", s, lane.get_executor(), backlog, ec);
    REQUIRE_FALSE(ec);
    CHECK(seqs(backlog.messages) == std::vector<std::uint64_t>{1, 2});
    for (int i = 3; i <= 6; ++i) hub.publish("", "t", std::to_string(i));
    lane.run();
    lane.restart();
    CHECK(seqs(s.got) == std::vector<std::uint64_t>{3, 4, 5, 6});
    CHECK(sub.cursor().ends_with("-6"));

    sub.reset();
    CHECK_FALSE(sub.active());
    hub.publish("", "t", "7");
    lane.run();
    CHECK(s.got.size() == 4);
}

TEST_CASE("several subscribers on one lane share one drain per burst", "[subscription]") {
    asio::io_context lane(1);
    broker hub;
    std::vector<recording_sink> sinks(10);
    std::vector<subscription> subs;
    for (auto& s : sinks) {
        read_result b;
        std::error_code ec;
        subs.push_back(hub.subscribe("", "t", "", s, lane.get_executor(), b, ec));
    }
    for (int i = 1; i <= 100; ++i) hub.publish("", "t", std::to_string(i));
    CHECK(lane.poll_one() == 1);  // one drain handler for 100 publishes and 10 subscribers
    for (auto& s : sinks) CHECK(s.got.size() == 100);
    CHECK(lane.poll() == 0);
}

TEST_CASE("a slow consumer is dropped without disturbing the others", "[subscription]") {
    asio::io_context lane(1);
    broker hub;
    recording_sink fast, slow;
    slow.limit = 3;
    read_result b1, b2;
    std::error_code ec;
    auto s1 = hub.subscribe("", "t", "", fast, lane.get_executor(), b1, ec);
    auto s2 = hub.subscribe("", "t", "", slow, lane.get_executor(), b2, ec);
    for (int i = 1; i <= 10; ++i) hub.publish("", "t", std::to_string(i));
    lane.run();
    CHECK(fast.got.size() == 10);
    CHECK(slow.got.size() == 3);
    CHECK(slow.drops == 1);
    CHECK_FALSE(s2.active());
    CHECK(s1.active());
    CHECK(s2.cursor().ends_with("-3"));  // where the client resumes
}

TEST_CASE("a subscriber whose messages left the history is dropped", "[subscription]") {
    asio::io_context lane(1);
    broker hub{{.history = 4}};
    recording_sink s;
    read_result b;
    std::error_code ec;
    auto sub = hub.subscribe("", "t", "", s, lane.get_executor(), b, ec);
    for (int i = 1; i <= 10; ++i) hub.publish("", "t", std::to_string(i));  // the lane has not run
    lane.run();
    CHECK(s.got.empty());
    CHECK(s.drops == 1);
    CHECK_FALSE(sub.active());
}

TEST_CASE("subscribers on two lanes each get a drain", "[subscription]") {
    asio::io_context lane1(1), lane2(1);
    broker hub;
    recording_sink a, b;
    read_result r1, r2;
    std::error_code ec;
    auto s1 = hub.subscribe("", "t", "", a, lane1.get_executor(), r1, ec);
    auto s2 = hub.subscribe("", "t", "", b, lane2.get_executor(), r2, ec);
    hub.publish("", "t", "1");
    CHECK(lane1.poll() == 1);
    CHECK(lane2.poll() == 1);
    CHECK(a.got.size() == 1);
    CHECK(b.got.size() == 1);
}

TEST_CASE("concepts hold for the library's types and fail for others", "[concepts]") {
    STATIC_REQUIRE(Transport<polling>);
    STATIC_REQUIRE(Transport<long_polling>);
    STATIC_REQUIRE_FALSE(Transport<int>);
    STATIC_REQUIRE_FALSE(Transport<broker>);
    STATIC_REQUIRE(Broker<in_memory>);
    STATIC_REQUIRE_FALSE(Broker<polling>);
    STATIC_REQUIRE(Sink<recording_sink>);
    STATIC_REQUIRE_FALSE(Sink<int>);
    STATIC_REQUIRE(Channel<channel<long_polling>>);
    STATIC_REQUIRE_FALSE(Channel<polling>);
}
