// Test support: a server on an ephemeral loopback port, and a raw socket.
#pragma once
#include <courier/courier.hpp>

#include <asio/connect.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/read.hpp>
#include <asio/write.hpp>

#include <sys/socket.h>
#include <sys/time.h>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <string>
#include <thread>

namespace courier::test {

/// A courier server with /poll and /lp on 127.0.0.1, port chosen by the OS.
struct hub_server {
    explicit hub_server(http_options http = {}, std::size_t threads = 2, broker_options b = {})
        : hub(b), srv(hub, server_options{.address = "127.0.0.1", .port = 0, .threads = threads, .http = std::move(http)}) {
        srv.mount(channel<polling>{"/poll"});
        srv.mount(channel<long_polling>{"/lp"});
        srv.start();
    }
    ~hub_server() {
        srv.stop();
        srv.wait();
    }
    std::string url(std::string_view mount) const {
        return "http://127.0.0.1:" + std::to_string(srv.port()) + std::string(mount);
    }
    broker hub;
    server srv;
};

/// A response read off a raw socket.
struct raw_response {
    unsigned status = 0;
    std::string head;
    std::string body;
    std::string header(std::string_view name) const {
        std::string needle = "\r\n" + std::string(name) + ": ";
        auto p = head.find(needle);
        if (p == std::string::npos) return {};
        p += needle.size();
        return head.substr(p, head.find("\r\n", p) - p);
    }
};

/// A blocking loopback connection that writes raw bytes and reads responses,
/// with a receive timeout so that a broken server fails the test, not hangs it.
class raw_socket {
public:
    explicit raw_socket(std::uint16_t port, std::chrono::milliseconds timeout = std::chrono::seconds(10),
                        int receive_buffer = 0)
        : sock_(io_) {
        sock_.open(asio::ip::tcp::v4());
        if (receive_buffer > 0)  // before connecting, so the window stays small
            ::setsockopt(sock_.native_handle(), SOL_SOCKET, SO_RCVBUF, &receive_buffer, sizeof receive_buffer);
        sock_.connect({asio::ip::make_address("127.0.0.1"), port});
        timeval tv{static_cast<time_t>(timeout.count() / 1000), static_cast<suseconds_t>((timeout.count() % 1000) * 1000)};
        ::setsockopt(sock_.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    }
    void send(std::string_view bytes) { asio::write(sock_, asio::buffer(bytes)); }

    /// Reads one response (Content-Length framed, or until close). The
    /// answer to HEAD has a Content-Length but no body.
    raw_response read(bool head_request = false) {
        raw_response r;
        std::size_t end;
        while ((end = buf_.find("\r\n\r\n")) == std::string::npos)
            if (!fill()) return r;
        r.head = buf_.substr(0, end + 2);
        buf_.erase(0, end + 4);
        std::from_chars(r.head.data() + 9, r.head.data() + 12, r.status);
        const auto len = r.header("Content-Length");
        if (r.status == 100 || head_request) return r;
        if (!len.empty()) {
            const std::size_t n = std::stoul(len);
            while (buf_.size() < n)
                if (!fill()) break;
            r.body = buf_.substr(0, n);
            buf_.erase(0, n);
        } else if (r.status != 204) {
            while (fill()) {}
            r.body = std::move(buf_);
            buf_.clear();
        }
        return r;
    }
    raw_response exchange(std::string_view bytes) {
        send(bytes);
        return read();
    }
    /// Whatever arrives next (buffered first); empty at EOF or timeout.
    std::string read_some() {
        if (buf_.empty() && !fill()) return {};
        return std::exchange(buf_, std::string{});
    }
    /// True when the server closed the connection (reads EOF).
    /// Waits for it until the receive timeout; a timeout is not a close.
    bool closed_by_peer() {
        if (!buf_.empty()) return false;
        char c;
        const auto n = ::recv(sock_.native_handle(), &c, 1, 0);
        if (n > 0) buf_.push_back(c);
        return n == 0 || (n < 0 && errno == ECONNRESET);
    }

private:
    // Plain recv(): with SO_RCVTIMEO it gives up after the timeout, where
    // Asio's synchronous read would wait for readiness forever.
    bool fill() {
        char chunk[4096];
        const auto n = ::recv(sock_.native_handle(), chunk, sizeof chunk, 0);
        if (n <= 0) return false;
        buf_.append(chunk, static_cast<std::size_t>(n));
        return true;
    }
    asio::io_context io_;
    asio::ip::tcp::socket sock_;
    std::string buf_;
};

/// Reads from a raw socket until `needle` has arrived (or the socket's
/// timeout); returns everything read.
inline std::string read_until(raw_socket& s, std::string_view needle) {
    std::string got;
    while (got.find(needle) == std::string::npos) {
        auto more = s.read_some();
        if (more.empty()) break;
        got += more;
    }
    return got;
}

inline std::string get(std::string_view target) {
    return "GET " + std::string(target) + " HTTP/1.1\r\nHost: t\r\n\r\n";
}
inline std::string post(std::string_view target, std::string_view body, std::string_view extra = {}) {
    return "POST " + std::string(target) + " HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n" +
           std::string(extra) + "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + std::string(body);
}

/// The value of "key":"value" in a compact JSON text.
inline std::string json_string(std::string_view json, std::string_view key) {
    const std::string needle = "\"" + std::string(key) + "\":\"";
    auto p = json.find(needle);
    if (p == std::string_view::npos) return {};
    p += needle.size();
    return std::string(json.substr(p, json.find('"', p) - p));
}

/// Runs `io` until `done()` or the time limit, a few milliseconds at a time.
template <class Done>
bool run_until(asio::io_context& io, Done done, std::chrono::milliseconds limit = std::chrono::seconds(20)) {
    const auto end = std::chrono::steady_clock::now() + limit;
    while (!done() && std::chrono::steady_clock::now() < end) {
        io.run_for(std::chrono::milliseconds(5));
        if (io.stopped()) io.restart();
    }
    return done();
}

/// Waits until `done()` (work happening on other threads) or the time limit.
template <class Done>
bool eventually(Done done, std::chrono::milliseconds limit = std::chrono::seconds(10)) {
    const auto end = std::chrono::steady_clock::now() + limit;
    while (!done() && std::chrono::steady_clock::now() < end) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    return done();
}

/// The n of a test message {"n":<int>}, or -1.
inline int n_of(std::string_view data) {
    auto p = data.find("\"n\":");
    return p == std::string_view::npos ? -1 : std::stoi(std::string(data.substr(p + 4)));
}

} // namespace courier::test
