// courier detail: a minimal HTTP/1.1 keep-alive client connection, for the
// C++ clients. Reads Content-Length and close-delimited bodies.
#pragma once
#include "../config.hpp"
#include "../core/json.hpp"
#include "../error.hpp"
#include "../http/request.hpp"
#include "deadline.hpp"
#include "endpoint.hpp"
#include "json_scan.hpp"
#include "net_stream.hpp"

#include <asio/any_io_executor.hpp>
#include <asio/awaitable.hpp>
#include <asio/buffer.hpp>
#include <asio/co_spawn.hpp>
#include <asio/connect.hpp>
#include <asio/detached.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/write.hpp>

#include <charconv>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace courier::detail {

struct url_parts {
    std::string host;
    std::string port;
    std::string path;  // without a trailing '/'
    bool secure = false;          // https:// or wss://
    tls_context* tls = nullptr;   // set by the client when secure
};

/// Splits "http://host[:port][/path]" (or ws://, https://, wss://).
/// nullopt for anything else.
inline std::optional<url_parts> parse_url(std::string_view url) {
    url_parts u;
    for (auto [scheme, secure] : {std::pair{"http://", false}, {"ws://", false}, {"https://", true}, {"wss://", true}})
        if (url.starts_with(scheme)) {
            url.remove_prefix(std::string_view(scheme).size());
            u.secure = secure;
            u.port = secure ? "443" : "80";
            break;
        }
    if (u.port.empty()) return std::nullopt;
    const auto slash = url.find('/');
    auto authority = url.substr(0, slash);
    u.path = slash == std::string_view::npos ? "" : std::string(url.substr(slash));
    while (!u.path.empty() && u.path.back() == '/') u.path.pop_back();
    if (!authority.empty() && authority.front() == '[') {  // [v6]:port
        const auto close = authority.find(']');
        if (close == std::string_view::npos) return std::nullopt;
        u.host = std::string(authority.substr(1, close - 1));
        authority.remove_prefix(close + 1);
        if (!authority.empty()) u.port = std::string(authority.substr(1));
    } else {
        const auto colon = authority.rfind(':');
        u.host = std::string(authority.substr(0, colon));
        if (colon != std::string_view::npos) u.port = std::string(authority.substr(colon + 1));
    }
    if (u.host.empty() || u.port.empty()) return std::nullopt;
    return u;
}

struct client_response {
    unsigned status = 0;
    std::string body;
    bool keep_alive = true;
    std::string head;  // status line and headers, as received

    /// The first header named `name` (any case), or "".
    std::string_view header(std::string_view name) const noexcept {
        std::string_view rest(head);
        while (!rest.empty()) {
            const auto eol = rest.find("\r\n");
            const auto line = rest.substr(0, eol);
            rest.remove_prefix(eol == std::string_view::npos ? rest.size() : eol + 2);
            const auto colon = line.find(':');
            if (colon == std::string_view::npos || !http::iequals(line.substr(0, colon), name)) continue;
            auto value = line.substr(colon + 1);
            while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
            while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
            return value;
        }
        return {};
    }
};

/// One keep-alive connection to a server. Thread safety: use it from one
/// serialised executor, one request at a time. Keep it in a shared_ptr: its
/// deadline watch holds a reference while it is open.
class http_client_conn : public std::enable_shared_from_this<http_client_conn> {
public:
    static constexpr std::size_t max_head = 64 * 1024;
    static constexpr std::size_t max_body = 64 * 1024 * 1024;

    http_client_conn(const asio::any_io_executor& ex, url_parts url)
        : url_(std::move(url)), stream_(ex), deadline_(ex) {}

    const url_parts& url() const noexcept { return url_; }
    bool is_open() const noexcept { return stream_.is_open(); }

    /// Sends one request and reads the answer, connecting first if needed.
    /// `timeout` bounds the whole exchange. On any error the connection is
    /// closed; the next request reconnects.
    asio::awaitable<std::error_code> request(std::string_view method, std::string_view target,
                                             std::string_view extra_headers, std::string_view body,
                                             std::chrono::milliseconds timeout, client_response& out) {
        start_watch();
        deadline_.expires_after(timeout);
        auto ec = co_await exchange(method, target, extra_headers, body, out);
        deadline_.disarm();
        if (!ec && !out.keep_alive) close();
        if (ec) close();
        co_return ec;
    }

