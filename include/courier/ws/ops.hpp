// courier ws: the JSON ops of PROTOCOL.md's WebSocket section, sans I/O:
// reading a client's op, writing the server's ack, error and gap frames.
#pragma once
#include "../config.hpp"
#include "../core/json.hpp"
#include "../detail/json_scan.hpp"
#include "../error.hpp"
#include "../http/response.hpp"

#include <string>
#include <string_view>
#include <system_error>

namespace courier::detail {

/// `{"op":"error","ref":<ref|null>,"error":"<code>","message":"<text>"}`.
inline std::string ws_error_op(std::string_view ref, error e, std::string_view text = {}) {
    std::string s = R"({"op":"error","ref":)";
    s.append(ref.empty() ? "null" : ref).append(R"(,"error":")").append(wire_code(e)).append(R"(","message":)");
    append_json_string(s, text.empty() ? info(e).message : text);
    s.push_back('}');
    return s;
}

/// `{"op":"ack","ref":<ref>,"id":"<id>"}`, or without an id.
inline std::string ws_ack_op(std::string_view ref, std::string_view id = {}) {
    std::string s = R"({"op":"ack","ref":)";
    s.append(ref);
    if (!id.empty()) s.append(R"(,"id":")").append(id).push_back('"');
    s.push_back('}');
    return s;
}

/// `{"op":"gap","topic":"<topic>","next":"<id>"}`.
inline std::string ws_gap_op(std::string_view topic, std::string_view next) {
    std::string s = R"({"op":"gap","topic":")";
    s.append(topic).append(R"(","next":")").append(next).append(R"("})");
    return s;
}

/// One client op, as raw JSON slices of its frame.
struct ws_op {
    std::string_view op, topic, since, ref;  // op/topic/since: string contents
    std::string_view data;                   // raw JSON, empty when absent
};

/// Reads the members of an op. Errors: invalid_json (not JSON), bad_request
/// (not an object, or `op`, `topic` or `since` not a string; `ref` is read
/// all the same, so that the error can carry it).
inline std::error_code parse_ws_op(std::string_view text, ws_op& out) {
    if (!is_valid_json(text)) return error::invalid_json;
    const auto at = json::skip_ws(text, 0);
    if (at >= text.size() || text[at] != '{') return error::bad_request;
    bool ok = true;
    auto str = [&](std::string_view v, std::string_view& slot) {
        if (v.empty() || v.front() != '"') ok = false;
        else slot = json::string_contents(v);
    };
    json::for_each_member(text, [&](std::string_view k, std::string_view v) {
        if (k == "op") str(v, out.op);
        else if (k == "topic") str(v, out.topic);
        else if (k == "since") str(v, out.since);
        else if (k == "ref") out.ref = v;
        else if (k == "data") out.data = v;
    });
    return ok ? std::error_code{} : error::bad_request;
}

} // namespace courier::detail
