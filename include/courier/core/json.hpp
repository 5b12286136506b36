// courier core: validate a JSON message and store it compactly, in one SAX pass.
#pragma once
#include "../config.hpp"
#include "../error.hpp"
#include "utf8.hpp"

#include <rapidjson/memorystream.h>
#include <rapidjson/reader.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <string>
#include <string_view>

namespace courier::detail {

/// Nesting deeper than this is rejected: it bounds the parser's and writer's
/// stacks for hostile input such as a megabyte of '['.
inline constexpr unsigned max_json_depth = 256;

// A writer that keeps numbers exactly as written. RapidJSON 1.1.0's
// Writer::RawNumber would quote them, so numbers read as strings
// (kParseNumbersAsStringsFlag) are spliced back in with RawValue.
class compact_writer : public rapidjson::Writer<rapidjson::StringBuffer> {
public:
    using base = rapidjson::Writer<rapidjson::StringBuffer>;
    using base::base;

    bool RawNumber(const Ch* s, rapidjson::SizeType n, bool) {
        return RawValue(s, n, rapidjson::kNumberType);
    }
    // RapidJSON 1.1.0 decodes a lone low surrogate escape ("\udc00") into
    // bytes that are not UTF-8; strings are checked after decoding.
    bool String(const Ch* s, rapidjson::SizeType n, bool copy) {
        return is_valid_utf8({s, n}) && base::String(s, n, copy);
    }
    bool Key(const Ch* s, rapidjson::SizeType n, bool copy) { return is_valid_utf8({s, n}) && base::Key(s, n, copy); }
    bool StartObject() { return enter() && base::StartObject(); }
    bool EndObject(rapidjson::SizeType n) { --depth_; return base::EndObject(n); }
    bool StartArray() { return enter() && base::StartArray(); }
    bool EndArray(rapidjson::SizeType n) { --depth_; return base::EndArray(n); }

private:
    bool enter() noexcept { return ++depth_ <= max_json_depth; }
    unsigned depth_ = 0;
};

// Validation without output, for clients that only need to know a body is JSON.
struct depth_checker : rapidjson::BaseReaderHandler<rapidjson::UTF8<>, depth_checker> {
    bool Default() { return true; }
    bool RawNumber(const char*, rapidjson::SizeType, bool) { return true; }
    bool String(const char* s, rapidjson::SizeType n, bool) { return is_valid_utf8({s, n}); }
    bool Key(const char* s, rapidjson::SizeType n, bool) { return is_valid_utf8({s, n}); }
    bool StartObject() { return ++depth <= max_json_depth; }
    bool EndObject(rapidjson::SizeType) { --depth; return true; }
    bool StartArray() { return ++depth <= max_json_depth; }
    bool EndArray(rapidjson::SizeType) { --depth; return true; }
    unsigned depth = 0;
};

inline constexpr unsigned json_parse_flags =
    rapidjson::kParseNumbersAsStringsFlag | rapidjson::kParseValidateEncodingFlag |
    rapidjson::kParseIterativeFlag;

template <class Handler>
bool parse_whole(std::string_view text, Handler& h) {
    rapidjson::MemoryStream in(text.data(), text.size());
    rapidjson::Reader reader;
    if (reader.Parse<json_parse_flags>(in, h).IsError()) return false;
    // MemoryStream reports a NUL byte as the end of input; insist that the
    // whole text was consumed so "{}\0junk" is not accepted.
    return in.Tell() == text.size();
}

} // namespace courier::detail

namespace courier {

/// Validates `text` as one JSON value in UTF-8 and appends its compact form
/// (no insignificant whitespace; strings and number digits unchanged) to `out`.
/// Returns error::invalid_json, leaving `out` unchanged, when it is not valid.
COURIER_DECL std::error_code compact_json(std::string_view text, std::string& out) {
    rapidjson::StringBuffer buf;
    detail::compact_writer w(buf);
    if (!detail::parse_whole(text, w) || !w.IsComplete()) return error::invalid_json;
    out.append(buf.GetString(), buf.GetSize());
    return {};
}

/// True when `text` is one valid JSON value in UTF-8 (any whitespace allowed).
COURIER_DECL bool is_valid_json(std::string_view text) {
    detail::depth_checker h;
    return detail::parse_whole(text, h);
}

} // namespace courier
