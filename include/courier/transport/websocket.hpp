// courier transport: WebSocket (RFC 6455, RFC 7692; PROTOCOL.md, "WebSocket").
//
// `GET P/{topic}[?since=<id>]` upgrades and subscribes at once; `GET P`
// upgrades and waits for JSON ops (subscribe, unsubscribe, publish). Each
// message's frame is encoded once and shared by every subscriber (and once
// more, compressed, for those that negotiated permessage-deflate); a
// connection writes its op frames and queued messages in one gathered write;
// a subscriber whose queue overflows is closed (1008) and resumes by id.
#pragma once
#include "../config.hpp"
#include "../core/message.hpp"
#include "../core/topic.hpp"
#include "../detail/request_context.hpp"
#include "../detail/send_queue.hpp"
#include "../http/cors.hpp"
#include "../http/response.hpp"
#include "../ws/deflate.hpp"
#include "../ws/frame.hpp"
#include "../ws/handshake.hpp"
#include "../ws/ops.hpp"

#include <asio/awaitable.hpp>
#include <asio/buffer.hpp>
#include <asio/experimental/awaitable_operators.hpp>
#include <asio/steady_timer.hpp>

#include <chrono>
#include <iterator>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace courier {

/// WebSocket.
struct websocket {
    static constexpr std::string_view name = "websocket";
    struct options {
        /// A message from the client over this size closes with 1009
        /// (after decompression, for compressed messages).
        std::size_t max_message = 1 << 20;
        /// Bytes queued per connection before it counts as a slow consumer.
        std::size_t queue_bytes = 1 << 20;
        /// Subscriptions per connection.
        std::size_t max_topics = 64;
        /// A ping after this much silence from the client...
        std::chrono::milliseconds ping_interval{20'000};
        /// ...and the connection is dropped when nothing arrives within this.
        std::chrono::milliseconds pong_timeout{20'000};
        /// How long a close the server starts waits for the client's reply.
        std::chrono::milliseconds close_timeout{5'000};
        /// Accept permessage-deflate offers (needs zlib: COURIER_WITH_ZLIB).
        bool permessage_deflate = true;
        /// Messages whose envelope is shorter than this go uncompressed.
        std::size_t deflate_min_size = 128;
        /// Subprotocols the server speaks, in order of preference. The first
        /// one the client also offers is chosen; none is fine too.
        std::vector<std::string> subprotocols;
    };

    /// Every GET is the transport's: one without a valid upgrade gets 426.
    static bool accepts(const http::request& req) noexcept { return req.method() == http::verb::get; }

    /// The text frame of a message (server frames are not masked).
    static std::string render(const message& m) {
        std::string s;
        s.reserve(ws::max_header_size + m.envelope().size());
        ws::append_frame(s, ws::opcode::text, m.envelope());
        return s;
    }
    static const std::string& encoded(const message& m) { return m.encoded(wire_format::websocket, render); }

#if defined(COURIER_WITH_ZLIB)
    /// The compressed text frame of a message, compressed on its own (no
    /// context takeover); the plain frame when compression does not help.
    static std::string render_deflate(const message& m) {
        thread_local ws::deflater z;
        std::string body;
        z.compress(m.envelope(), body);
        if (body.size() >= m.envelope().size()) return render(m);
        std::string s;
        s.reserve(ws::max_header_size + body.size());
        ws::append_frame(s, ws::opcode::text, body, true);
        return s;
    }
    static const std::string& encoded_deflate(const message& m) {
        return m.encoded(wire_format::websocket_deflate, render_deflate);
    }
#endif

    template <class Ctx>
    static asio::awaitable<bool> serve(Ctx& ctx, const options& opt);
};

namespace detail {

/// One WebSocket connection after the handshake: the sink of its
/// subscriptions, its op handler, reader and writer.
template <class Ctx>
class ws_session {
public:
    using subscription_type = typename Ctx::subscription_type;

    ws_session(Ctx& ctx, const websocket::options& opt, const ws::deflate_params& deflate)
        : ctx_(ctx), conn_(ctx.conn), opt_(opt), deflate_(deflate),
          reader_({.expect_masked = true, .allow_compressed = deflate.enabled, .max_message = opt.max_message}),
#if defined(COURIER_WITH_ZLIB)
          inflater_(deflate.client_no_context_takeover),
#endif
          gate_(conn_.executor()) {
        // Longer messages go uncompressed: the peer's window would not cover them.
        const int bits = deflate.server_max_window_bits.value_or(15);
        deflate_max_ = bits >= 15 ? static_cast<std::size_t>(-1) : std::size_t{1} << bits;
    }

    /// Subscribes to `topic` from `since`; on failure returns the error
    /// (nothing is queued). `ref` (raw JSON) asks for an ack. The caller
    /// refuses a topic already subscribed (only ops can repeat one).
    std::error_code subscribe(std::string_view topic, std::string_view since, std::string_view ref) {
        if (!is_valid_topic(topic)) return error::invalid_topic;
        if (subs_.size() >= opt_.max_topics) return error::too_many_subscriptions;
        auto grant = ctx_.authorize(action::subscribe, topic);
        if (grant.ec) return grant.ec;
        auto entry = std::make_unique<topic_sub>(*this, std::string(topic), ++next_tag_);
        read_result backlog;
        std::error_code ec;
        entry->sub = ctx_.broker.subscribe(grant.tenant, topic, since, *entry, conn_.executor(), backlog, ec);
        if (ec) return ec;
        if (backlog.gap) push_op(ws_gap_op(topic, backlog.gap_next));
        if (!ref.empty())
            push_op(ws_ack_op(ref, start_cursor(backlog, since)));
        for (const auto& m : backlog.messages) queue_.push_backlog(m, entry->tag, frame_for(*m).size());
        subs_.push_back(std::move(entry));
        wake_writer();
        return {};
    }

    /// The 101 could not be written: the backlog was never sent.
    void abandon() {
        conn_.metrics().add(metrics::per_transport::messages_discarded, metrics::slot<websocket>(), queue_.size());
    }

    /// Runs the connection until it ends. `unread` is what the client sent
    /// right after its handshake.
    asio::awaitable<void> run(std::string unread) {
        using namespace asio::experimental::awaitable_operators;
        last_heard_ = std::chrono::steady_clock::now();
        metrics::subscriber_guard open(conn_.metrics(), metrics::slot<websocket>());
        co_await (read_loop(std::move(unread)) || write_loop());
        conn_.metrics().add(metrics::per_transport::messages_discarded, metrics::slot<websocket>(), queue_.size());
    }

private:
    using clock = std::chrono::steady_clock;

    struct topic_sub final : sink {
        topic_sub(ws_session& s, std::string t, std::uint32_t g) : session(s), topic(std::move(t)), tag(g) {}
        bool offer(const message_ptr& m) override { return session.offer(m, tag); }
        void dropped() override { session.dropped(); }
        ws_session& session;
        std::string topic;
        std::uint32_t tag;
        subscription_type sub;
    };

    enum class phase {
        open,
        closing,       // our close frame is queued; wait for the client's after it
        closing_now,   // our close frame is queued; end right after writing it
        closed,        // the client's close arrived and ours answers it
    };

    static constexpr std::size_t max_gather = 64;
    static constexpr std::size_t read_chunk = 4096;
    static constexpr std::size_t shrink_above = 64 * 1024;

    const std::string& frame_for(const message& m) const {
#if defined(COURIER_WITH_ZLIB)
        const auto size = m.envelope().size();
        if (deflate_.enabled && size >= opt_.deflate_min_size && size <= deflate_max_) return websocket::encoded_deflate(m);
#endif
        return websocket::encoded(m);
    }

    bool offer(const message_ptr& m, std::uint32_t tag) {
        if (phase_ != phase::open) return true;  // ending; nothing more is sent
        if (!queue_.push(m, tag, frame_for(*m).size(), opt_.queue_bytes)) return false;
        wake_writer();
        return true;
    }

    // A subscription fell behind. A write in flight is likely stuck on a
    // reader that stopped: cut the socket. Otherwise say why, then close.
    void dropped() {
        if (phase_ != phase::open) return;
        conn_.metrics().add(metrics::per_transport::slow_consumer_disconnects, metrics::slot<websocket>());
        if (conn_.endpoint().logs(log_level::info))
            conn_.endpoint().log(log_level::info, "slow WebSocket consumer closed (1008) with " +
                                                      std::to_string(queue_.size()) + " messages queued");
        if (writing_) {
            phase_ = phase::closing_now;
            conn_.close();
            return;
        }
        start_close(ws::close_code::policy_violation, wire_code(error::slow_consumer), phase::closing_now);
    }

    void wake_writer() {
        if (waiting_) conn_.wait_timer().cancel();
    }

    void push_op(std::string_view json) {
        std::string frame;
        frame.reserve(ws::max_header_size + json.size());
        ws::append_frame(frame, ws::opcode::text, json);
        push_frame(std::move(frame));
    }

    // Counted with its slot, so that a flood of tiny frames stays bounded.
    void push_frame(std::string frame) {
        ops_bytes_ += frame.size() + sizeof(std::string);
        ops_.push_back(std::move(frame));
        wake_writer();
    }

    // Queues our close frame; nothing is queued after it.
    void start_close(ws::close_code code, std::string_view reason, phase next) {
        if (phase_ != phase::open) return;
        phase_ = next;
        if (code != ws::close_code::normal && code != ws::close_code::going_away && conn_.endpoint().logs(log_level::debug))
            conn_.endpoint().log(log_level::debug, "WebSocket closed with " +
                                                       std::to_string(static_cast<unsigned>(code)) + ": " + std::string(reason));
        close_frame_.clear();
        ws::append_close(close_frame_, static_cast<std::uint16_t>(code), reason);
        wake_writer();
    }

    // ---- reading -------------------------------------------------------

    asio::awaitable<void> read_loop(std::string buf) {
        for (;;) {
            std::size_t pos = 0;
            while (pos < buf.size()) {
                if (phase_ == phase::closing_now || phase_ == phase::closed) {
                    pos = buf.size();  // nothing that follows a close matters
                    break;
                }
                std::size_t used = 0;
                const auto ev = reader_.feed(std::string_view(buf).substr(pos), used);
                pos += used;
                last_heard_ = clock::now();
                ping_outstanding_ = false;
                if (ev != ws::frame_reader::event::need_more) on_event(ev);
                // A client that publishes faster than it reads its acks
                // waits here: the op queue stays bounded.
                while (ops_bytes_ > opt_.queue_bytes && phase_ == phase::open) {
                    gate_.expires_at(clock::time_point::max());
                    co_await gate_.async_wait(nothrow_awaitable);
                }
            }
            buf.clear();
            if (buf.capacity() > read_chunk) buf.shrink_to_fit();
            // Wait with no buffer, then read into one: an idle connection
            // holds no read buffer. (Not over TLS, whose layer may already
            // hold decrypted bytes, and keeps buffers of its own.)
            if (!conn_.stream().is_tls()) {
                auto [wec] = co_await conn_.stream().socket().async_wait(asio::socket_base::wait_read, nothrow_awaitable);
                if (wec) co_return;
            }
            buf.resize(read_chunk);
            auto [ec, n] = co_await conn_.stream().async_read_some(asio::buffer(buf), nothrow_awaitable);
            buf.resize(n);
            if (ec) co_return;
        }
    }

    void on_event(ws::frame_reader::event ev) {
        using event = ws::frame_reader::event;
        switch (ev) {
        case event::message: on_message(); break;
        case event::ping:
            // Only the latest ping needs an answer (RFC 6455, 5.5.3): one
            // pong waits at most, so pings cannot pile up frames.
            if (phase_ == phase::open) {
                pong_.clear();
                ws::append_frame(pong_, ws::opcode::pong, reader_.control_payload());
                wake_writer();
            }
            break;
        case event::pong: break;
        case event::close: {
            if (phase_ == phase::closing) {  // the answer to our close
                phase_ = phase::closed;
                wake_writer();
                break;
            }
            const auto info = reader_.close_info();
            phase_ = phase::closed;
            close_frame_.clear();
            if (info.code == static_cast<std::uint16_t>(ws::close_code::no_status))
                ws::append_frame(close_frame_, ws::opcode::close, {});
            else
                ws::append_close(close_frame_, info.code);
            wake_writer();
            break;
        }
        case event::failed:
            if (phase_ == phase::closing) {  // no clean answer is coming
                phase_ = phase::closed;
                wake_writer();
            } else {
                start_close(reader_.failure(), reader_.failure_reason(), phase::closing_now);
            }
            break;
        case event::need_more: break;
        }
    }

    void on_message() {
        if (phase_ != phase::open) return reader_.next_message();  // closing: ops are ignored
        std::string& payload = reader_.payload();
#if defined(COURIER_WITH_ZLIB)
        if (reader_.compressed()) {
            inflated_.clear();
            bool too_big = false;
            if (!inflater_.inflate(payload, inflated_, opt_.max_message, too_big)) {
                if (too_big) start_close(ws::close_code::message_too_big, "message over the size limit", phase::closing_now);
                else start_close(ws::close_code::invalid_payload, "invalid compressed data", phase::closing_now);
                return;
            }
            payload.swap(inflated_);
            if (reader_.message_type() == ws::opcode::text && !is_valid_utf8(payload)) {
                start_close(ws::close_code::invalid_payload, "text message is not valid UTF-8", phase::closing_now);
                return;
            }
        }
#endif
        if (reader_.message_type() != ws::opcode::text) {
            push_op(ws_error_op({}, error::bad_request, "ops are JSON text frames"));
        } else {
            handle_op(payload);
        }
        reader_.next_message();
        // One big message must not keep its buffers for the connection's life.
        if (reader_.buffered() > shrink_above) reader_.shrink();
#if defined(COURIER_WITH_ZLIB)
        if (inflated_.capacity() > shrink_above) inflated_ = std::string{};
#endif
    }

    void handle_op(std::string_view text) {
        ws_op op;
        if (auto ec = parse_ws_op(text, op)) {
            return push_op(ws_error_op(op.ref, to_error(ec), ec == error::invalid_json
                                                                  ? "an op must be valid JSON"
                                                                  : "an op is a JSON object; op, topic and since are strings"));
        }
        if (op.op == "publish") return publish(op);
        if (op.op == "subscribe") {
            if (subscribed(op.topic))
                return push_op(ws_error_op(op.ref, error::bad_request, "already subscribed to this topic"));
            if (auto ec = subscribe(op.topic, op.since, op.ref)) push_op(ws_error_op(op.ref, to_error(ec)));
            return;
        }
        if (op.op == "unsubscribe") return unsubscribe(op);
        push_op(ws_error_op(op.ref, error::bad_request, "op must be subscribe, unsubscribe or publish"));
    }

    bool subscribed(std::string_view topic) const noexcept {
        for (const auto& s : subs_)
            if (s->topic == topic) return true;
        return false;
    }

    static error to_error(std::error_code ec) {
        return ec.category() == error_category() ? static_cast<error>(ec.value()) : error::bad_request;
    }

    void publish(const ws_op& op) {
        if (conn_.stopping()) return push_op(ws_error_op(op.ref, error::shutting_down));
        if (!is_valid_topic(op.topic)) return push_op(ws_error_op(op.ref, error::invalid_topic));
        if (op.data.empty()) return push_op(ws_error_op(op.ref, error::invalid_json, "publish needs data"));
        auto grant = ctx_.authorize(action::publish, op.topic);
        if (grant.ec) return push_op(ws_error_op(op.ref, to_error(grant.ec)));
        auto r = ctx_.broker.publish(grant.tenant, op.topic, op.data);
        if (r.ec) return push_op(ws_error_op(op.ref, to_error(r.ec)));
        conn_.metrics().add(metrics::total::messages_published);
        if (!op.ref.empty()) push_op(ws_ack_op(op.ref, r.msg->id()));
    }

    void unsubscribe(const ws_op& op) {
        if (!is_valid_topic(op.topic)) return push_op(ws_error_op(op.ref, error::invalid_topic));
        for (auto it = subs_.begin(); it != subs_.end(); ++it) {
            if ((*it)->topic != op.topic) continue;
            queue_.remove_tag((*it)->tag, in_flight_);
            subs_.erase(it);
            break;
        }
        // Unsubscribing from a topic one is not subscribed to is no error.
        if (!op.ref.empty()) push_op(ws_ack_op(op.ref));
    }

    // ---- writing -------------------------------------------------------

    asio::awaitable<void> write_loop() {
        std::vector<asio::const_buffer> bufs;
        for (;;) {
            if (phase_ == phase::open && conn_.stopping() && queue_.empty() && ops_.empty())
                start_close(ws::close_code::going_away, wire_code(error::shutting_down), phase::closing);
            if (phase_ != phase::open) {
                co_await finish_close();
                co_return;
            }
            if (queue_.empty() && ops_.empty() && pong_.empty()) {
                if (!co_await wait_or_ping()) co_return;
                continue;
            }
            bufs.clear();
            // Op frames move out of ops_ first: the reader may add to ops_
            // during the write, and a reallocation would move short
            // (small-string) frames the write still points into.
            const std::size_t n_ops = std::min(ops_.size(), max_gather - 1);
            sending_.assign(std::make_move_iterator(ops_.begin()), std::make_move_iterator(ops_.begin() + static_cast<std::ptrdiff_t>(n_ops)));
            ops_.erase(ops_.begin(), ops_.begin() + static_cast<std::ptrdiff_t>(n_ops));
            for (const auto& op : sending_) ops_bytes_ -= op.size() + sizeof(std::string);
            if (!pong_.empty()) sending_.push_back(std::exchange(pong_, {}));
            for (const auto& op : sending_) bufs.push_back(asio::buffer(op));
            in_flight_ = std::min(queue_.size(), max_gather - sending_.size());
            for (std::size_t i = 0; i < in_flight_; ++i) bufs.push_back(asio::buffer(frame_for(*queue_[i].msg)));
            writing_ = true;
            const bool ok = co_await conn_.write_bounded(bufs);
            writing_ = false;
            if (!ok) co_return;
            sending_.clear();
            queue_.pop(in_flight_);
            conn_.metrics().add(metrics::per_transport::messages_delivered, metrics::slot<websocket>(), in_flight_);
            in_flight_ = 0;
            gate_.cancel();
        }
    }

    // Waits for something to send; sends a ping after ping_interval of
    // silence from the client, and gives up on it after pong_timeout more.
    asio::awaitable<bool> wait_or_ping() {
        auto& timer = conn_.wait_timer();
        const auto due = ping_outstanding_ ? ping_sent_ + opt_.pong_timeout : last_heard_ + opt_.ping_interval;
        timer.expires_at(due);
        waiting_ = true;
        co_await timer.async_wait(nothrow_awaitable);
        waiting_ = false;
        if (!queue_.empty() || !ops_.empty() || !pong_.empty() || phase_ != phase::open || conn_.stopping()) co_return true;
        const auto now = clock::now();
        if (ping_outstanding_) {
            if (now >= ping_sent_ + opt_.pong_timeout) co_return false;  // the client is gone
        } else if (now >= last_heard_ + opt_.ping_interval) {
            ping_outstanding_ = true;
            ping_sent_ = now;
            std::string ping;
            ws::append_frame(ping, ws::opcode::ping, {});
            push_frame(std::move(ping));
        }
        co_return true;
    }

    // Writes what must precede our close frame, the close frame, and (for
    // a close we started) waits a while for the client's answer.
    asio::awaitable<void> finish_close() {
        std::vector<asio::const_buffer> bufs;
        // Pending op frames (an ack, the error that explains the close) go
        // first; queued messages are dropped: the client resumes by id.
        sending_ = std::move(ops_);
        ops_.clear();
        ops_bytes_ = 0;
        if (!pong_.empty()) sending_.push_back(std::exchange(pong_, {}));
        for (const auto& op : sending_) bufs.push_back(asio::buffer(op));
        bufs.push_back(asio::buffer(close_frame_));
        if (!co_await conn_.write_bounded(bufs)) co_return;
        sending_.clear();
        gate_.cancel();
        if (phase_ == phase::closed) co_return;  // the client's close came first: TCP closes now
        if (phase_ == phase::closing_now) {
            // After a protocol error the client may still be sending. Closing
            // now, with its bytes unread, would reset the connection (RST)
            // and could destroy the close frame before it is read; so send
            // FIN, and the reader discards until the client closes too.
            std::error_code ignored;
            conn_.stream().socket().shutdown(asio::socket_base::shutdown_send, ignored);
        }
        // The reader ends the session at EOF, or sets phase_ to closed when
        // the client's close arrives (and cancels this wait).
        auto& timer = conn_.wait_timer();
        timer.expires_after(opt_.close_timeout);
        waiting_ = true;
        while (phase_ != phase::closed && clock::now() < timer.expiry()) co_await timer.async_wait(nothrow_awaitable);
        waiting_ = false;
    }

    Ctx& ctx_;
    decltype(ctx_.conn)& conn_;
    const websocket::options& opt_;
    ws::deflate_params deflate_;
    std::size_t deflate_max_ = 0;
    ws::frame_reader reader_;
#if defined(COURIER_WITH_ZLIB)
    ws::inflater inflater_;
    std::string inflated_;
#endif
    asio::steady_timer gate_;  // holds the reader while the op queue is full
    std::vector<std::unique_ptr<topic_sub>> subs_;
    std::uint32_t next_tag_ = 0;
    send_queue queue_;
    std::size_t in_flight_ = 0;  // queue entries in the write in flight
    std::vector<std::string> ops_;      // op and control frames, sent before messages
    std::vector<std::string> sending_;  // the op frames of the write in flight
    std::size_t ops_bytes_ = 0;
    std::string close_frame_;
    std::string pong_;  // the answer to the latest ping, if not yet sent
    phase phase_ = phase::open;
    clock::time_point last_heard_{};
    clock::time_point ping_sent_{};
    bool ping_outstanding_ = false;
    bool waiting_ = false;
    bool writing_ = false;
};

} // namespace detail

template <class Ctx>
asio::awaitable<bool> websocket::serve(Ctx& ctx, const options& opt) {
    ws::upgrade_request up;
    if (auto ec = ws::check_upgrade(ctx.req, opt.subprotocols, opt.permessage_deflate && ws::deflate_supported, up)) {
        auto res = http::error_response(static_cast<error>(ec.value()));
        if (ec == error::upgrade_required) {
            res.set("Upgrade", "websocket");
            res.set("Sec-WebSocket-Version", "13");
        }
        co_return co_await ctx.reply(res);
    }
    if (!http::upgrade_origin_allowed(ctx.conn.options().allow_origins, ctx.req))
        co_return co_await ctx.fail(error::origin_forbidden);
    if (ctx.conn.stopping()) co_return co_await ctx.fail(error::shutting_down);
    // An unknown token is refused at the handshake (401), even on the bare
    // mount where no topic is named yet: the authorizer is asked with an
    // empty topic, and only its unauthorized verdict counts there.
    if (ctx.conn.options().authorize && ctx.topic.empty()) {
        if (ctx.authorize(action::subscribe, {}).ec == error::unauthorized)
            co_return co_await ctx.fail(error::unauthorized);
    }

    detail::ws_session<Ctx> session(ctx, opt, up.deflate);
    if (!ctx.topic.empty()) {
        // GET P/{topic}: every refusal is still an HTTP answer.
        const auto since = ctx.req.query().get("since").value_or(std::string{});
        if (auto ec = session.subscribe(ctx.topic, since, {})) co_return co_await ctx.fail(ec);
    }
    http::response res(101);
    res.set("Upgrade", "websocket");
    res.set("Connection", "Upgrade");
    res.set("Sec-WebSocket-Accept", up.accept);
    if (!up.subprotocol.empty()) res.set("Sec-WebSocket-Protocol", up.subprotocol);
    if (up.deflate.enabled) res.set("Sec-WebSocket-Extensions", up.deflate.response());
    auto unread = ctx.conn.take_unread();
    if (co_await ctx.conn.write_response(res)) {
        ctx.conn.release_buffers();
        co_await session.run(std::move(unread));
    } else {
        session.abandon();
    }
    co_return false;
}

} // namespace courier
