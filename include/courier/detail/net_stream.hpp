// courier detail: the byte stream of a connection, server or client side:
// a TCP socket, with TLS on top when it was started with a TLS context
// (COURIER_WITH_TLS: OpenSSL through asio::ssl). One type for both keeps
// the connection, the transports and the clients free of a Stream template
// parameter; the cost is one branch per read or write.
#pragma once
#include "../config.hpp"

#include <asio/error.hpp>
#include <asio/ip/address.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/socket_base.hpp>

#if COURIER_WITH_TLS
#include <asio/ssl/context.hpp>
#include <asio/ssl/error.hpp>
#include <asio/ssl/host_name_verification.hpp>
#include <asio/ssl/stream.hpp>
#endif

#include <memory>
#include <stdexcept>
#include <string>
#include <utility>

namespace courier {

#if COURIER_WITH_TLS
/// An OpenSSL context (certificate, key, verification), shared by the
/// connections of a server or a client; it must outlive them.
using tls_context = asio::ssl::context;
#else
/// TLS is compiled out (no COURIER_WITH_TLS): an incomplete type, so that
/// option structs can still name a pointer to one (always null).
class tls_context;
#endif

namespace detail {

class net_stream {
public:
    using executor_type = asio::ip::tcp::socket::executor_type;
    using lowest_layer_type = asio::ip::tcp::socket;

    explicit net_stream(asio::ip::tcp::socket s) : sock_(std::move(s)) {}
    explicit net_stream(const executor_type& ex) : sock_(ex) {}
    // The TLS layer refers to sock_: once started, the stream stays put.
    net_stream(net_stream&& other) : sock_(std::move(movable(other).sock_)) {}
    net_stream& operator=(net_stream&&) = delete;
private:
    static net_stream& movable(net_stream& s) {
        if (s.is_tls()) throw std::logic_error("courier: a TLS stream cannot move");
        return s;
    }

public:

    executor_type get_executor() noexcept { return sock_.get_executor(); }
    asio::ip::tcp::socket& socket() noexcept { return sock_; }
    asio::ip::tcp::socket& lowest_layer() noexcept { return sock_; }
    bool is_open() const noexcept { return sock_.is_open(); }

#if COURIER_WITH_TLS
    bool is_tls() const noexcept { return tls_ != nullptr; }
    /// Puts TLS on the socket (then call async_handshake). For a client,
    /// `host` is sent as SNI and checked against the server's certificate.
    void start_tls(tls_context& ctx, const std::string& host = {}) {
        tls_ = std::make_unique<asio::ssl::stream<asio::ip::tcp::socket&>>(sock_, ctx);
        if (!host.empty()) {
            std::error_code not_ip;
            asio::ip::make_address(host, not_ip);
            if (not_ip) SSL_set_tlsext_host_name(tls_->native_handle(), host.c_str());  // SNI names hosts, not IPs
            // Per connection: the application's context stays as it was.
            tls_->set_verify_mode(asio::ssl::verify_peer);
            tls_->set_verify_callback(asio::ssl::host_name_verification(host));
        }
    }
    /// Drops the TLS layer of a closed connection, before reconnecting (no
    /// operation may be pending).
    void reset_tls() noexcept { tls_.reset(); }
    template <class Token>
    auto async_handshake(asio::ssl::stream_base::handshake_type type, Token&& token) {
        return tls_->async_handshake(type, std::forward<Token>(token));
    }
#else
    static constexpr bool is_tls() noexcept { return false; }
#endif

    /// A TLS peer that closes without close_notify reads as "truncated";
    /// courier's peers may do that (they resume by id), so it is an end of
    /// stream like any other.
    static std::error_code plain_eof(std::error_code ec) noexcept {
#if COURIER_WITH_TLS
        if (ec == asio::ssl::error::stream_truncated) return asio::error::eof;
#endif
        return ec;
    }

    template <class Buffers, class Token>
    auto async_read_some(const Buffers& b, Token&& token) {
#if COURIER_WITH_TLS
        if (tls_) return tls_->async_read_some(b, std::forward<Token>(token));
#endif
        return sock_.async_read_some(b, std::forward<Token>(token));
    }
    template <class Buffers, class Token>
    auto async_write_some(const Buffers& b, Token&& token) {
#if COURIER_WITH_TLS
        if (tls_) return tls_->async_write_some(b, std::forward<Token>(token));
#endif
        return sock_.async_write_some(b, std::forward<Token>(token));
    }

    /// Cancels what is pending; the socket stays open.
    void cancel() {
        std::error_code ignored;
        sock_.cancel(ignored);
    }
    /// Closes at once (no TLS close_notify: the peer resumes by id anyway).
    void close() {
        std::error_code ignored;
        sock_.shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
        sock_.close(ignored);
    }

private:
    asio::ip::tcp::socket sock_;
#if COURIER_WITH_TLS
    std::unique_ptr<asio::ssl::stream<asio::ip::tcp::socket&>> tls_;
#endif
};

} // namespace detail
} // namespace courier
