// courier detail: the WebSocket side of client<websocket>: one connection
// carries every subscription and publish of a client; after a drop it
// reconnects and resubscribes each topic from its own cursor.
#pragma once
#include "../config.hpp"
#include "../core/json.hpp"
#include "../error.hpp"
#include "../ws/frame.hpp"
#include "../ws/handshake.hpp"
#include "http_client.hpp"
#include "json_scan.hpp"

#include <asio/any_io_executor.hpp>
#include <asio/awaitable.hpp>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/steady_timer.hpp>

#include <array>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <utility>

namespace courier::detail {

/// Mask keys from the operating system's random source (std::random_device
/// reads getrandom on Linux), fetched 256 bytes at a time (RFC 6455, 10.3:
/// keys must not be predictable).
class mask_source {
public:
    const std::uint8_t* next() {
        if (pos_ + 4 > pool_.size()) refill();
        const auto* key = pool_.data() + pos_;
        pos_ += 4;
        return key;
    }

private:
    void refill() {
        for (std::size_t i = 0; i < pool_.size(); i += 4) {
            const auto r = static_cast<std::uint32_t>(device_());
            for (int j = 0; j < 4; ++j) pool_[i + j] = static_cast<std::uint8_t>(r >> (8 * j));
        }
        pos_ = 0;
    }
    std::random_device device_;
    std::array<std::uint8_t, 256> pool_{};
    std::size_t pos_ = 256;
};

/// Where client<websocket> keeps its one connection and what rides on it.
/// The client calls subscribe/unsubscribe/publish; `deliver`, `gap` and
/// `fail` are the client's callbacks. Thread safety: one serialised
/// executor, as the client.
class ws_client : public std::enable_shared_from_this<ws_client> {
public:
    using publish_done = std::function<void(std::error_code, std::string)>;

    struct hooks {
        /// A message for `topic` (the envelope); false when it is malformed.
        std::function<bool(std::string_view topic, std::string_view envelope)> deliver;
        /// The cursor a topic resumes from (empty: from now).
        std::function<std::string(std::string_view topic)> cursor;
        /// The subscription's start cursor, from the server's ack.
        std::function<void(std::string_view topic, std::string_view id)> started;
        std::function<void(std::string_view topic, std::string_view next)> gap;
        std::function<void(std::string_view topic, std::error_code)> fail;
        /// Whether `topic` is still subscribed (an answer may arrive late).
        std::function<bool(std::string_view topic)> wanted;
        /// Calls subscribe() for every topic the client holds.
        std::function<void()> resubscribe_all;
    };

    ws_client(asio::any_io_executor ex, url_parts url, std::string auth_header, std::chrono::milliseconds request_timeout,
              std::chrono::milliseconds stream_timeout, std::function<std::chrono::milliseconds(unsigned)> backoff, hooks h)
        : ex_(std::move(ex)), url_(std::move(url)), auth_header_(std::move(auth_header)), request_timeout_(request_timeout),
          stream_timeout_(stream_timeout), backoff_(std::move(backoff)), hooks_(std::move(h)), timer_(ex_) {}

    /// Starts the connection loop (once).
    void start() {
        if (started_) return;
        started_ = true;
        asio::co_spawn(ex_, run(shared_from_this()), asio::detached);
    }

    /// Sends a subscribe op for `topic` from its cursor (now, when
    /// connected; else on connecting).
    void subscribe(std::string_view topic) {
        if (!open_) return;
        std::string op = R"({"op":"subscribe","topic":")";
        op.append(topic).append("\"");
        const auto since = hooks_.cursor(topic);
        if (!since.empty()) op.append(R"(,"since":")").append(since).append("\"");
        op.append(R"(,"ref":"s:)").append(topic).append("\"}");
        send_text(op);
    }
    void unsubscribe(std::string_view topic) {
        if (!open_) return;
        std::string op = R"({"op":"unsubscribe","topic":")";
        op.append(topic).append(R"("})");
        send_text(op);
    }

    /// Publishes `json` (sent when connected); `done` gets the id from the
    /// server's ack, or the error.
    void publish(std::string_view topic, std::string_view json, publish_done done) {
        const auto ref = ++next_ref_;
        std::string op = R"({"op":"publish","topic":")";
        op.append(topic).append(R"(","data":)").append(json).append(R"(,"ref":)").append(std::to_string(ref)).push_back('}');
        if (open_) send_text(op);
        pending_.emplace(ref, pending_publish{std::move(op), std::move(done)});
    }

    /// Drops the connection; the loop reconnects at once and resubscribes.
    void kick() {
        kicked_ = true;
        timer_.cancel();
        if (conn_) conn_->close();
    }

    void stop() {
        stopped_ = true;
        timer_.cancel();
        for (auto& [topic, r] : retries_) r.timer.cancel();
        if (conn_) {
            if (open_) {
                // A clean end: our close frame, written before the socket goes.
                std::string frame;
                ws::append_close(frame, static_cast<std::uint16_t>(ws::close_code::normal), {}, masks_.next());
                outbox_.append(frame);
                flush();
            } else {
                conn_->shutdown();
            }
        }
        fail_pending(asio::error::operation_aborted);
    }

