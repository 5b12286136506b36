// courier http: CORS (Fetch standard) for every HTTP mount.
#pragma once
#include "../config.hpp"
#include "request.hpp"
#include "response.hpp"

#include <string>
#include <string_view>
#include <vector>

namespace courier::http {

/// True when `origin` is on the allow-list ("*" allows any origin).
inline bool origin_allowed(const std::vector<std::string>& allow, std::string_view origin) noexcept {
    if (origin.empty()) return false;
    for (const auto& a : allow)
        if (a == "*" || iequals(a, origin)) return true;
    return false;
}

/// True when the request's Origin names the host it was sent to
/// ("http://example.com:8080" with `Host: example.com:8080`).
inline bool same_origin(const request& req) noexcept {
    const auto origin = req.header("Origin");
    const auto sep = origin.find("://");
    return sep != std::string_view::npos && iequals(origin.substr(sep + 3), req.header("Host"));
}

/// The WebSocket handshake's Origin check (RFC 6455, 10.2): a request
/// without Origin comes from a non-browser client and passes; a browser's
/// passes when it is same-origin or on the allow-list.
inline bool upgrade_origin_allowed(const std::vector<std::string>& allow, const request& req) noexcept {
    if (!req.has_header("Origin")) return true;
    return same_origin(req) || origin_allowed(allow, req.header("Origin"));
}

/// Adds Access-Control-Allow-Origin when the request's Origin is allowed.
/// Responses vary by Origin whenever CORS is configured.
inline void apply_cors(const std::vector<std::string>& allow, const request& req, response& res) {
    if (allow.empty()) return;
    res.set("Vary", "Origin");
    const auto origin = req.header("Origin");
    if (origin_allowed(allow, origin)) res.set("Access-Control-Allow-Origin", origin);
}

/// True for a CORS preflight: OPTIONS with Access-Control-Request-Method.
inline bool is_preflight(const request& req) noexcept {
    return req.method() == verb::options && req.has_header("Access-Control-Request-Method");
}

/// The answer to a preflight. A preflight needs no token (PROTOCOL.md,
/// "Browsers"); an origin off the list gets 403.
inline response preflight_response(const std::vector<std::string>& allow, const request& req) {
    const auto origin = req.header("Origin");
    if (!origin_allowed(allow, origin)) return error_response(error::origin_forbidden);
    response res(204);
    res.set("Access-Control-Allow-Origin", origin);
    res.set("Vary", "Origin");
    res.set("Access-Control-Allow-Methods", "GET, POST, OPTIONS");
    res.set("Access-Control-Allow-Headers", "Authorization, Content-Type, Last-Event-ID");
    res.set("Access-Control-Max-Age", "600");
    return res;
}

} // namespace courier::http