    /// Sends a GET and reads the answer's head only, for a streamed body
    /// (SSE). The body then comes from read_body(). `idle` bounds the wait
    /// for the head and, later, for each piece of the body.
    asio::awaitable<std::error_code> open_stream(std::string_view target, std::string_view extra_headers,
                                                 std::chrono::milliseconds idle, client_response& out,
                                                 std::string& content_type) {
        start_watch();
        close();  // a stream always starts on a fresh connection
        idle_ = idle;
        deadline_.expires_after(idle);
        auto ec = co_await send_request("GET", target, extra_headers, {});
        if (!ec) ec = co_await read_head(out, content_type);
        deadline_.disarm();
        if (ec) close();
        co_return ec;
    }

    /// The next piece of a streamed body (appended to `out`); eof at its end.
    asio::awaitable<std::error_code> read_body(std::string& out) {
        if (!rbuf_.empty()) {
            out.append(rbuf_);
            rbuf_.clear();
            co_return std::error_code{};
        }
        deadline_.expires_after(idle_);
        auto ec = co_await read_more();
        deadline_.disarm();
        out.append(rbuf_);
        rbuf_.clear();
        if (ec) close();
        co_return ec;
    }

    /// Writes raw bytes on the open connection (WebSocket frames), within
    /// `timeout`.
    asio::awaitable<std::error_code> write(std::string_view bytes, std::chrono::milliseconds timeout) {
        const auto previous = deadline_.at();
        deadline_.expires_after(timeout);
        auto [ec, n] = co_await asio::async_write(stream_, asio::buffer(bytes), nothrow_awaitable);
        deadline_.expires_at(previous);
        if (ec) close();
        co_return ec;
    }

    /// Closes the socket; a request in progress fails.
    void close() {
        stream_.close();
        rbuf_.clear();
    }

    /// Closes for good and ends the deadline watch.
    void shutdown() {
        close();
        deadline_.close();
    }

private:
    // Started on first use (shared_from_this is not available in the
    // constructor); it holds a reference until shutdown().
    void start_watch() {
        if (watching_) return;
        watching_ = true;
        asio::co_spawn(stream_.get_executor(), watch(shared_from_this()), asio::detached);
    }

    static asio::awaitable<void> watch(std::shared_ptr<http_client_conn> self) {
        co_await self->deadline_.watch([&self] { self->stream_.cancel(); });
    }

    asio::awaitable<std::error_code> exchange(std::string_view method, std::string_view target,
                                              std::string_view extra_headers, std::string_view body,
                                              client_response& out) {
        if (auto ec = co_await send_request(method, target, extra_headers, body)) co_return ec;
        std::string content_type;
        if (auto ec = co_await read_head(out, content_type)) co_return ec;
        co_return co_await read_whole_body(out);
    }

    asio::awaitable<std::error_code> send_request(std::string_view method, std::string_view target,
                                                  std::string_view extra_headers, std::string_view body) {
        if (!stream_.is_open()) {
            rbuf_.clear();
            asio::ip::tcp::resolver resolver(stream_.get_executor());
            auto [rec, results] = co_await resolver.async_resolve(url_.host, url_.port, nothrow_awaitable);
            if (rec) co_return rec;
            auto [cec, ep] = co_await asio::async_connect(stream_.socket(), results, nothrow_awaitable);
            if (cec) co_return cec;
            std::error_code ignored;
            stream_.socket().set_option(asio::ip::tcp::no_delay(true), ignored);
#if COURIER_WITH_TLS
            stream_.reset_tls();  // a new connection, a new TLS session
            if (url_.tls) {
                stream_.start_tls(*url_.tls, url_.host);
                auto [hec] = co_await stream_.async_handshake(asio::ssl::stream_base::client, nothrow_awaitable);
                if (hec) co_return hec;
            }
#endif
        }
        std::string head;
        head.reserve(128 + target.size() + extra_headers.size());
        head.append(method).append(" ").append(target).append(" HTTP/1.1\r\nHost: ").append(url_.host);
        head.append("\r\n").append(extra_headers);
        if (!body.empty() || method == "POST") {
            char len[24];
            head.append("Content-Type: application/json\r\nContent-Length: ")
                .append(len, std::to_chars(len, len + sizeof len, body.size()).ptr)
                .append("\r\n");
        }
        head.append("\r\n");
        std::array<asio::const_buffer, 2> bufs{asio::buffer(head), asio::buffer(body)};
        auto [wec, wn] = co_await asio::async_write(stream_, bufs, nothrow_awaitable);
        co_return wec;
    }

