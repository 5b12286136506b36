// courier: channel<Transport, Broker> binds a transport to a broker at a
// path prefix. Mount it on a server, or let it adopt connections that the
// application's own Asio server accepted.
#pragma once
#include "broker.hpp"
#include "config.hpp"
#include "detail/connection.hpp"
#include "detail/endpoint.hpp"
#include "detail/request_context.hpp"
#include "error.hpp"
#include "http/cors.hpp"
#include "http/request.hpp"
#include "http/response.hpp"
#include "http/url.hpp"
#include "options.hpp"

#include <asio/awaitable.hpp>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/ip/tcp.hpp>

#include <array>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

namespace courier {
namespace detail {

/// The part of `path` after `prefix`: "" for the prefix itself, the rest for
/// "prefix/rest", nullopt when the path is not under the prefix.
inline std::optional<std::string_view> under_prefix(std::string_view prefix, std::string_view path) noexcept {
    if (path.substr(0, prefix.size()) != prefix) return std::nullopt;
    const auto rest = path.substr(prefix.size());
    if (rest.empty()) return rest;
    if (rest.front() != '/' && !prefix.ends_with('/')) return std::nullopt;
    return rest.front() == '/' ? rest.substr(1) : rest;
}

/// A publish body may be declared as JSON or not declared at all. curl's
/// `-d` labels its body application/x-www-form-urlencoded without the user
/// asking, so that type counts as undeclared; the body is validated as JSON
/// either way.
inline bool is_json_type(std::string_view type) noexcept {
    const auto semi = type.find(';');
    auto t = type.substr(0, semi);
    while (!t.empty() && (t.back() == ' ' || t.back() == '\t')) t.remove_suffix(1);
    return t.empty() || http::iequals(t, "application/json") || http::iequals(t, "application/x-www-form-urlencoded");
}

/// `POST P/{topic}`: the same on every HTTP mount.
template <class Ctx>
asio::awaitable<bool> publish(Ctx& ctx) {
    if (ctx.conn.stopping()) co_return co_await ctx.fail(error::shutting_down);
    if (!is_valid_topic(ctx.topic)) co_return co_await ctx.fail(error::invalid_topic);
    auto grant = ctx.authorize(action::publish, ctx.topic);
    if (grant.ec) co_return co_await ctx.fail(grant.ec);
    if (!ctx.req.has_length()) co_return co_await ctx.fail(error::length_required);
    if (!is_json_type(ctx.req.header("Content-Type"))) co_return co_await ctx.fail(error::unsupported_media_type);
    auto r = ctx.broker.publish(grant.tenant, ctx.topic, ctx.req.body());
    if (r.ec) co_return co_await ctx.fail(r.ec);
    ctx.conn.metrics().add(metrics::total::messages_published);
    http::response res(200);
    std::string body = R"({"id":")";
    body += r.msg->id();
    body += R"(","topic":")";
    body += r.msg->topic();
    body += R"("})";
    res.json(std::move(body));
    co_return co_await ctx.reply(res);
}

/// A mounted channel as the connection loop sees it.
template <class Stream>
class route {
public:
    virtual ~route() = default;
    virtual std::string_view prefix() const noexcept = 0;
    /// Serves a request whose path is under prefix(); `rest` is what follows.
    virtual asio::awaitable<bool> serve(http_connection<Stream>& conn, http::request& req, std::string_view rest) = 0;
};

/// Routes one request: preflight, 404, or the channel under whose prefix it falls.
template <class Stream, class Routes>
asio::awaitable<bool> dispatch(http_connection<Stream>& conn, http::request& req, const Routes& routes) {
    if (http::is_preflight(req)) {
        auto res = http::preflight_response(conn.options().allow_origins, req);
        const bool written = co_await conn.write_response(res);
        co_return written && req.keep_alive();
    }
    route<Stream>* best = nullptr;
    std::string_view rest;
    for (const auto& r : routes) {
        if (auto tail = under_prefix(r->prefix(), req.path()); tail && (!best || r->prefix().size() > best->prefix().size())) {
            best = r.get();
            rest = *tail;
        }
    }
    if (!best) {
        auto res = http::error_response(error::not_found);
        co_return co_await conn.respond(req, res);
    }
    co_return co_await best->serve(conn, req, rest);
}

template <class T>
const T& table(const T& routes) noexcept { return routes; }
template <class T>
const T& table(const std::shared_ptr<const T>& routes) noexcept { return *routes; }

/// Logs the exception that ended a connection; never throws.
inline void log_failure(const endpoint_state& ep, const std::exception_ptr& failure) noexcept {
    try {
        if (!ep.logs(log_level::error)) return;
        try {
            std::rethrow_exception(failure);
        } catch (const std::exception& e) {
            ep.log(log_level::error, std::string("connection ended by an exception: ") + e.what());
        } catch (...) {
            ep.log(log_level::error, "connection ended by an exception");
        }
    } catch (...) {
        // The logger itself failed: nothing more to do.
    }
}

