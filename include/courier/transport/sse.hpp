// courier transport: Server-Sent Events (PROTOCOL.md; WHATWG HTML,
// "Server-sent events").
//
// `GET P/{topic}` (or `GET P?topic=a&topic=b`) streams text/event-stream:
// a `retry:` line, then `id:` + `data: <envelope>` per message. Resume with
// Last-Event-ID (what EventSource sends by itself) or ?since=. Each message's
// event block is encoded once and shared by every subscriber; a connection
// writes everything queued for it in one gathered write; a subscriber whose
// queue overflows is disconnected and resumes from its last id.
#pragma once
#include "../config.hpp"
#include "../core/message.hpp"
#include "../core/topic.hpp"
#include "../detail/request_context.hpp"
#include "../detail/send_queue.hpp"
#include "../http/response.hpp"

#include <asio/awaitable.hpp>
#include <asio/buffer.hpp>
#include <asio/experimental/awaitable_operators.hpp>
#include <asio/steady_timer.hpp>
#include <asio/write.hpp>

#include <array>
#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace courier {

/// Server-Sent Events.
struct sse {
    static constexpr std::string_view name = "sse";
    struct options {
        /// Sent as `retry:`: how long EventSource waits before reconnecting.
        std::chrono::milliseconds retry{2000};
        /// A `: keepalive` comment after this much silence.
        std::chrono::milliseconds keepalive{15'000};
        /// Bytes queued per connection before it counts as a slow consumer.
        std::size_t queue_bytes = 1 << 20;
        /// Topics on one stream (`?topic=a&topic=b...`).
        std::size_t max_topics = 64;
    };

    static bool accepts(const http::request& req) noexcept {
        return http::is_plain_get(req);
    }

    /// The event block of a message, shared by every subscriber.
    static std::string render(const message& m) {
        std::string s;
        s.reserve(16 + m.id().size() + m.envelope().size());
        s.append("id: ").append(m.id()).append("\ndata: ").append(m.envelope()).append("\n\n");
        return s;
    }
    static const std::string& encoded(const message& m) { return m.encoded(wire_format::sse, render); }

    template <class Ctx>
    static asio::awaitable<bool> serve(Ctx& ctx, const options& opt);
};

namespace detail {

/// The `event: gap` block announcing that delivery restarts at `next`.
inline std::string sse_gap_event(std::string_view topic, std::string_view next) {
    std::string s = "event: gap\ndata: {\"topic\":\"";
    s.append(topic).append("\",\"next\":\"").append(next).append("\"}\n\n");
    return s;
}

/// The topics a stream asks for: the path segment, or ?topic= repeated.
inline std::error_code sse_topics(const http::request& req, const std::string& path_topic, std::size_t max,
                                  std::vector<std::string>& out) {
    if (!path_topic.empty()) out.push_back(path_topic);
    else out = req.query().all("topic");
    if (out.empty()) return error::invalid_topic;
    if (out.size() > max) return error::too_many_subscriptions;
    for (std::size_t i = 0; i < out.size(); ++i) {
        if (!is_valid_topic(out[i])) return error::invalid_topic;
        for (std::size_t j = 0; j < i; ++j)
            if (out[i] == out[j]) return error::bad_request;
    }
    return {};
}

/// Splits a resume cursor: one id per topic, joined with '_' when a stream
/// has several topics (ids never contain '_').
inline std::error_code split_cursor(std::string_view cursor, std::size_t topics, std::vector<std::string>& out) {
    out.assign(topics, std::string{});
    if (cursor.empty()) return {};
    if (cursor.size() > topics * (max_id_length + 1)) return error::invalid_cursor;
    if (topics == 1 || cursor == "earliest") {  // "earliest" stands for every topic
        for (auto& part : out) part.assign(cursor);
        return {};
    }
    std::size_t i = 0;
    for (auto& part : out) {
        const auto sep = cursor.find('_', i);
        part.assign(cursor.substr(i, sep - i));
        if (sep == std::string_view::npos) {
            i = cursor.size() + 1;
        } else {
            i = sep + 1;
        }
        if (&part != &out.back() && sep == std::string_view::npos) return error::invalid_cursor;
    }
    if (i <= cursor.size()) return error::invalid_cursor;  // more parts than topics
    return {};
}

/// One event stream: the sink of its subscriptions and its writer.
template <class Conn>
class sse_stream {
public:
    sse_stream(Conn& conn, const sse::options& opt, std::size_t topics)
        : conn_(conn), opt_(opt), multi_(topics > 1), cursors_(topics) {
        sinks_.reserve(topics);
        for (std::size_t i = 0; i < topics; ++i) sinks_.emplace_back(*this, static_cast<std::uint32_t>(i));
    }