    // Reads the status line and headers; the body stays in rbuf_.
    asio::awaitable<std::error_code> read_head(client_response& out, std::string& content_type) {
        out = {};
        length_.reset();
        std::size_t end;
        while ((end = rbuf_.find("\r\n\r\n")) == std::string::npos) {
            if (rbuf_.size() > max_head) co_return error::bad_response;
            if (auto ec = co_await read_more()) co_return ec;
        }
        out.head = rbuf_.substr(0, end + 2);
        const std::string_view head = out.head;
        rbuf_.erase(0, end + 4);
        // Status line: HTTP/1.x NNN reason
        if (head.size() < 12 || head.substr(0, 7) != "HTTP/1.") co_return error::bad_response;
        const auto [p, e] = std::from_chars(head.data() + 9, head.data() + 12, out.status);
        if (e != std::errc{} || p != head.data() + 12) co_return error::bad_response;
        out.keep_alive = head[7] == '1';
        std::string_view rest(head);
        rest.remove_prefix(rest.find("\r\n") + 2);
        while (!rest.empty()) {
            const auto eol = rest.find("\r\n");
            const auto line = rest.substr(0, eol);
            rest.remove_prefix(eol + 2);
            const auto colon = line.find(':');
            if (colon == std::string_view::npos) co_return error::bad_response;
            const auto name = line.substr(0, colon);
            auto value = line.substr(colon + 1);
            while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
            if (http::iequals(name, "content-length")) {
                std::size_t n = 0;
                const auto [q, f] = std::from_chars(value.data(), value.data() + value.size(), n);
                if (f != std::errc{} || q != value.data() + value.size() || n > max_body) co_return error::bad_response;
                length_ = n;
            } else if (http::iequals(name, "connection")) {
                if (http::has_token(value, "close")) out.keep_alive = false;
                if (http::has_token(value, "keep-alive")) out.keep_alive = true;
            } else if (http::iequals(name, "content-type")) {
                content_type.assign(value);
            } else if (http::iequals(name, "transfer-encoding")) {
                co_return error::bad_response;  // courier servers never chunk
            }
        }
        if (out.status == 204 || out.status == 304 || (out.status >= 100 && out.status < 200)) length_ = 0;
        co_return std::error_code{};
    }

public:
    /// Reads a whole body (Content-Length, or until close) after read_head().
    asio::awaitable<std::error_code> read_whole_body(client_response& out) {
        if (length_) {
            while (rbuf_.size() < *length_)
                if (auto ec = co_await read_more()) co_return ec;
            out.body.assign(rbuf_, 0, *length_);
            rbuf_.erase(0, *length_);
        } else {  // until the server closes
            out.keep_alive = false;
            for (;;) {
                auto ec = co_await read_more();
                // Over TLS, only a close_notify proves the body complete.
                if (ec == asio::error::eof && truncated_) co_return error::bad_response;
                if (ec == asio::error::eof) break;
                if (ec) co_return ec;
                if (rbuf_.size() > max_body) co_return error::bad_response;
            }
            out.body = std::move(rbuf_);
            rbuf_.clear();
        }
        co_return std::error_code{};
    }

private:
    asio::awaitable<std::error_code> read_more() {
        char chunk[8192];
        auto [ec, n] = co_await stream_.async_read_some(asio::buffer(chunk), nothrow_awaitable);
        rbuf_.append(chunk, n);
        const auto plain = net_stream::plain_eof(ec);
        truncated_ = plain != ec;
        co_return plain;
    }

    url_parts url_;
    net_stream stream_;
    deadline deadline_;
    std::string rbuf_;
    std::optional<std::size_t> length_;
    std::chrono::milliseconds idle_{0};
    bool watching_ = false;
    bool truncated_ = false;  // the last read ended a TLS stream without close_notify
};

/// The courier error a wire code names (PROTOCOL.md), or nullopt.
inline std::optional<error> error_from_code(std::string_view code) noexcept {
    for (std::size_t i = 1; i < std::size(error_table); ++i)
        if (error_table[i].code == code) return static_cast<error>(i);
    return std::nullopt;
}

/// The courier error for an error answer's body (its wire code).
inline error error_from_body(unsigned status, std::string_view body) {
    std::string_view code;
    if (is_valid_json(body))
        json::for_each_member(body, [&](std::string_view k, std::string_view v) {
            if (k == "error") code = json::string_contents(v);
        });
    if (auto e = error_from_code(code)) return *e;
    return status == 503 ? error::shutting_down : status >= 500 ? error::bad_response : error::bad_request;
}

/// Errors a retry will not fix: the subscription stops.
inline bool is_permanent(std::error_code ec) {
    return ec == condition::bad_request || ec == condition::unauthorized || ec == condition::forbidden;
}

} // namespace courier::detail
