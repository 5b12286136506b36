// courier http: responses (status line, headers, body) and JSON error bodies.
#pragma once
#include "../config.hpp"
#include "../error.hpp"

#include <charconv>
#include <cstdint>
#include <string>
#include <string_view>

namespace courier {
namespace detail {

/// Appends `s` as a JSON string literal, quotes included.
inline void append_json_string(std::string& out, std::string_view s) {
    static constexpr char hex[] = "0123456789abcdef";
    out.push_back('"');
    for (unsigned char c : s) {
        switch (c) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        default:
            if (c < 0x20) {
                out += "\\u00";
                out.push_back(hex[c >> 4]);
                out.push_back(hex[c & 15]);
            } else {
                out.push_back(static_cast<char>(c));
            }
        }
    }
    out.push_back('"');
}

} // namespace detail

/// The JSON error body every transport uses: {"error":"<code>","message":"<text>"}.
inline std::string error_body(error e, std::string_view message = {}) {
    std::string out = R"({"error":")";
    out += wire_code(e);
    out += R"(","message":)";
    detail::append_json_string(out, message.empty() ? detail::info(e).message : message);
    out += '}';
    return out;
}

} // namespace courier

namespace courier::http {

inline constexpr std::string_view reason_phrase(unsigned status) noexcept {
    switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 204: return "No Content";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 415: return "Unsupported Media Type";
    case 426: return "Upgrade Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
    }
}

/// A response under construction. Headers are appended in wire form as they
/// are set, so serialising the head is one concatenation.
class response {
public:
    explicit response(unsigned status = 200) : status_(status) {}

    unsigned status() const noexcept { return status_; }
    response& status(unsigned s) noexcept { status_ = s; return *this; }

    response& set(std::string_view name, std::string_view value) {
        fields_.append(name).append(": ").append(value).append("\r\n");
        return *this;
    }
    response& json(std::string body) {
        body_ = std::move(body);
        content_type_ = "application/json";
        return *this;
    }
    response& content_type(std::string_view t) { content_type_ = t; return *this; }
    std::string& body() noexcept { return body_; }
    const std::string& body() const noexcept { return body_; }

    /// Whether the server keeps the connection open after this response.
    bool keep_alive = true;
    /// For HEAD: send the head (with the body's length) but not the body.
    bool head_only = false;
    /// For streams (SSE): no Content-Length; the body follows over time.
    bool streaming = false;

    /// Status line and headers, ending with the blank line.
    std::string head() const {
        std::string h;
        h.reserve(128 + fields_.size());
        h.append("HTTP/1.1 ");
        char num[8];
        h.append(num, std::to_chars(num, num + sizeof num, status_).ptr);
        h.push_back(' ');
        h.append(reason_phrase(status_)).append("\r\n");
        h.append(fields_);
        if (!content_type_.empty()) h.append("Content-Type: ").append(content_type_).append("\r\n");
        if (!streaming && status_ >= 200 && status_ != 204 && status_ != 304) {
            char len[24];
            h.append("Content-Length: ").append(len, std::to_chars(len, len + sizeof len, body_.size()).ptr).append("\r\n");
        }
        if (!keep_alive) h.append("Connection: close\r\n");
        h.append("\r\n");
        return h;
    }

private:
    unsigned status_;
    std::string fields_;
    std::string content_type_;
    std::string body_;
};

/// An error response with the JSON body of PROTOCOL.md.
inline response error_response(error e, std::string_view message = {}) {
    response r(http_status(e));
    if (r.status() == 401) r.set("WWW-Authenticate", "Bearer");  // RFC 9110, 11.6.1
    r.json(error_body(e, message));
    return r;
}

} // namespace courier::http
