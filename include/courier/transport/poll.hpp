// courier transport: interval polling (PROTOCOL.md, "Polling").
//
// `GET P/{topic}?since=<id>` answers at once with every retained message
// after `since` (at most the broker's batch), as
// {"messages":[<envelope>,...],"next":"<id>"} plus "gap":true when `since`
// was outside the history. Stateless: any server process with the history
// can answer, so no sticky sessions.
#pragma once
#include "../config.hpp"
#include "../core/topic.hpp"
#include "../detail/request_context.hpp"
#include "../http/response.hpp"

#include <asio/awaitable.hpp>

#include <string>
#include <string_view>

namespace courier {
namespace detail {

/// The polling answer body, shared by polling and long polling.
inline std::string poll_body(const read_result& r) {
    std::size_t size = 48 + r.next.size();
    for (const auto& m : r.messages) size += m->envelope().size() + 1;
    std::string body;
    body.reserve(size);
    body += R"({"messages":[)";
    for (std::size_t i = 0; i < r.messages.size(); ++i) {
        if (i) body += ',';
        body += r.messages[i]->envelope();
    }
    body += R"(],"next":")";
    body += r.next;
    body += '"';
    if (r.gap) body += R"(,"gap":true)";
    body += '}';
    return body;
}

template <class Ctx>
asio::awaitable<bool> answer_poll(Ctx& ctx, const read_result& r, std::size_t transport) {
    http::response res(200);
    res.json(poll_body(r));
    res.set("Cache-Control", "no-store");
    const bool more = co_await ctx.reply(res);
    // Counted once handed to the connection (a held answer goes out with
    // the next write); a HEAD delivers nothing.
    if (ctx.req.method() != http::verb::head)
        ctx.conn.metrics().add(metrics::per_transport::messages_delivered, transport, r.messages.size());
    co_return more;
}

/// Authorizes a read of ctx.topic and returns the tenant, or an error.
template <class Ctx>
authorization authorize_read(Ctx& ctx) {
    if (!is_valid_topic(ctx.topic)) return {error::invalid_topic, {}};
    return ctx.authorize(action::subscribe, ctx.topic);
}

} // namespace detail

/// Interval polling. Stateless; the client asks again after its interval.
struct polling {
    static constexpr std::string_view name = "polling";
    struct options {};

    /// Plain GETs; an Upgrade request is not for this transport.
    static bool accepts(const http::request& req) noexcept {
        return http::is_plain_get(req);
    }
    /// Polling sends the envelope itself.
    static std::string render(const message& m) { return std::string(m.envelope()); }

    template <class Ctx>
    static asio::awaitable<bool> serve(Ctx& ctx, const options&) {
        auto grant = detail::authorize_read(ctx);
        if (grant.ec) co_return co_await ctx.fail(grant.ec);
        read_result r;
        const auto since = ctx.req.query().get("since").value_or(std::string{});
        if (auto ec = ctx.broker.read(grant.tenant, ctx.topic, since, r)) co_return co_await ctx.fail(ec);
        co_return co_await detail::answer_poll(ctx, r, metrics::slot<polling>());
    }
};

} // namespace courier
