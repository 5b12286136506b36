// courier detail: one HTTP/1.1 connection: reads requests (keep-alive,
// pipelining, timeouts), writes responses. Channels drive it.
#pragma once
#include "../config.hpp"
#include "../error.hpp"
#include "../http/cors.hpp"
#include "../http/request.hpp"
#include "../http/response.hpp"
#include "deadline.hpp"
#include "endpoint.hpp"
#include "net_stream.hpp"

#include <asio/any_io_executor.hpp>
#include <asio/awaitable.hpp>
#include <asio/buffer.hpp>
#include <asio/co_spawn.hpp>
#include <asio/experimental/awaitable_operators.hpp>
#include <asio/detached.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>
#include <asio/write.hpp>

#include <array>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

namespace courier::detail {

/// One connection. Thread safety: all members run on the stream's executor,
/// which must be serialised (an io_context run by one thread, or a strand);
/// only request_stop() may be called from elsewhere.
template <class Stream>
class http_connection final : public stoppable,
                              public std::enable_shared_from_this<http_connection<Stream>> {
public:
    using clock = std::chrono::steady_clock;

    http_connection(Stream stream, std::shared_ptr<endpoint_state> ep)
        : stream_(std::move(stream)), ep_(std::move(ep)), parser_(ep_->opt.limits),
          deadline_(stream_.get_executor(), ep_->opt.request_timeout), wait_timer_(stream_.get_executor()) {}

    ~http_connection() {
        if (registered_) ep_->remove(this);
    }

    Stream& stream() noexcept { return stream_; }
    asio::any_io_executor executor() { return stream_.get_executor(); }
    const http_options& options() const noexcept { return ep_->opt; }
    courier::metrics& metrics() noexcept { return ep_->stats; }
    const endpoint_state& endpoint() const noexcept { return *ep_; }
    bool stopping() const noexcept { return stop_requested_ || ep_->stopping(); }

    /// Registers with the endpoint and starts the watchdog. False when the
    /// endpoint is over its connection limit (the caller answers 503).
    bool open() {
        if (!ep_->add(this)) return false;
        registered_ = true;
        asio::co_spawn(stream_.get_executor(), watch(this->shared_from_this()), asio::detached);
        return true;
    }

#if COURIER_WITH_TLS
    /// The TLS handshake of a server connection, within the request timeout.
    asio::awaitable<bool> handshake() {
        deadline_.expires_after(ep_->opt.request_timeout);
        auto [ec] = co_await stream_.async_handshake(asio::ssl::stream_base::server, nothrow_awaitable);
        deadline_.disarm();
        if (ec && ep_->logs(log_level::debug)) ep_->log(log_level::debug, "TLS handshake failed: " + ec.message());
        co_return !ec;
    }
#endif

    /// Hands bytes the application already read (after the head it parsed)
    /// to this connection, as if they had arrived on the socket.
    void preload(std::string_view bytes) { rbuf_.append(bytes); }

    /// Reads the next request. Returns false when the connection should end:
    /// the peer closed, timed out or sent something malformed (then the error
    /// response has been written), or the server is stopping.
    asio::awaitable<bool> next_request(http::request& out) {
        parser_.reset();
        bool reading = false;
        deadline_.expires_after(ep_->opt.idle_timeout);
        for (;;) {
            if (rpos_ < rbuf_.size()) {
                std::size_t used = 0;
                const auto st = parser_.feed(std::string_view(rbuf_).substr(rpos_), used);
                rpos_ += used;
                if (st == http::request_parser::status::done) {
                    out = parser_.release();
                    deadline_.disarm();
                    co_return true;
                }
                if (st == http::request_parser::status::failed) {
                    if (ep_->logs(log_level::debug))
                        ep_->log(log_level::debug, "malformed request: " + std::string(wire_code(parser_.failure())));
                    auto res = http::error_response(parser_.failure());
                    res.keep_alive = false;
                    co_await write_response(res);
                    co_return false;
                }
                if (st == http::request_parser::status::head_done) {
                    out_.emplace_back("HTTP/1.1 100 Continue\r\n\r\n");
                    if (!co_await flush()) co_return false;
                    continue;
                }
            }
            // Answers to pipelined requests went out together; now the
            // socket is the only source of the next request.
            if (!co_await flush()) co_return false;
            if (!reading && parser_.started()) {
                reading = true;
                deadline_.expires_after(ep_->opt.request_timeout);
            }
            if (!reading && stopping()) co_return false;
            if (rpos_ == rbuf_.size()) {
                rbuf_.clear();
                rpos_ = 0;
            } else if (rpos_ > 0) {
                rbuf_.erase(0, rpos_);
                rpos_ = 0;
            }
            idle_ = !reading;
            auto ec = co_await read_some();
            idle_ = false;
            if (ec) {
                if (timed_out_ && parser_.started()) {
                    auto res = http::error_response(error::request_timeout);
                    res.keep_alive = false;
                    co_await write_response(res);
                }
                co_return false;
            }
        }
    }

    /// Answers `req`: adds CORS headers and decides keep-alive. While more
    /// pipelined bytes wait in the read buffer the answer is held, so that
    /// the answers to a pipelined burst go out in one write (and the burst's
    /// publishes reach subscribers in one drain). Returns false when the
    /// connection must end afterwards.
    asio::awaitable<bool> respond(const http::request& req, http::response& res) {
        http::apply_cors(ep_->opt.allow_origins, req, res);
        res.keep_alive = res.keep_alive && req.keep_alive() && !stopping();
        if (req.method() == http::verb::head) res.head_only = true;
        queue(res);
        bool ok = true;
        if (!res.keep_alive || rpos_ == rbuf_.size() || out_bytes_ >= max_held_bytes) ok = co_await flush();
        co_return ok && res.keep_alive;
    }

    /// Starts a streamed response (SSE): CORS headers, then the head and the
    /// first part of the body. Returns whether the write succeeded; the
    /// caller then owns the stream until it ends the connection.
    asio::awaitable<bool> start_stream(const http::request& req, http::response& res) {
        http::apply_cors(ep_->opt.allow_origins, req, res);
        res.keep_alive = false;
        co_return co_await write_response(res);
    }

    /// Writes a response now (after any answers still held).
    asio::awaitable<bool> write_response(http::response& res) {
        queue(res);
        co_return co_await flush();
    }

    /// Writes every held answer in one gathered write, under the request
    /// timeout. Call before waiting on anything but the socket.
    asio::awaitable<bool> flush() {
        if (out_.empty()) co_return true;
        std::vector<asio::const_buffer> bufs;
        bufs.reserve(out_.size());
        for (const auto& piece : out_) bufs.push_back(asio::buffer(piece));
        const bool ok = co_await write_bounded(bufs);
        out_.clear();
        out_bytes_ = 0;
        co_return ok;
    }

    /// Writes `bufs` within the request timeout: a peer that stops reading
    /// cannot hold a write (and so the connection, and a server stop)
    /// forever. The deadline that was running before is restored after.
    template <class Buffers>
    asio::awaitable<bool> write_bounded(const Buffers& bufs) {
        const auto previous = deadline_.at();
        deadline_.expires_after(ep_->opt.request_timeout);
        auto [ec, n] = co_await asio::async_write(stream_, bufs, nothrow_awaitable);
        deadline_.expires_at(previous);
        co_return !ec;
    }

    /// Hands over the bytes read past the current request, for a protocol
    /// switch (WebSocket): the caller reads the socket itself from then on.
    std::string take_unread() {
        std::string rest = rbuf_.substr(rpos_);
        rbuf_.clear();
        rpos_ = 0;
        return rest;
    }

    /// Frees the read buffer when nothing is left in it (before a connection
    /// waits for long: idle, a held poll, a stream).
    void release_buffers() {
        if (rpos_ != rbuf_.size()) return;
        rbuf_.clear();
        rbuf_.shrink_to_fit();
        rpos_ = 0;
        if (out_.empty()) out_.shrink_to_fit();
    }

    /// A timer a channel may wait on (long polling). request_stop() cancels it.
    asio::steady_timer& wait_timer() noexcept { return wait_timer_; }

    /// Holds the current request until wait_timer() fires or is cancelled,
    /// watching the socket meanwhile: bytes of pipelined requests are kept
    /// for later, and a peer that hangs up ends the hold at once. Returns
    /// false when the peer is gone (the connection should end).
    /// Call flush() first, then check that nothing woke the request
    /// meanwhile: a cancel() before the wait starts is lost.
    asio::awaitable<bool> hold() {
        using namespace asio::experimental::awaitable_operators;
        peer_gone_ = false;
        co_await (wait_timer_.async_wait(nothrow_awaitable) || read_until_hangup());
        co_return !peer_gone_;
    }

    /// Closes the socket; pending operations complete with errors.
    void close() {
        closed_ = true;
        stream_.close();
        deadline_.close();
        wait_timer_.cancel();
    }

    std::shared_ptr<void> request_stop() override {
        auto self = this->weak_from_this().lock();
        if (!self) return nullptr;  // already being destroyed
        asio::post(stream_.get_executor(), [self] {
            self->stop_requested_ = true;
            self->wait_timer_.cancel();
            if (self->idle_) self->stream_.cancel();
        });
        return self;
    }

private:
    static constexpr std::size_t read_chunk = 4096;

    // Waits for the socket to become readable with no buffer, then reads
    // into one. An idle connection therefore holds no read buffer at all:
    // the 4 KiB would otherwise be most of its memory.
    asio::awaitable<std::error_code> read_some() {
        if (rpos_ == rbuf_.size()) release_buffers();
        // (Not over TLS: the TLS layer may hold decrypted bytes already, and
        // it keeps buffers of its own anyway.)
        if (rbuf_.empty() && !stream_.is_tls()) {
            auto [wec] = co_await stream_.socket().async_wait(asio::socket_base::wait_read, nothrow_awaitable);
            if (wec) co_return wec;
        }
        const auto old = rbuf_.size();
        std::size_t n = 0;
        // Asio throws operation_aborted at a co_await once the coroutine was
        // cancelled (the other side of an `||` won); the buffer must not keep
        // the unread tail then.
        struct trim_tail {
            std::string& buf;
            std::size_t keep;
            const std::size_t& got;
            ~trim_tail() { buf.resize(keep + got); }
        } trim{rbuf_, old, n};
        rbuf_.resize(old + read_chunk);
        auto [ec, got] = co_await stream_.async_read_some(asio::buffer(rbuf_.data() + old, read_chunk), nothrow_awaitable);
        n = got;
        co_return ec;
    }

    asio::awaitable<void> read_until_hangup() {
        for (;;) {
            if (rpos_ == rbuf_.size()) {
                rbuf_.clear();
                rpos_ = 0;
            }
            // A peer that piles up more than a request's worth of bytes
            // while held is not a client worth holding for.
            if (rbuf_.size() - rpos_ > ep_->opt.limits.head + ep_->opt.limits.body) {
                peer_gone_ = true;
                co_return;
            }
            if (auto ec = co_await read_some()) {
                peer_gone_ = ec != asio::error::operation_aborted;
                co_return;
            }
        }
    }
    static constexpr std::size_t max_held_bytes = 64 * 1024;

    // Holds a response's head and body (moved, not copied) until flush().
    void queue(http::response& res) {
        auto& m = ep_->stats;
        m.add(courier::metrics::total::requests);
        if (res.status() >= 500) m.add(courier::metrics::total::server_errors);
        else if (res.status() >= 400) m.add(courier::metrics::total::client_errors);
        out_.push_back(res.head());
        out_bytes_ += out_.back().size();
        if (!res.head_only && !res.body().empty()) {
            out_bytes_ += res.body().size();
            out_.push_back(std::move(res.body()));
        }
    }

    // Cancels what the connection waits for when its deadline passes: the
    // reader then answers 408 (mid-request) or just closes (idle).
    static asio::awaitable<void> watch(std::shared_ptr<http_connection> self) {
        co_await self->deadline_.watch([&self] {
            self->timed_out_ = true;
            self->stream_.cancel();
        });
    }

    Stream stream_;
    std::shared_ptr<endpoint_state> ep_;
    http::request_parser parser_;
    std::string rbuf_;
    std::size_t rpos_ = 0;
    std::vector<std::string> out_;  // answers held for one gathered write
    std::size_t out_bytes_ = 0;
    deadline deadline_;
    asio::steady_timer wait_timer_;
    bool registered_ = false;
    bool idle_ = false;
    bool timed_out_ = false;
    bool closed_ = false;
    bool stop_requested_ = false;
    bool peer_gone_ = false;
};

} // namespace courier::detail