private:
    struct pending_publish {
        std::string op;
        publish_done done;
    };

    asio::awaitable<void> run(std::shared_ptr<ws_client> /*kept alive while it runs*/) {
        unsigned failures = 0;
        while (!stopped_) {
            conn_ = std::make_shared<http_client_conn>(ex_, url_);
            bool received = false;
            auto ec = co_await session(received);
            open_ = false;
            // Every publish still waiting fails with the connection: one that
            // was sent may or may not have been applied, and only the
            // application can tell whether to send it again.
            fail_pending(ec ? ec : std::error_code(asio::error::connection_reset));
            if (stopped_) break;
            conn_->shutdown();
            if (std::exchange(kicked_, false)) continue;
            if (received) failures = 0;
            if (ec && ec != asio::error::eof) hooks_.fail({}, ec);
            if (ec && is_permanent(ec)) break;  // e.g. 401 or 403 at the handshake
            timer_.expires_after(backoff_(failures++));
            co_await timer_.async_wait(nothrow_awaitable);
        }
        if (!writing_) conn_->shutdown();  // else the writer does, after our close frame
        fail_pending(asio::error::operation_aborted);
    }

    // One connection: handshake, resubscribe, then read until it ends.
    asio::awaitable<std::error_code> session(bool& received) {
        outbox_.clear();  // frames of the last connection are void
        std::array<std::uint8_t, 16> nonce;
        for (std::size_t i = 0; i < nonce.size(); i += 4) std::memcpy(nonce.data() + i, masks_.next(), 4);
        const auto key = ws::detail::base64(nonce.data(), nonce.size());
        std::string headers = auth_header_;
        headers += "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ";
        headers += key;
        headers += "\r\n";
        client_response res;
        std::string type;
        // Every read waits at most stream_timeout: the server pings a quiet
        // connection well within it.
        // (The target is computed first: GCC 12 mishandles a temporary made
        // by ?: inside a co_await expression.)
        const std::string target = url_.path.empty() ? std::string("/") : url_.path;
        auto ec = co_await conn_->open_stream(target, headers, stream_timeout_, res, type);
        if (ec) co_return ec;
        if (res.status != 101) {
            ec = co_await conn_->read_whole_body(res);
            co_return ec ? ec : std::error_code(res.status == 426 ? error::upgrade_required : error_from_body(res.status, res.body));
        }
        if (res.header("Sec-WebSocket-Accept") != ws::accept_key(key) ||
            !http::has_token(res.header("Upgrade"), "websocket") || !res.header("Sec-WebSocket-Extensions").empty())
            co_return error::bad_response;
        open_ = true;
        ++connection_;
        retries_.clear();
        ws::frame_reader reader({.expect_masked = false, .allow_compressed = false, .max_message = max_message});
        hooks_.resubscribe_all();
        for (const auto& [ref, p] : pending_) send_text(p.op);  // published before the connection opened
        std::string chunk;
        for (;;) {
            chunk.clear();
            ec = co_await conn_->read_body(chunk);
            std::size_t pos = 0;
            while (pos < chunk.size()) {
                std::size_t used = 0;
                const auto ev = reader.feed(std::string_view(chunk).substr(pos), used);
                pos += used;
                using event = ws::frame_reader::event;
                if (ev == event::message) {
                    received = true;
                    if (reader.message_type() != ws::opcode::text || !on_text(reader.payload())) {
                        close_with(ws::close_code::protocol_error);
                        co_return error::bad_response;
                    }
                    reader.next_message();
                } else if (ev == event::ping) {
                    send_frame(ws::opcode::pong, reader.control_payload());
                } else if (ev == event::close) {
                    close_with(ws::close_code::normal);
                    co_return asio::error::eof;
                } else if (ev == event::failed) {
                    close_with(reader.failure());
                    co_return error::bad_response;
                }
            }
            if (ec) co_return ec;
        }
    }