    sink& sink_for(std::size_t topic) noexcept { return sinks_[topic]; }
    void set_cursor(std::size_t topic, std::string id) { cursors_[topic] = std::move(id); }

    /// An id-only block naming where the stream starts. EventSource takes an
    /// id from a block without data too (WHATWG: the last event ID is set
    /// before the empty-data check), so a stream cut before its first
    /// message still resumes from here instead of from "now".
    void append_start_id(std::string& out) const {
        out.append("id: ");
        for (std::size_t t = 0; t < cursors_.size(); ++t) {
            if (t) out.push_back('_');
            out.append(cursors_[t]);
        }
        out.append("\n\n");
    }

    /// Queues backlog or live messages of subscription `tag`.
    bool offer(const message_ptr& m, std::uint32_t tag) {
        if (closing_) return true;  // the stream is ending; nothing more is sent
        const std::size_t bytes = sse::encoded(*m).size();
        if (!queue_.push(m, tag, bytes, opt_.queue_bytes)) return false;
        if (waiting_) conn_.wait_timer().cancel();
        return true;
    }
    /// Queues a message of the backlog (see send_queue::push_backlog).
    void enqueue_backlog(const message_ptr& m, std::uint32_t tag) {
        queue_.push_backlog(m, tag, sse::encoded(*m).size());
    }
    // Closing the socket also aborts a write stuck on a peer that stopped
    // reading; the client resumes from its last id.
    void dropped() {
        if (closing_) return;
        closing_ = true;
        conn_.metrics().add(metrics::per_transport::slow_consumer_disconnects, metrics::slot<sse>());
        if (conn_.endpoint().logs(log_level::info))
            conn_.endpoint().log(log_level::info, "slow SSE consumer disconnected with " +
                                                      std::to_string(queue_.size()) + " messages queued");
        conn_.close();
    }

    /// The stream's head could not be written: its backlog was never sent.
    void abandon() {
        conn_.metrics().add(metrics::per_transport::messages_discarded, metrics::slot<sse>(), queue_.size());
    }

    /// Writes until the peer leaves, the stream is dropped, or the server
    /// stops (after the queue is flushed).
    asio::awaitable<void> run() {
        using namespace asio::experimental::awaitable_operators;
        metrics::subscriber_guard open(conn_.metrics(), metrics::slot<sse>());
        co_await (write_loop() || watch_peer());
        conn_.metrics().add(metrics::per_transport::messages_discarded, metrics::slot<sse>(), queue_.size());
    }

private:
    struct topic_sink final : sink {
        topic_sink(sse_stream& s, std::uint32_t t) : stream(s), tag(t) {}
        bool offer(const message_ptr& m) override { return stream.offer(m, tag); }
        void dropped() override { stream.dropped(); }
        sse_stream& stream;
        std::uint32_t tag;
    };

    static constexpr std::size_t max_gather = 64;

    asio::awaitable<void> write_loop() {
        auto& timer = conn_.wait_timer();
        auto last_write = std::chrono::steady_clock::now();
        std::vector<asio::const_buffer> bufs;
        while (!closing_) {
            if (queue_.empty()) {
                if (conn_.stopping()) co_return;
                timer.expires_at(last_write + opt_.keepalive);
                waiting_ = true;
                co_await timer.async_wait(nothrow_awaitable);
                waiting_ = false;
                if (closing_ || !queue_.empty() || conn_.stopping()) continue;
                if (std::chrono::steady_clock::now() < last_write + opt_.keepalive) continue;
                static constexpr std::string_view keepalive = ": keepalive\n\n";
                if (!co_await conn_.write_bounded(asio::buffer(keepalive))) co_return;
                last_write = std::chrono::steady_clock::now();
                continue;
            }
            const std::size_t count = std::min(queue_.size(), multi_ ? max_gather / 2 : max_gather);
            bufs.clear();
            if (multi_) build_id_lines(count);
            std::size_t line = 0;
            for (std::size_t i = 0; i < count; ++i) {
                const auto& e = queue_[i];
                const std::string& block = sse::encoded(*e.msg);
                if (!multi_) {
                    bufs.push_back(asio::buffer(block));
                    continue;
                }
                // The stream's own `id:` line (every topic's cursor), then the
                // shared block from its `data:` line on.
                const auto data_at = 4 + e.msg->id().size() + 1;
                bufs.push_back(asio::buffer(std::string_view(scratch_).substr(id_lines_[line], id_lines_[line + 1] - id_lines_[line])));
                bufs.push_back(asio::buffer(std::string_view(block).substr(data_at)));
                ++line;
            }
            // After a stop request, what is queued now is the last write.
            const bool last = conn_.stopping();
            if (!co_await conn_.write_bounded(bufs)) co_return;
            queue_.pop(count);
            conn_.metrics().add(metrics::per_transport::messages_delivered, metrics::slot<sse>(), count);
            last_write = std::chrono::steady_clock::now();
            if (last) co_return;
        }
    }