/// Reads and serves requests until the connection ends. `routes` is a
/// container of route pointers, or a shared pointer to one.
template <class Stream, class Routes>
asio::awaitable<void> run_connection(std::shared_ptr<http_connection<Stream>> conn, Routes routes,
                                     std::optional<http::request> first = std::nullopt) {
    if (!conn->open()) {
        // Over TLS nothing can be said before a handshake: just close.
        if (!conn->stream().is_tls()) {
            auto res = http::error_response(error::too_many_connections);
            res.keep_alive = false;
            co_await conn->write_response(res);
        }
        conn->close();
        co_return;
    }
#if COURIER_WITH_TLS
    if (conn->stream().is_tls() && !co_await conn->handshake()) {
        conn->close();
        co_return;
    }
#endif
    http::request req;
    bool more = true;
    if (first) req = std::move(*first);
    // No co_await inside && here: GCC 12 evaluates it even when the left
    // side is false, which would read one request too many.
    std::exception_ptr failure;
    try {
        if (first) more = co_await dispatch(*conn, req, table(routes));
        while (more) {
            if (!co_await conn->next_request(req)) break;
            more = co_await dispatch(*conn, req, table(routes));
        }
        co_await conn->flush();
    } catch (...) {
        // An authorizer that throws, or bad_alloc: this connection ends, the
        // server goes on.
        failure = std::current_exception();
    }
    // Closing releases the watchdog and the connection's slot: first, so
    // that nothing below (a logger that throws) can skip it.
    conn->close();
    if (failure) log_failure(conn->endpoint(), failure);
}

/// Anything with prefix() and serve() (a channel, static files) as a route
/// of a server, or as the only route of a connection a channel adopted.
template <class Mounted>
struct route_to final : route<net_stream> {
    explicit route_to(Mounted m) : target(std::move(m)) {}
    std::string_view prefix() const noexcept override { return target.prefix(); }
    asio::awaitable<bool> serve(http_connection<net_stream>& conn, http::request& req,
                                std::string_view rest) override {
        return target.serve(conn, req, rest);
    }
    Mounted target;
};

} // namespace detail

template <class B>
class basic_server;

/// A transport mounted at a path prefix, on top of a broker.
///
/// `GET P/{topic}` is the transport's; `POST P/{topic}` publishes (every HTTP
/// mount); CORS preflights are answered for the whole endpoint.
/// Thread safety: configure it before serving; after that it is used from
/// every io thread and changes nothing.
template <class T, class B = in_memory>
class channel {
public:
    using transport = T;
    using broker_type = B;
    using options = typename T::options;

    /// A channel to mount on a server, which supplies the broker.
    explicit channel(std::string prefix, options opt = {}) : prefix_(std::move(prefix)), opt_(std::move(opt)) {
        check_prefix();
    }

    /// A channel of its own, adopting connections through accept().
    channel(B& broker, std::string prefix, options opt = {}, http_options http = {})
        : prefix_(std::move(prefix)), opt_(std::move(opt)), broker_(&broker),
          endpoint_(std::make_shared<detail::endpoint_state>(std::move(http))) {
        check_prefix();
    }

    const std::string& prefix() const noexcept { return prefix_; }

    /// Adopts a connection the application accepted and whose first request
    /// it already parsed (build it with http::request::make, or with
    /// courier's parser). `leftover` is what the application read past that
    /// request. Later requests on the connection are served by this channel
    /// too (404 outside its prefix). The socket's executor must be serialised
    /// (an io_context run by one thread, or a strand).
    void accept(asio::ip::tcp::socket socket, http::request req, std::string_view leftover = {}) {
        if (!endpoint_) throw std::logic_error("courier: channel::accept needs a channel built with a broker");
        // The route holds a copy of the channel: the connection does not
        // depend on this object staying alive (the broker must).
        std::array<std::shared_ptr<detail::route<detail::net_stream>>, 1> routes{
            std::make_shared<detail::route_to<channel>>(*this)};
        detail::tune_socket(socket, endpoint_->opt);
        auto conn = std::make_shared<detail::http_connection<detail::net_stream>>(detail::net_stream(std::move(socket)),
                                                                                  endpoint_);
        conn->preload(leftover);
        auto ex = conn->executor();
        asio::co_spawn(ex, detail::run_connection(std::move(conn), std::move(routes), std::optional<http::request>(std::move(req))),
                       asio::detached);
    }

    /// What this channel's adopted connections counted (see courier::metrics).
    /// Only for a channel built with a broker; Prometheus text:
    /// `metrics().prometheus(connections())`.
    const courier::metrics& metrics() const {
        if (!endpoint_) throw std::logic_error("courier: channel::metrics needs a channel built with a broker");
        return endpoint_->stats;
    }
    std::size_t connections() const { return endpoint_ ? endpoint_->connections() : 0; }

    /// Stops adopted connections gracefully: held long polls are answered,
    /// then each connection closes after its current request.
    void stop() {
        if (endpoint_) endpoint_->stop();
    }

    /// Serves one request under this channel's prefix; `rest` follows it.
    template <class Stream>
    asio::awaitable<bool> serve(detail::http_connection<Stream>& conn, http::request& req, std::string_view rest) {
        detail::request_context<Stream, B> ctx{conn, req, *broker_, {}};
        if (rest.find('/') != std::string_view::npos) co_return co_await ctx.fail(error::not_found);
        if (auto topic = http::percent_decode(rest)) ctx.topic = std::move(*topic);
        else co_return co_await ctx.fail(error::invalid_topic);
        if (req.method() == http::verb::post) co_return co_await detail::publish(ctx);
        if (T::accepts(req)) co_return co_await T::serve(ctx, opt_);
        auto res = req.method() == http::verb::options ? http::response(204)
                                                        : http::error_response(error::method_not_allowed);
        res.set("Allow", "GET, HEAD, POST, OPTIONS");
        co_return co_await ctx.reply(res);
    }

private:
    template <class>
    friend class basic_server;

    void check_prefix() const {
        if (prefix_.empty() || prefix_.front() != '/')
            throw std::invalid_argument("courier: a channel prefix starts with '/', e.g. \"/sse\"");
    }

    std::string prefix_;
    options opt_;
    B* broker_ = nullptr;
    std::shared_ptr<detail::endpoint_state> endpoint_;
};

} // namespace courier
