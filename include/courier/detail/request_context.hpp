// courier detail: what a transport sees of one request on its mount.
#pragma once
#include "../config.hpp"
#include "../error.hpp"
#include "../http/request.hpp"
#include "../http/response.hpp"
#include "../options.hpp"
#include "../core/topic.hpp"
#include "connection.hpp"

#include <asio/awaitable.hpp>

#include <string>
#include <string_view>
#include <utility>

namespace courier::detail {

/// The bearer token of a request: `Authorization: Bearer <token>`, else
/// `?access_token=<token>` (browsers cannot set headers on EventSource or
/// WebSocket). Empty when there is none.
inline std::string request_token(const http::request& req) {
    const auto auth = req.header("Authorization");
    if (auth.size() > 7 && http::iequals(auth.substr(0, 7), "Bearer ")) {
        auto t = auth.substr(7);
        while (!t.empty() && t.front() == ' ') t.remove_prefix(1);
        return std::string(t);
    }
    return req.query().get("access_token").value_or(std::string{});
}

/// Asks the endpoint's authorizer whether `req` may do `a` on `topic`.
/// Without an authorizer everything is allowed, in the empty tenant.
inline authorization authorize(const http_options& opt, const http::request& req, action a,
                               std::string_view topic) {
    if (!opt.authorize) return {};
    const auto token = request_token(req);
    if (token.empty()) return {error::unauthorized, {}};
    return opt.authorize(token, a, topic);
}

template <class Stream, class Broker>
struct request_context {
    /// The broker's subscription handle type.
    using subscription_type = decltype(std::declval<Broker&>().subscribe(
        std::string_view{}, std::string_view{}, std::string_view{}, std::declval<sink&>(),
        std::declval<const asio::any_io_executor&>(), std::declval<read_result&>(), std::declval<std::error_code&>()));

    http_connection<Stream>& conn;
    http::request& req;
    Broker& broker;
    std::string topic;  // the decoded path segment after the prefix; may be empty

    authorization authorize(action a, std::string_view t) const {
        return detail::authorize(conn.options(), req, a, t);
    }
    asio::awaitable<bool> reply(http::response& res) { return conn.respond(req, res); }
    asio::awaitable<bool> fail(std::error_code ec, std::string_view message = {}) {
        auto res = http::error_response(ec.category() == error_category() ? static_cast<error>(ec.value())
                                                                         : error::bad_request,
                                        message);
        co_return co_await conn.respond(req, res);
    }
};

} // namespace courier::detail