    // Lays out "id: <c1>_<c2>...\n" for the next `count` messages in one
    // reused buffer, advancing each topic's cursor as its messages pass.
    void build_id_lines(std::size_t count) {
        scratch_.clear();
        id_lines_.clear();
        for (std::size_t i = 0; i < count; ++i) {
            const auto& e = queue_[i];
            cursors_[e.tag].assign(e.msg->id());
            id_lines_.push_back(scratch_.size());
            scratch_.append("id: ");
            for (std::size_t t = 0; t < cursors_.size(); ++t) {
                if (t) scratch_.push_back('_');
                scratch_.append(cursors_[t]);
            }
            scratch_.push_back('\n');
        }
        id_lines_.push_back(scratch_.size());
    }

    // An event-stream client sends nothing after its request: any read
    // completing means it left (or broke the protocol).
    asio::awaitable<void> watch_peer() {
        char buf[64];
        for (;;) {
            auto [ec, n] = co_await conn_.stream().async_read_some(asio::buffer(buf), nothrow_awaitable);
            if (ec) co_return;
        }
    }

    Conn& conn_;
    const sse::options& opt_;
    const bool multi_;
    std::vector<topic_sink> sinks_;
    std::vector<std::string> cursors_;
    send_queue queue_;
    std::string scratch_;
    std::vector<std::size_t> id_lines_;
    bool waiting_ = false;
    bool closing_ = false;
};

} // namespace detail

template <class Ctx>
asio::awaitable<bool> sse::serve(Ctx& ctx, const options& opt) {
    std::vector<std::string> topics;
    if (auto ec = detail::sse_topics(ctx.req, ctx.topic, opt.max_topics, topics)) co_return co_await ctx.fail(ec);
    std::vector<std::string> tenants;
    for (const auto& t : topics) {
        auto grant = ctx.authorize(action::subscribe, t);
        if (grant.ec) co_return co_await ctx.fail(grant.ec);
        tenants.push_back(std::move(grant.tenant));
    }
    // Last-Event-ID is newer than the URL's ?since= (EventSource keeps the
    // URL it was given), so the header wins.
    std::string cursor(ctx.req.header("Last-Event-ID"));
    if (cursor.empty()) cursor = ctx.req.query().get("since").value_or(std::string{});
    std::vector<std::string> since;
    if (auto ec = detail::split_cursor(cursor, topics.size(), since)) co_return co_await ctx.fail(ec);

    http::response res(200);
    res.content_type("text/event-stream");
    res.set("Cache-Control", "no-cache");
    res.set("X-Accel-Buffering", "no");  // nginx and friends: do not buffer the stream
    res.streaming = true;
    res.keep_alive = false;  // the body ends when the connection does
    if (ctx.req.method() == http::verb::head) {
        co_await ctx.reply(res);
        co_return false;
    }

    using stream_type = detail::sse_stream<std::remove_reference_t<decltype(ctx.conn)>>;
    stream_type stream(ctx.conn, opt, topics.size());
    std::vector<typename Ctx::subscription_type> subs;
    std::vector<read_result> backlogs(topics.size());
    std::string& preamble = res.body();
    preamble.append("retry: ").append(std::to_string(opt.retry.count())).append("\n\n");
    for (std::size_t i = 0; i < topics.size(); ++i) {
        std::error_code ec;
        subs.push_back(ctx.broker.subscribe(tenants[i], topics[i], since[i], stream.sink_for(i), ctx.conn.executor(),
                                            backlogs[i], ec));
        if (ec) co_return co_await ctx.fail(ec);
        if (backlogs[i].gap) preamble += detail::sse_gap_event(topics[i], backlogs[i].gap_next);
        // Until a topic's first message is written, its part of the stream's
        // id is where the client asked to start (or now, or past the gap).
        stream.set_cursor(i, start_cursor(backlogs[i], since[i]));
    }
    stream.append_start_id(preamble);
    for (std::size_t i = 0; i < topics.size(); ++i)
        for (const auto& m : backlogs[i].messages) stream.enqueue_backlog(m, static_cast<std::uint32_t>(i));
    if (co_await ctx.conn.start_stream(ctx.req, res)) {
        ctx.conn.release_buffers();
        co_await stream.run();
    } else {
        stream.abandon();
    }
    co_return false;
}

} // namespace courier
