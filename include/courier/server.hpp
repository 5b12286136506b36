// courier: the server: listens on a port, runs io threads, serves mounted channels.
#pragma once
#include "broker.hpp"
#include "channel.hpp"
#include "config.hpp"
#include "detail/connection.hpp"
#include "detail/endpoint.hpp"
#include "metrics.hpp"
#include "options.hpp"
#include "static_files.hpp"

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/post.hpp>
#include <asio/steady_timer.hpp>

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace courier {

struct server_options {
    std::string address = "0.0.0.0";
    std::uint16_t port = 8080;  // 0 picks a free port; see basic_server::port()
    /// io threads, one io_context each; 0 means one per hardware thread.
    /// Ignored when the server runs on the application's io_context.
    std::size_t threads = 0;
    http_options http;
    /// Serve HTTPS and WSS with this OpenSSL context (certificate, key),
    /// which must outlive the server. Needs COURIER_WITH_TLS (CMake sets it
    /// when OpenSSL is found); null: plain HTTP.
    tls_context* tls = nullptr;
};

/// The server's counters as Prometheus text (format 0.0.4), at a path of
/// your choice: `srv.mount(courier::metrics_endpoint{"/metrics"})`. GET and
/// HEAD; anything else is 405. It needs no token: mount it where only your
/// monitoring can reach it, or not at all (srv.metrics() reads the same).
class metrics_endpoint {
public:
    explicit metrics_endpoint(std::string path) : path_(std::move(path)) {
        if (path_.empty() || path_.front() != '/')
            throw std::invalid_argument("courier: a metrics path starts with '/', e.g. \"/metrics\"");
    }
    const std::string& prefix() const noexcept { return path_; }

    template <class Stream>
    asio::awaitable<bool> serve(detail::http_connection<Stream>& conn, http::request& req, std::string_view rest) const {
        if (!rest.empty()) {
            auto res = http::error_response(error::not_found);
            co_return co_await conn.respond(req, res);
        }
        if (req.method() != http::verb::get && req.method() != http::verb::head) {
            auto res = http::error_response(error::method_not_allowed);
            res.set("Allow", "GET, HEAD");
            co_return co_await conn.respond(req, res);
        }
        http::response res(200);
        res.content_type("text/plain; version=0.0.4; charset=utf-8");
        res.set("Cache-Control", "no-store");
        res.body() = conn.metrics().prometheus(conn.endpoint().connections(), topics_ ? topics_() : -1);
        co_return co_await conn.respond(req, res);
    }

private:
    template <class>
    friend class basic_server;
    std::string path_;
    std::function<long long()> topics_;  // the broker's topic count, when it has one
};

/// Serves mounted channels over HTTP/1.1.
///
/// Two ways to run it: on io threads it owns (`start()` / `wait()`), each
/// with its own io_context (a lane); or on the application's io_context
/// (pass it to the constructor, `start()`, then run that context yourself).
/// Thread safety: mount() before start(); stop() from any thread.
template <class B = in_memory>
class basic_server {
public:
    basic_server(B& broker, server_options opt) : broker_(broker), opt_(std::move(opt)) {
        std::size_t n = opt_.threads ? opt_.threads : std::max(1u, std::thread::hardware_concurrency());
        for (std::size_t i = 0; i < n; ++i) {
            owned_.push_back(std::make_unique<asio::io_context>(1));
            lanes_.push_back(owned_.back().get());
        }
        init();
    }

    basic_server(asio::io_context& io, B& broker, server_options opt) : broker_(broker), opt_(std::move(opt)) {
        lanes_.push_back(&io);
        init();
    }

    basic_server(const basic_server&) = delete;
    basic_server& operator=(const basic_server&) = delete;

    ~basic_server() {
        stop();
        wait();
    }

    /// Mounts a channel; its prefix must not be taken. Before start().
    template <class T>
    basic_server& mount(channel<T, B> ch) {
        ch.broker_ = &broker_;
        ch.endpoint_ = endpoint_;
        return add_route(std::move(ch));
    }

    /// Mounts static files (pages, courier.js); the longest prefix that
    /// matches a request wins, so files at "/" leave the channels theirs.
    basic_server& mount(static_files files) { return add_route(std::move(files)); }

    /// Mounts the Prometheus text of metrics() at its path.
    basic_server& mount(metrics_endpoint m) {
        if constexpr (requires(const B& b) { b.topic_count(); })
            m.topics_ = [b = &broker_] { return static_cast<long long>(b->topic_count()); };
        return add_route(std::move(m));
    }

    /// Binds and listens (throws std::system_error when it cannot), then
    /// accepts on the lanes. With owned io threads, starts them.
    void start() {
        if (started_) return;
        started_ = true;
        const auto addr = asio::ip::make_address(opt_.address);
        acceptor_.emplace(*lanes_[0]);
        asio::ip::tcp::endpoint ep(addr, opt_.port);
        acceptor_->open(ep.protocol());
        acceptor_->set_option(asio::socket_base::reuse_address(true));
        acceptor_->bind(ep);
        acceptor_->listen(asio::socket_base::max_listen_connections);
        port_ = acceptor_->local_endpoint().port();
        asio::co_spawn(*lanes_[0], accept_loop(), asio::detached);
        for (auto& io : owned_) {
            guards_.emplace_back(io->get_executor());
            threads_.emplace_back([ctx = io.get()] { ctx->run(); });
        }
    }

    /// The port it listens on (useful with port 0), after start().
    std::uint16_t port() const noexcept { return port_; }
    std::size_t threads() const noexcept { return lanes_.size(); }
    std::size_t connections() const { return endpoint_->connections(); }
    /// What the server counted (see courier::metrics). Any thread.
    const courier::metrics& metrics() const noexcept { return endpoint_->stats; }

    /// Graceful stop, from any thread: stops accepting, answers held long
    /// polls, lets requests in progress finish, then closes every connection.
    /// Publishes arriving meanwhile get 503.
    void stop() {
        if (!started_ || stopped_.exchange(true)) return;
        asio::post(*lanes_[0], [this] {
            std::error_code ignored;
            if (acceptor_) acceptor_->close(ignored);
        });
        endpoint_->stop();
        for (auto& g : guards_) g.reset();  // owned threads end once their work is done
    }

    /// Waits for owned io threads to finish (after stop()).
    void wait() {
        for (auto& t : threads_)
            if (t.joinable()) t.join();
    }

private:
    using route_table = std::vector<std::shared_ptr<detail::route<detail::net_stream>>>;

    template <class Mounted>
    basic_server& add_route(Mounted m) {
        if (started_) throw std::logic_error("courier: mount before start()");
        for (const auto& r : *routes_)
            if (r->prefix() == m.prefix())
                throw std::invalid_argument("courier: prefix already mounted: " + std::string(m.prefix()));
        routes_->push_back(std::make_shared<detail::route_to<Mounted>>(std::move(m)));
        return *this;
    }

    void init() {
#if !COURIER_WITH_TLS
        if (opt_.tls) throw std::invalid_argument("courier: TLS needs a build with COURIER_WITH_TLS (OpenSSL)");
#endif
        endpoint_ = std::make_shared<detail::endpoint_state>(opt_.http);
        routes_ = std::make_shared<route_table>();
    }


    asio::awaitable<void> accept_loop() {
        std::size_t next = 0;
        asio::steady_timer pause(*lanes_[0]);
        for (;;) {
            auto& lane = *lanes_[next++ % lanes_.size()];
            auto [ec, sock] = co_await acceptor_->async_accept(lane, detail::nothrow_awaitable);
            if (ec) {
                if (ec == asio::error::operation_aborted || !acceptor_->is_open()) co_return;
                if (endpoint_->logs(log_level::warning))
                    endpoint_->log(log_level::warning, "accept failed (" + ec.message() + "); retrying in 50 ms");
                // Out of descriptors or memory (EMFILE, ENFILE, ENOBUFS): keep
                // serving the connections we have and retry shortly, rather
                // than spinning on an accept that fails at once.
                pause.expires_after(std::chrono::milliseconds(50));
                co_await pause.async_wait(detail::nothrow_awaitable);
                continue;
            }
            detail::tune_socket(sock, opt_.http);
            auto conn = std::make_shared<detail::http_connection<detail::net_stream>>(detail::net_stream(std::move(sock)),
                                                                                      endpoint_);
#if COURIER_WITH_TLS
            try {
                if (opt_.tls) conn->stream().start_tls(*opt_.tls);  // SSL_new may fail (memory)
            } catch (const std::exception&) {
                endpoint_->log(log_level::warning, "cannot start TLS on a new connection");
                continue;  // this connection is dropped; accepting goes on
            }
#endif
            auto ex = conn->executor();
            // Read-only from here on: mount() is refused once started.
            asio::co_spawn(ex, detail::run_connection(std::move(conn), std::shared_ptr<const route_table>(routes_)),
                           asio::detached);
        }
    }

    B& broker_;
    server_options opt_;
    std::vector<std::unique_ptr<asio::io_context>> owned_;
    std::vector<asio::io_context*> lanes_;
    std::vector<asio::executor_work_guard<asio::io_context::executor_type>> guards_;
    std::vector<std::thread> threads_;
    std::optional<asio::ip::tcp::acceptor> acceptor_;
    std::shared_ptr<detail::endpoint_state> endpoint_;
    std::shared_ptr<route_table> routes_;
    std::uint16_t port_ = 0;
    bool started_ = false;
    std::atomic<bool> stopped_{false};
};

/// The server over the default broker.
using server = basic_server<in_memory>;

} // namespace courier
