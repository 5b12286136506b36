// courier transport: long polling (PROTOCOL.md, "Long polling").
//
// As polling, but when nothing is newer than `since` the request is held
// until a message arrives (then everything available is answered, so a burst
// travels in one response) or until the timeout (default 30 s, at most 120 s),
// then 200 with an empty list and `next` equal to `since`.
#pragma once
#include "../config.hpp"
#include "../core/topic.hpp"
#include "poll.hpp"

#include <asio/awaitable.hpp>
#include <asio/steady_timer.hpp>

#include <charconv>
#include <chrono>
#include <string>
#include <string_view>

namespace courier {
namespace detail {

// Wakes a held long poll when its topic has news (or it is dropped).
class poll_waiter final : public sink {
public:
    explicit poll_waiter(asio::steady_timer& t) : timer_(t) {}
    bool offer(const message_ptr&) override { wake(); return true; }
    void dropped() override { wake(); }
    bool woken() const noexcept { return woken_; }

private:
    void wake() {
        woken_ = true;
        timer_.cancel();
    }
    asio::steady_timer& timer_;
    bool woken_ = false;
};

} // namespace detail

/// Long polling: one held request at a time per client, answered with a batch.
struct long_polling {
    static constexpr std::string_view name = "long-polling";
    struct options {
        std::chrono::seconds default_timeout{30};
        std::chrono::seconds max_timeout{120};
    };

    static bool accepts(const http::request& req) noexcept { return polling::accepts(req); }
    static std::string render(const message& m) { return std::string(m.envelope()); }

    template <class Ctx>
    static asio::awaitable<bool> serve(Ctx& ctx, const options& opt) {
        auto grant = detail::authorize_read(ctx);
        if (grant.ec) co_return co_await ctx.fail(grant.ec);
        auto timeout = opt.default_timeout;
        if (auto t = ctx.req.query().get("timeout")) {
            long long secs = 0;
            const auto [p, e] = std::from_chars(t->data(), t->data() + t->size(), secs);
            if (t->empty() || e != std::errc{} || p != t->data() + t->size() || secs < 0)
                co_return co_await ctx.fail(error::bad_request, "timeout must be a whole number of seconds");
            timeout = std::min(std::chrono::seconds(secs), opt.max_timeout);
        }
        const auto since = ctx.req.query().get("since").value_or(std::string{});

        read_result r;
        if (auto ec = ctx.broker.read(grant.tenant, ctx.topic, since, r)) co_return co_await ctx.fail(ec);
        if (!r.messages.empty() || r.gap || timeout.count() == 0 || ctx.conn.stopping())
            co_return co_await detail::answer_poll(ctx, r, metrics::slot<long_polling>());

        // Nothing yet: wait for the topic. Subscribing from the cursor closes
        // the race with a publish between the read above and now.
        auto& timer = ctx.conn.wait_timer();
        detail::poll_waiter waiter(timer);
        read_result backlog;
        std::error_code ec;
        auto sub = ctx.broker.subscribe(grant.tenant, ctx.topic, r.next, waiter, ctx.conn.executor(), backlog, ec);
        if (ec) co_return co_await ctx.fail(ec);
        if (backlog.messages.empty() && !backlog.gap) {
            // Answers held for earlier pipelined requests go first; a wake or
            // a stop during that write must not be lost, so check after it.
            if (!co_await ctx.conn.flush()) co_return false;
            if (!waiter.woken() && !ctx.conn.stopping()) {
                timer.expires_after(timeout);
                metrics::subscriber_guard held(ctx.conn.metrics(), metrics::slot<long_polling>());
                if (!co_await ctx.conn.hold()) co_return false;  // the client left
            }
        }
        sub.reset();
        if (waiter.woken() || !backlog.messages.empty() || backlog.gap) {
            read_result fresh;
            if ((ec = ctx.broker.read(grant.tenant, ctx.topic, r.next, fresh))) co_return co_await ctx.fail(ec);
            co_return co_await detail::answer_poll(ctx, fresh, metrics::slot<long_polling>());
        }
        co_return co_await detail::answer_poll(ctx, r, metrics::slot<long_polling>());
    }
};

} // namespace courier
