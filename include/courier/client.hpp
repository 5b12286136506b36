// courier: client<Transport>, the C++ client. Subscribes with a handler,
// publishes, reconnects by itself and resumes from the last id; a gap is
// reported to the application. Swapping the transport is one word:
// client<polling>, client<long_polling>, client<sse> or client<websocket>.
#pragma once
#include "config.hpp"
#include "core/json.hpp"
#include "detail/http_client.hpp"
#include "detail/json_scan.hpp"
#include "error.hpp"
#include "transport/long_poll.hpp"
#include "transport/poll.hpp"
#include "transport/sse.hpp"
#include "transport/websocket.hpp"
#include "detail/ws_client.hpp"
#include "event_stream/parser.hpp"

#include <asio/any_io_executor.hpp>
#include <asio/associated_executor.hpp>
#include <asio/async_result.hpp>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/dispatch.hpp>
#include <asio/steady_timer.hpp>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace courier {

/// One message as a client receives it. The views are valid during the
/// handler call only; `data` is the message's JSON exactly as published
/// (compacted).
struct delivery {
    std::string_view id;
    std::string_view topic;
    std::string_view data;
};

struct client_options {
    /// The mount to talk to, e.g. "http://127.0.0.1:8080/lp"; https:// (and
    /// wss:// for WebSocket) speak TLS (needs COURIER_WITH_TLS).
    std::string url;
    /// For https/wss: the OpenSSL context that verifies the server (it must
    /// outlive the client). Null: the system's trusted certificates. The
    /// server's certificate must match the URL's host either way.
    tls_context* tls = nullptr;
    /// Sent as `Authorization: Bearer <token>` when not empty.
    std::string token;
    /// Polling: the pause between two polls.
    std::chrono::milliseconds interval{1000};
    /// Long polling: how long the server may hold a poll (at most 120 s).
    std::chrono::seconds timeout{30};
    /// Reconnect backoff: doubles from min to max, with jitter.
    std::chrono::milliseconds backoff_min{100};
    std::chrono::milliseconds backoff_max{5000};
    /// Bound on one request (a long poll gets its timeout on top).
    std::chrono::milliseconds request_timeout{10'000};
    /// SSE: a stream silent for this long (no event, no keepalive) is
    /// considered dead and reopened.
    std::chrono::milliseconds stream_timeout{45'000};
};

namespace detail {

/// One subscription of a client: its topic, handler and resume cursor.
struct client_sub {
    client_sub(const asio::any_io_executor& ex, std::string t, std::function<void(const delivery&)> h, std::string since)
        : topic(std::move(t)), handler(std::move(h)), cursor(std::move(since)), timer(ex) {}
    void cancel() {
        cancelled = true;
        timer.cancel();
        if (conn) conn->shutdown();
    }
    /// Drops the connection; the loop reconnects at once and resumes.
    void kick() {
        kicked = true;
        timer.cancel();
        if (conn) conn->close();
    }
    /// True once after kick(): the failure it caused is not an error.
    bool take_kick() noexcept { return std::exchange(kicked, false); }
    std::string topic;
    std::function<void(const delivery&)> handler;
    std::string cursor;
    asio::steady_timer timer;
    std::shared_ptr<http_client_conn> conn;
    bool cancelled = false;
    bool kicked = false;
};

/// What a client's subscriptions and publishes share.
struct client_state {
    client_state(asio::any_io_executor e, client_options o) : ex(std::move(e)), opt(std::move(o)) {
        auto u = parse_url(opt.url);
        if (!u) throw std::invalid_argument("courier: client url must look like http://host:port/mount");
        url = std::move(*u);
        if (url.secure) {
#if COURIER_WITH_TLS
            if (!opt.tls) {
                own_tls = std::make_shared<tls_context>(tls_context::tls_client);
                own_tls->set_default_verify_paths();
            }
            url.tls = opt.tls ? opt.tls : own_tls.get();  // verify_peer is set per connection
#else
            throw std::invalid_argument("courier: https and wss need a build with COURIER_WITH_TLS (OpenSSL)");
#endif
        }
        if (!opt.token.empty()) auth_header = "Authorization: Bearer " + opt.token + "\r\n";
    }
    asio::any_io_executor ex;
    client_options opt;
    std::shared_ptr<tls_context> own_tls;  // when secure and none was given
    url_parts url;
    std::string auth_header;
    std::map<std::string, std::shared_ptr<client_sub>, std::less<>> subs;
    std::vector<std::shared_ptr<http_client_conn>> idle;  // publish connections
    std::function<void(std::string_view, std::string_view)> on_gap;
    std::function<void(std::string_view, std::error_code)> on_error;
    std::shared_ptr<ws_client> ws;  // client<websocket>: the one connection
    std::minstd_rand rng{std::random_device{}()};
    bool stopped = false;

    void report(std::string_view topic, std::error_code ec) {
        if (on_error) on_error(topic, ec);
    }
    /// Exponential backoff with jitter: half fixed, half random.
    std::chrono::milliseconds backoff(unsigned attempt) {
        auto d = opt.backoff_min * (1u << std::min(attempt, 16u));
        d = std::min<std::chrono::milliseconds>(d, opt.backoff_max);
        return std::chrono::milliseconds(d.count() / 2 + rng() % (d.count() / 2 + 1));
    }
    std::string target(const client_sub& s, std::string_view extra_query = {}) const {
        std::string t = url.path + "/" + s.topic;
        char sep = '?';
        if (!s.cursor.empty()) {
            t.append("?since=").append(s.cursor);  // ids never need escaping
            sep = '&';
        }
        if (!extra_query.empty()) t.append(1, sep).append(extra_query);
        return t;
    }
};

/// Hands one envelope to the subscription's handler and advances its cursor.
inline bool deliver_envelope(client_sub& s, std::string_view env) {
    delivery d;
    json::for_each_member(env, [&](std::string_view k, std::string_view v) {
        if (k == "id") d.id = json::string_contents(v);
        else if (k == "topic") d.topic = json::string_contents(v);
        else if (k == "data") d.data = v;
    });
    if (d.id.empty() || d.data.empty()) return false;
    if (s.cancelled) return true;
    s.cursor.assign(d.id);
    s.handler(d);
    return true;
}

/// The body of a poll answer: gap first, then each message.
inline std::error_code deliver_poll_answer(client_state& c, client_sub& s, std::string_view body) {
    if (!is_valid_json(body)) return error::bad_response;
    std::string_view messages, next;
    bool gap = false;
    json::for_each_member(body, [&](std::string_view k, std::string_view v) {
        if (k == "messages") messages = v;
        else if (k == "next") next = json::string_contents(v);
        else if (k == "gap") gap = v == "true";
    });
    if (messages.empty() || next.empty()) return error::bad_response;
    if (gap && c.on_gap) c.on_gap(s.topic, next);
    bool ok = true;
    json::for_each_element(messages, [&](std::string_view env) { ok = deliver_envelope(s, env) && ok; });
    if (!ok) return error::bad_response;
    if (!s.cancelled) s.cursor.assign(next);
    return {};
}

/// Polling and long polling: ask, deliver, (wait,) ask again.
inline asio::awaitable<void> poll_loop(std::shared_ptr<client_state> c, std::shared_ptr<client_sub> s, bool hold) {
    s->conn = std::make_shared<http_client_conn>(c->ex, c->url);
    unsigned failures = 0;
    client_response res;
    const std::string timeout_query = hold ? "timeout=" + std::to_string(c->opt.timeout.count()) : std::string{};
    while (!s->cancelled && !c->stopped) {
        const auto limit = c->opt.request_timeout + (hold ? c->opt.timeout : std::chrono::seconds(0));
        auto ec = co_await s->conn->request("GET", c->target(*s, timeout_query), c->auth_header, {},
                                            std::chrono::duration_cast<std::chrono::milliseconds>(limit), res);
        if (s->cancelled || c->stopped) break;
        if (!ec && res.status != 200) ec = error_from_body(res.status, res.body);
        if (!ec) ec = deliver_poll_answer(*c, *s, res.body);
        auto pause = hold ? std::chrono::milliseconds(0) : c->opt.interval;
        if (s->take_kick()) {
            pause = std::chrono::milliseconds(0);
        } else if (ec) {
            c->report(s->topic, ec);
            if (is_permanent(ec)) break;
            pause = c->backoff(failures++);
        } else {
            failures = 0;
        }
        if (pause.count() > 0 && !s->cancelled) {
            s->timer.expires_after(pause);
            co_await s->timer.async_wait(nothrow_awaitable);
        }
    }
    s->conn->shutdown();
}

/// Server-Sent Events: one stream per topic, resumed with Last-Event-ID
/// after the server's `retry:` time (backoff on repeated failures).
inline asio::awaitable<void> sse_loop(std::shared_ptr<client_state> c, std::shared_ptr<client_sub> s) {
    s->conn = std::make_shared<http_client_conn>(c->ex, c->url);
    event_stream::parser parser;
    unsigned failures = 0;
    std::string chunk;
    while (!s->cancelled && !c->stopped) {
        std::string headers = c->auth_header + "Accept: text/event-stream\r\nCache-Control: no-cache\r\n";
        if (!parser.last_event_id().empty()) headers += "Last-Event-ID: " + parser.last_event_id() + "\r\n";
        client_response res;
        std::string type;
        // ?since= carries the cursor given to subscribe() on the first
        // connection; after that, Last-Event-ID (which wins) takes over.
        auto ec = co_await s->conn->open_stream(c->target(*s), headers, c->opt.stream_timeout, res, type);
        if (!ec && res.status != 200) {
            ec = co_await s->conn->read_whole_body(res);
            if (!ec) ec = error_from_body(res.status, res.body);
            s->conn->close();
        }
        if (!ec && type.substr(0, 17) != "text/event-stream") ec = error::bad_response;
        bool received = false;
        parser.reconnect();
        while (!ec && !s->cancelled) {
            chunk.clear();
            ec = co_await s->conn->read_body(chunk);
            if (s->cancelled) break;
            bool bad = false;
            const bool ok = parser.feed(chunk, [&](const event_stream::event& ev) {
                received = true;
                if (ev.type == "message") {
                    if (!is_valid_json(ev.data) || !deliver_envelope(*s, ev.data)) bad = true;
                } else if (ev.type == "gap") {
                    std::string_view next;
                    if (is_valid_json(ev.data))
                        json::for_each_member(ev.data, [&](std::string_view k, std::string_view v) {
                            if (k == "next") next = json::string_contents(v);
                        });
                    if (c->on_gap) c->on_gap(s->topic, next);
                }
            });
            if (!ok || bad) ec = error::bad_response;
        }
        if (s->cancelled || c->stopped) break;
        if (s->take_kick()) continue;
        if (received) failures = 0;
        if (ec && ec != asio::error::eof) c->report(s->topic, ec);
        if (ec && is_permanent(ec)) break;
        auto pause = std::chrono::milliseconds(parser.retry().value_or(2000));
        if (failures > 0) pause = std::max(pause, c->backoff(failures));
        ++failures;
        s->timer.expires_after(pause);
        co_await s->timer.async_wait(nothrow_awaitable);
    }
    s->conn->shutdown();
}

/// The one connection of a client<websocket>, wired to the client's
/// subscriptions. It holds the client's state weakly: the state owns it.
inline std::shared_ptr<ws_client> make_ws_client(const std::shared_ptr<client_state>& c) {
    std::weak_ptr<client_state> weak = c;
    // A shared_ptr: a handler may unsubscribe while it runs.
    auto sub = [weak](std::string_view topic) -> std::shared_ptr<client_sub> {
        auto st = weak.lock();
        if (!st) return nullptr;
        auto it = st->subs.find(topic);
        return it == st->subs.end() ? nullptr : it->second;
    };
    ws_client::hooks h;
    h.deliver = [sub](std::string_view topic, std::string_view env) {
        auto s = sub(topic);
        return !s || deliver_envelope(*s, env);
    };
    h.cursor = [sub](std::string_view topic) {
        auto s = sub(topic);
        return s ? s->cursor : std::string{};
    };
    h.started = [sub](std::string_view topic, std::string_view id) {
        // Until its first message, a subscription resumes from where it started.
        if (auto s = sub(topic); s && s->cursor.empty()) s->cursor.assign(id);
    };
    h.gap = [weak](std::string_view topic, std::string_view next) {
        if (auto st = weak.lock(); st && st->on_gap) st->on_gap(topic, next);
    };
    h.fail = [weak](std::string_view topic, std::error_code ec) {
        auto st = weak.lock();
        if (!st) return;
        st->report(topic, ec);
        // A refused subscribe (403, a bad name) is not retried.
        if (!topic.empty() && is_permanent(ec))
            if (auto it = st->subs.find(topic); it != st->subs.end()) st->subs.erase(it);
    };
    h.wanted = [sub](std::string_view topic) { return sub(topic) != nullptr; };
    h.resubscribe_all = [weak] {
        auto st = weak.lock();
        if (!st || !st->ws) return;
        for (const auto& [topic, s] : st->subs) st->ws->subscribe(topic);
    };
    return std::make_shared<ws_client>(c->ex, c->url, c->auth_header, c->opt.request_timeout, c->opt.stream_timeout,
                                       [weak](unsigned attempt) {
                                           auto st = weak.lock();
                                           return st ? st->backoff(attempt) : std::chrono::milliseconds(1000);
                                       },
                                       std::move(h));
}

} // namespace detail

/// A client of one courier mount: `client<polling>`, `client<long_polling>`,
/// `client<sse>` or `client<websocket>` (one connection for every topic and
/// publish; the url may be "ws://..." or "http://..."). Thread safety: use it from the executor it was given,
/// which must be serialised (an io_context run by one thread, or a strand);
/// handlers run there too.
template <class T>
class client {
public:
    using message_handler = std::function<void(const delivery&)>;
    using gap_handler = std::function<void(std::string_view topic, std::string_view next)>;
    using error_handler = std::function<void(std::string_view topic, std::error_code)>;

    client(asio::any_io_executor ex, client_options opt)
        : state_(std::make_shared<detail::client_state>(std::move(ex), std::move(opt))) {}
    client(const client&) = delete;
    client& operator=(const client&) = delete;
    ~client() { stop(); }

    /// Called before the messages that follow a gap. `next` is the cursor
    /// the server gave with the gap: for SSE where delivery restarted, for
    /// polling and long polling the cursor after the answer that reported it.
    void on_gap(gap_handler h) { state_->on_gap = std::move(h); }
    /// Called on every failed request: transient ones are retried with
    /// backoff; permanent ones (400, 401, 403, 404) end that subscription.
    void on_error(error_handler h) { state_->on_error = std::move(h); }

    /// Receives every message of `topic` after `since` ("" for from now,
    /// "earliest" for everything retained), resuming after any disconnect.
    void subscribe(std::string topic, message_handler h, std::string since = {}) {
        if (!is_valid_topic(topic)) throw std::invalid_argument("courier: invalid topic name: " + topic);
        auto s = std::make_shared<detail::client_sub>(state_->ex, std::move(topic), std::move(h), std::move(since));
        if (auto old = state_->subs.find(s->topic); old != state_->subs.end()) {
            old->second->cancel();
            if constexpr (is_websocket) ws().unsubscribe(s->topic);
        }
        state_->subs[s->topic] = s;
        if constexpr (is_websocket) {
            ws().subscribe(s->topic);
            ws().start();
        } else if constexpr (std::is_same_v<T, sse>)
            asio::co_spawn(state_->ex, detail::sse_loop(state_, std::move(s)), asio::detached);
        else
            asio::co_spawn(state_->ex, detail::poll_loop(state_, std::move(s), std::is_same_v<T, long_polling>),
                           asio::detached);
    }

    void unsubscribe(const std::string& topic) {
        if (auto it = state_->subs.find(topic); it != state_->subs.end()) {
            it->second->cancel();
            state_->subs.erase(it);
            if constexpr (is_websocket) ws().unsubscribe(topic);
        }
    }

    /// Drops every connection now; each subscription reconnects at once and
    /// resumes from its last id (after a network change, say).
    void reconnect() {
        if constexpr (is_websocket) {
            if (state_->ws) state_->ws->kick();
        } else {
            for (auto& [t, s] : state_->subs) s->kick();
        }
    }

    /// The id after the last message handed over for `topic` (resume point).
    std::string cursor(const std::string& topic) const {
        auto it = state_->subs.find(topic);
        return it == state_->subs.end() ? std::string{} : it->second->cursor;
    }

    /// Publishes `json` to `topic` (a POST on the mount; on WebSocket a
    /// publish op, answered by its ack); completes with (error, id).
    template <class Token>
    auto async_publish(std::string topic, std::string json, Token&& token) {
        return asio::async_initiate<Token, void(std::error_code, std::string)>(
            [this](auto handler, std::string topic, std::string json) {
                auto& state = state_;
                auto ex = asio::get_associated_executor(handler, state->ex);
                if constexpr (is_websocket) {
                    auto done = [h = std::make_shared<decltype(handler)>(std::move(handler)), ex](std::error_code ec, std::string id) {
                        asio::dispatch(ex, [h, ec, id = std::move(id)]() mutable { std::move(*h)(ec, std::move(id)); });
                    };
                    if (state->stopped) return done(asio::error::operation_aborted, {});
                    if (!is_valid_topic(topic)) return done(error::invalid_topic, {});
                    if (!is_valid_json(json)) return done(error::invalid_json, {});
                    ws().publish(topic, json, std::move(done));
                    ws().start();
                    return;
                }
                asio::co_spawn(state->ex, publish_op(state, std::move(topic), std::move(json)),
                               [h = std::move(handler), ex](std::exception_ptr e, std::pair<std::error_code, std::string> r) mutable {
                                   if (e) r.first = error::bad_response;
                                   asio::dispatch(ex, [h = std::move(h), r = std::move(r)]() mutable {
                                       std::move(h)(r.first, std::move(r.second));
                                   });
                               });
            },
            token, std::move(topic), std::move(json));
    }

    /// Ends every subscription and closes every connection.
    void stop() {
        state_->stopped = true;
        if (state_->ws) state_->ws->stop();
        for (auto& [t, s] : state_->subs) s->cancel();
        state_->subs.clear();
        for (auto& c : state_->idle) c->shutdown();
        state_->idle.clear();
    }

private:
    static constexpr bool is_websocket = std::is_same_v<T, websocket>;

    detail::ws_client& ws() {
        if (!state_->ws) state_->ws = detail::make_ws_client(state_);
        return *state_->ws;
    }

    static asio::awaitable<std::pair<std::error_code, std::string>> publish_op(std::shared_ptr<detail::client_state> c,
                                                                                std::string topic, std::string json) {
        if (c->stopped) co_return std::pair{std::error_code(asio::error::operation_aborted), std::string{}};
        if (!is_valid_topic(topic)) co_return std::pair{std::error_code(error::invalid_topic), std::string{}};
        std::shared_ptr<detail::http_client_conn> conn;
        const bool reused = !c->idle.empty();
        if (reused) {
            conn = std::move(c->idle.back());
            c->idle.pop_back();
        } else {
            conn = std::make_shared<detail::http_client_conn>(c->ex, c->url);
        }
        detail::client_response res;
        const auto path = c->url.path + "/" + topic;
        auto ec = co_await conn->request("POST", path, c->auth_header, json, c->opt.request_timeout, res);
        // A kept-alive connection the server closed while it sat idle fails
        // at once, before any answer: the server never saw the request, so
        // it is sent again on a fresh connection (once).
        if (reused && (ec == asio::error::eof || ec == asio::error::connection_reset || ec == asio::error::broken_pipe)) {
            conn->shutdown();
            conn = std::make_shared<detail::http_client_conn>(c->ex, c->url);
            ec = co_await conn->request("POST", path, c->auth_header, json, c->opt.request_timeout, res);
        }
        std::string id;
        if (!ec && res.status != 200) ec = detail::error_from_body(res.status, res.body);
        if (!ec) {
            if (is_valid_json(res.body))
                detail::json::for_each_member(res.body, [&](std::string_view k, std::string_view v) {
                    if (k == "id") id = detail::json::string_contents(v);
                });
            if (id.empty()) ec = error::bad_response;
        }
        if (!c->stopped && conn->is_open()) c->idle.push_back(std::move(conn));
        else conn->shutdown();
        co_return std::pair{ec, std::move(id)};
    }

    std::shared_ptr<detail::client_state> state_;
};

} // namespace courier
