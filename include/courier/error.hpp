// courier: error codes, and the one table that maps each to its HTTP status,
// its wire code and its WebSocket close code, so that all transports agree.
#pragma once
#include "config.hpp"

#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>

namespace courier {

/// Every error courier reports. Asio's own codes pass through untouched.
enum class error {
    bad_request = 1,          // malformed HTTP or request
    invalid_json,             // body or op is not valid JSON / UTF-8
    invalid_topic,            // topic name outside the allowed alphabet
    invalid_cursor,           // since / Last-Event-ID is not an id
    unauthorized,             // missing or unknown token
    forbidden,                // token may not use this topic
    origin_forbidden,         // Origin not on the allow-list
    not_found,                // no channel at this path
    method_not_allowed,       // e.g. PUT on a mount
    request_timeout,          // request head not complete in time
    length_required,          // POST without Content-Length or chunked
    payload_too_large,        // body over the limit
    unsupported_media_type,   // body type other than JSON
    header_too_large,         // request head or header count over the limit
    not_implemented,          // unknown Transfer-Encoding
    version_not_supported,    // not HTTP/1.0 or HTTP/1.1
    too_many_topics,          // the broker's topic limit is reached
    too_many_subscriptions,   // per-connection subscription limit
    too_many_connections,     // the server's connection limit is reached
    shutting_down,            // server is stopping
    slow_consumer,            // subscriber's queue overflowed
    bad_response,             // client side: the server broke the protocol
    upgrade_required,         // a WebSocket mount needs a valid upgrade request
};

/// Broad categories, for tests and applications that do not care which
/// exact error occurred (as Beast's `condition`).
enum class condition {
    bad_request = 1,
    unauthorized,
    forbidden,
    limit,
    protocol,
    unavailable,
};

namespace detail {

struct error_info {
    std::string_view code;      // the wire code, in error bodies and frames
    std::string_view message;   // default human text
    std::uint16_t status;       // HTTP status
    std::uint16_t close_code;   // WebSocket close code when it ends a connection
    condition cond;
};

inline constexpr error_info error_table[] = {
    {},
    {"bad_request", "malformed request", 400, 1002, condition::bad_request},
    {"invalid_json", "message is not valid JSON in UTF-8", 400, 1007, condition::bad_request},
    {"invalid_topic", "topic name must be 1 to 128 characters of A-Z a-z 0-9 . _ : -", 400, 1008, condition::bad_request},
    {"invalid_cursor", "cursor must be at most 64 characters of A-Z a-z 0-9 : _ -", 400, 1008, condition::bad_request},
    {"unauthorized", "missing or unknown token", 401, 1008, condition::unauthorized},
    {"forbidden", "token may not use this topic", 403, 1008, condition::forbidden},
    {"origin_forbidden", "origin is not allowed", 403, 1008, condition::forbidden},
    {"not_found", "nothing is mounted at this path", 404, 1008, condition::bad_request},
    {"method_not_allowed", "method not allowed on this path", 405, 1008, condition::bad_request},
    {"request_timeout", "request not received in time", 408, 1008, condition::limit},
    {"length_required", "body needs Content-Length or chunked encoding", 411, 1008, condition::bad_request},
    {"payload_too_large", "body is over the size limit", 413, 1009, condition::limit},
    {"unsupported_media_type", "body must be application/json", 415, 1003, condition::bad_request},
    {"header_too_large", "request head is over the size limit", 431, 1009, condition::limit},
    {"not_implemented", "transfer coding not supported", 501, 1003, condition::bad_request},
    {"version_not_supported", "only HTTP/1.0 and HTTP/1.1 are supported", 505, 1002, condition::bad_request},
    {"too_many_topics", "the server's topic limit is reached", 503, 1013, condition::limit},
    {"too_many_subscriptions", "subscription limit per connection reached", 429, 1008, condition::limit},
    {"too_many_connections", "the server's connection limit is reached", 503, 1013, condition::limit},
    {"shutting_down", "server is shutting down", 503, 1001, condition::unavailable},
    {"slow_consumer", "subscriber fell too far behind; resume from the last id", 503, 1008, condition::limit},
    {"bad_response", "the server's answer broke the protocol", 502, 1002, condition::protocol},
    {"upgrade_required", "a WebSocket handshake needs Upgrade: websocket and Sec-WebSocket-Version: 13", 426, 1002, condition::bad_request},
};

inline constexpr const error_info& info(error e) noexcept {
    const auto i = static_cast<std::size_t>(e);
    return i < std::size(error_table) ? error_table[i] : error_table[1];
}

class error_category_impl final : public std::error_category {
public:
    const char* name() const noexcept override { return "courier"; }
    std::string message(int ev) const override {
        return std::string(info(static_cast<error>(ev)).message);
    }
    bool equivalent(int ev, const std::error_condition& c) const noexcept override;
};

class condition_category_impl final : public std::error_category {
public:
    const char* name() const noexcept override { return "courier.condition"; }
    std::string message(int ev) const override {
        switch (static_cast<condition>(ev)) {
        case condition::bad_request: return "bad request";
        case condition::unauthorized: return "unauthorized";
        case condition::forbidden: return "forbidden";
        case condition::limit: return "limit exceeded";
        case condition::protocol: return "protocol violation";
        case condition::unavailable: return "unavailable";
        }
        return "unknown condition";
    }
};

} // namespace detail

inline const std::error_category& error_category() noexcept {
    static const detail::error_category_impl cat;
    return cat;
}

inline const std::error_category& condition_category() noexcept {
    static const detail::condition_category_impl cat;
    return cat;
}

inline std::error_code make_error_code(error e) noexcept {
    return {static_cast<int>(e), error_category()};
}

inline std::error_condition make_error_condition(condition c) noexcept {
    return {static_cast<int>(c), condition_category()};
}

inline bool detail::error_category_impl::equivalent(int ev, const std::error_condition& c) const noexcept {
    return c.category() == condition_category() &&
           static_cast<int>(info(static_cast<error>(ev)).cond) == c.value();
}

/// HTTP status for a courier error (e.g. 413 for payload_too_large).
inline constexpr std::uint16_t http_status(error e) noexcept { return detail::info(e).status; }
/// The wire code in JSON error bodies and WebSocket error frames.
inline constexpr std::string_view wire_code(error e) noexcept { return detail::info(e).code; }
/// The WebSocket close code when this error ends a connection.
inline constexpr std::uint16_t close_code(error e) noexcept { return detail::info(e).close_code; }

} // namespace courier

template <> struct std::is_error_code_enum<courier::error> : std::true_type {};
template <> struct std::is_error_condition_enum<courier::condition> : std::true_type {};