private:
    // An op or an envelope from the server.
    bool on_text(std::string_view text) {
        if (!is_valid_json(text)) return false;
        std::string_view op, ref, id, topic, next, code;
        bool envelope = false;
        json::for_each_member(text, [&](std::string_view k, std::string_view v) {
            if (k == "op") op = json::string_contents(v);
            else if (k == "ref") ref = v;
            else if (k == "id") id = json::string_contents(v);
            else if (k == "topic") topic = json::string_contents(v);
            else if (k == "next") next = json::string_contents(v);
            else if (k == "error") code = json::string_contents(v);
            else if (k == "data") envelope = true;
        });
        if (op.empty()) return envelope && hooks_.deliver(topic, text);
        if (op == "gap") {
            if (hooks_.gap && hooks_.wanted(topic)) hooks_.gap(topic, next);
            return true;
        }
        if (op != "ack" && op != "error") return true;  // a newer server's op: ignored
        // refs: a number for a publish, "s:<topic>" for a subscribe.
        if (!ref.empty() && ref.front() == '"') {
            const auto r = json::string_contents(ref);
            if (r.substr(0, 2) != "s:") return true;
            const auto t = r.substr(2);
            if (!hooks_.wanted(t)) return true;
            if (op == "ack") {
                retries_.erase(std::string(t));
                hooks_.started(t, id);
                return true;
            }
            const auto ec = to_error(code);
            hooks_.fail(t, ec);
            // A refusal a retry may fix (a limit, a server busy) is retried
            // with backoff; the client removed a permanently refused topic.
            if (!is_permanent(ec)) retry_subscribe(std::string(t));
            return true;
        }
        std::uint64_t n = 0;
        const auto [p, e] = std::from_chars(ref.data(), ref.data() + ref.size(), n);
        auto it = e == std::errc{} ? pending_.find(n) : pending_.end();
        if (it == pending_.end()) {
            if (op == "error" && hooks_.fail) hooks_.fail({}, to_error(code));
            return true;
        }
        auto done = std::move(it->second.done);
        pending_.erase(it);
        if (op == "ack") done({}, std::string(id));
        else done(to_error(code), {});
        return true;
    }

    struct retry {
        explicit retry(const asio::any_io_executor& ex) : timer(ex) {}
        asio::steady_timer timer;
        unsigned attempts = 0;
    };

    void retry_subscribe(std::string topic) {
        auto& r = retries_.try_emplace(topic, ex_).first->second;
        r.timer.expires_after(backoff_(r.attempts++));
        asio::co_spawn(ex_, subscribe_later(shared_from_this(), std::move(topic), connection_), asio::detached);
    }

    asio::awaitable<void> subscribe_later(std::shared_ptr<ws_client> /*kept alive*/, std::string topic, unsigned connection) {
        auto it = retries_.find(topic);
        if (it == retries_.end()) co_return;
        auto [ec] = co_await it->second.timer.async_wait(nothrow_awaitable);
        if (ec) co_return;  // stopped, superseded by a newer retry, or a new connection
        // A new connection resubscribed everything already.
        if (stopped_ || !open_ || connection != connection_ || !hooks_.wanted(topic)) co_return;
        subscribe(topic);
    }

    static std::error_code to_error(std::string_view code) {
        return error_from_code(code).value_or(error::bad_response);
    }

private:
    void send_text(std::string_view text) { send_frame(ws::opcode::text, text); }

    void send_frame(ws::opcode op, std::string_view payload) {
        ws::append_frame(outbox_, op, payload, false, masks_.next());
        flush();
    }

    void close_with(ws::close_code code) {
        std::string frame;
        ws::append_close(frame, static_cast<std::uint16_t>(code), {}, masks_.next());
        outbox_.append(frame);
        flush();
    }

    void fail_pending(std::error_code ec) {
        auto pending = std::move(pending_);
        pending_.clear();
        for (auto& [ref, p] : pending) p.done(ec, {});
    }

    // One writer at a time: frames queued meanwhile go out together next.
    void flush() {
        if (writing_ || outbox_.empty() || !conn_) return;
        writing_ = true;
        asio::co_spawn(ex_, write_loop(shared_from_this(), conn_), asio::detached);
    }

    asio::awaitable<void> write_loop(std::shared_ptr<ws_client> self, std::shared_ptr<http_client_conn> conn) {
        std::string buf;
        while (!outbox_.empty() && conn == conn_) {
            buf.clear();
            buf.swap(outbox_);
            if (co_await conn->write(buf, request_timeout_)) {
                outbox_.clear();
                break;
            }
        }
        writing_ = false;
        if (stopped_) conn->shutdown();
        else self->flush();  // a new connection may have queued frames meanwhile
    }

    static constexpr std::size_t max_message = 64 * 1024 * 1024;

    asio::any_io_executor ex_;
    url_parts url_;
    std::string auth_header_;
    std::chrono::milliseconds request_timeout_;
    std::chrono::milliseconds stream_timeout_;
    std::function<std::chrono::milliseconds(unsigned)> backoff_;
    hooks hooks_;
    asio::steady_timer timer_;
    std::shared_ptr<http_client_conn> conn_;
    mask_source masks_;
    std::string outbox_;
    std::map<std::uint64_t, pending_publish> pending_;
    std::map<std::string, retry, std::less<>> retries_;  // refused subscribes waiting to try again
    unsigned connection_ = 0;
    std::uint64_t next_ref_ = 0;
    bool started_ = false;
    bool open_ = false;
    bool writing_ = false;
    bool kicked_ = false;
    bool stopped_ = false;
};

} // namespace courier::detail
