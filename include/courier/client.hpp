// courier: client<Transport>, the C++ client. Subscribes with a handler,
// publishes, reconnects by itself and resumes from the last id; a gap is
// reported to the application. Swapping the transport is one word:
// client<polling> or client<long_polling>.
#pragma once
#include "config.hpp"
#include "core/json.hpp"
#include "detail/http_client.hpp"
#include "detail/json_scan.hpp"
#include "error.hpp"
#include "transport/long_poll.hpp"
#include "transport/poll.hpp"

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
    /// The mount to talk to, e.g. "http://127.0.0.1:8080/lp".
    std::string url;
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
};

namespace detail {

/// The courier error for an error answer's wire code (PROTOCOL.md).
inline error error_from_body(unsigned status, std::string_view body) {
    std::string_view code;
    if (is_valid_json(body))
        json::for_each_member(body, [&](std::string_view k, std::string_view v) {
            if (k == "error") code = json::string_contents(v);
        });
    for (std::size_t i = 1; i < std::size(error_table); ++i)
        if (error_table[i].code == code) return static_cast<error>(i);
    return status == 503 ? error::shutting_down : status >= 500 ? error::bad_response : error::bad_request;
}

/// Errors a retry will not fix: the subscription stops.
inline bool is_permanent(std::error_code ec) {
    return ec == condition::bad_request || ec == condition::unauthorized || ec == condition::forbidden;
}

template <class T>
struct poll_traits;
template <>
struct poll_traits<polling> {
    static constexpr bool hold = false;
};
template <>
struct poll_traits<long_polling> {
    static constexpr bool hold = true;
};

} // namespace detail

/// A client of one courier mount. Thread safety: use it from the executor it
/// was given, which must be serialised (an io_context run by one thread, or a
/// strand); handlers run there too.
template <class T>
class client {
public:
    using message_handler = std::function<void(const delivery&)>;
    using gap_handler = std::function<void(std::string_view topic, std::string_view next)>;
    using error_handler = std::function<void(std::string_view topic, std::error_code)>;

    client(asio::any_io_executor ex, client_options opt) : impl_(std::make_shared<impl>(std::move(ex), std::move(opt))) {}
    client(const client&) = delete;
    client& operator=(const client&) = delete;
    ~client() { stop(); }

    /// Called before the messages that follow a gap: `next` is where the
    /// server resumed (the oldest message it still had).
    void on_gap(gap_handler h) { impl_->on_gap = std::move(h); }
    /// Called on every failed request: transient ones are retried with
    /// backoff; permanent ones (400, 401, 403, 404) end that subscription.
    void on_error(error_handler h) { impl_->on_error = std::move(h); }

    /// Receives every message of `topic` after `since` ("" for from now,
    /// "earliest" for everything retained), resuming after any disconnect.
    void subscribe(std::string topic, message_handler h, std::string since = {}) {
        if (!is_valid_topic(topic)) throw std::invalid_argument("courier: invalid topic name: " + topic);
        auto s = std::make_shared<sub>(impl_->ex, std::move(topic), std::move(h), std::move(since));
        if (auto old = impl_->subs.find(s->topic); old != impl_->subs.end()) old->second->cancel();
        impl_->subs[s->topic] = s;
        asio::co_spawn(impl_->ex, poll_loop(impl_, std::move(s)), asio::detached);
    }

    void unsubscribe(const std::string& topic) {
        if (auto it = impl_->subs.find(topic); it != impl_->subs.end()) {
            it->second->cancel();
            impl_->subs.erase(it);
        }
    }

    /// The id after the last message handed over for `topic` (resume point).
    std::string cursor(const std::string& topic) const {
        auto it = impl_->subs.find(topic);
        return it == impl_->subs.end() ? std::string{} : it->second->cursor;
    }

    /// Publishes `json` to `topic`; completes with (error, id).
    template <class Token>
    auto async_publish(std::string topic, std::string json, Token&& token) {
        return asio::async_initiate<Token, void(std::error_code, std::string)>(
            [impl = impl_](auto handler, std::string topic, std::string json) {
                auto ex = asio::get_associated_executor(handler, impl->ex);
                asio::co_spawn(impl->ex, publish_op(impl, std::move(topic), std::move(json)),
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
        impl_->stopped = true;
        for (auto& [t, s] : impl_->subs) s->cancel();
        impl_->subs.clear();
        for (auto& c : impl_->idle) c->shutdown();
        impl_->idle.clear();
    }

private:
    struct sub {
        sub(const asio::any_io_executor& ex, std::string t, message_handler h, std::string since)
            : topic(std::move(t)), handler(std::move(h)), cursor(std::move(since)), timer(ex) {}
        void cancel() {
            cancelled = true;
            timer.cancel();
            if (conn) conn->shutdown();
        }
        std::string topic;
        message_handler handler;
        std::string cursor;
        asio::steady_timer timer;
        std::shared_ptr<detail::http_client_conn> conn;
        bool cancelled = false;
    };

    struct impl {
        impl(asio::any_io_executor e, client_options o) : ex(std::move(e)), opt(std::move(o)) {
            auto u = detail::parse_url(opt.url);
            if (!u) throw std::invalid_argument("courier: client url must look like http://host:port/mount");
            url = std::move(*u);
            if (!opt.token.empty()) auth_header = "Authorization: Bearer " + opt.token + "\r\n";
        }
        asio::any_io_executor ex;
        client_options opt;
        detail::url_parts url;
        std::string auth_header;
        std::map<std::string, std::shared_ptr<sub>, std::less<>> subs;
        std::vector<std::shared_ptr<detail::http_client_conn>> idle;  // publish connections
        gap_handler on_gap;
        error_handler on_error;
        std::minstd_rand rng{std::random_device{}()};
        bool stopped = false;

        void report(std::string_view topic, std::error_code ec) {
            if (on_error) on_error(topic, ec);
        }
        std::chrono::milliseconds backoff(unsigned attempt) {
            auto d = opt.backoff_min * (1u << std::min(attempt, 16u));
            d = std::min<std::chrono::milliseconds>(d, opt.backoff_max);
            return std::chrono::milliseconds(d.count() / 2 + rng() % (d.count() / 2 + 1));
        }
    };

    static std::string target(const impl& i, const sub& s) {
        std::string t = i.url.path + "/" + s.topic;
        char sep = '?';
        if (!s.cursor.empty()) {
            t.append("?since=").append(s.cursor);  // ids never need escaping
            sep = '&';
        }
        if (detail::poll_traits<T>::hold) {
            t.push_back(sep);
            t.append("timeout=").append(std::to_string(i.opt.timeout.count()));
        }
        return t;
    }

    // Hands each message to the handler and advances the cursor.
    static std::error_code deliver(impl& i, sub& s, std::string_view body) {
        if (!is_valid_json(body)) return error::bad_response;
        std::string_view messages, next;
        bool gap = false;
        detail::json::for_each_member(body, [&](std::string_view k, std::string_view v) {
            if (k == "messages") messages = v;
            else if (k == "next") next = detail::json::string_contents(v);
            else if (k == "gap") gap = v == "true";
        });
        if (messages.empty() || next.empty()) return error::bad_response;
        if (gap && i.on_gap) i.on_gap(s.topic, next);
        bool ok = true;
        detail::json::for_each_element(messages, [&](std::string_view env) {
            delivery d;
            detail::json::for_each_member(env, [&](std::string_view k, std::string_view v) {
                if (k == "id") d.id = detail::json::string_contents(v);
                else if (k == "topic") d.topic = detail::json::string_contents(v);
                else if (k == "data") d.data = v;
            });
            if (d.id.empty() || d.data.empty()) { ok = false; return; }
            if (s.cancelled) return;
            s.cursor.assign(d.id);
            s.handler(d);
        });
        if (!ok) return error::bad_response;
        if (!s.cancelled) s.cursor.assign(next);
        return {};
    }

    static asio::awaitable<void> poll_loop(std::shared_ptr<impl> i, std::shared_ptr<sub> s) {
        s->conn = std::make_shared<detail::http_client_conn>(i->ex, i->url);
        unsigned failures = 0;
        detail::client_response res;
        while (!s->cancelled && !i->stopped) {
            const auto limit = i->opt.request_timeout + (detail::poll_traits<T>::hold ? i->opt.timeout : std::chrono::seconds(0));
            auto ec = co_await s->conn->request("GET", target(*i, *s), i->auth_header, {},
                                                std::chrono::duration_cast<std::chrono::milliseconds>(limit), res);
            if (s->cancelled || i->stopped) break;
            if (!ec && res.status != 200) ec = detail::error_from_body(res.status, res.body);
            if (!ec) ec = deliver(*i, *s, res.body);
            std::chrono::milliseconds pause = detail::poll_traits<T>::hold ? std::chrono::milliseconds(0) : i->opt.interval;
            if (ec) {
                i->report(s->topic, ec);
                if (detail::is_permanent(ec)) break;
                pause = i->backoff(failures++);
            } else {
                failures = 0;
            }
            if (pause.count() > 0 && !s->cancelled) {
                s->timer.expires_after(pause);
                co_await s->timer.async_wait(detail::nothrow_awaitable);
            }
        }
        s->conn->shutdown();
    }

    static asio::awaitable<std::pair<std::error_code, std::string>> publish_op(std::shared_ptr<impl> i, std::string topic,
                                                                                std::string json) {
        if (i->stopped) co_return std::pair{std::error_code(asio::error::operation_aborted), std::string{}};
        if (!is_valid_topic(topic)) co_return std::pair{std::error_code(error::invalid_topic), std::string{}};
        std::shared_ptr<detail::http_client_conn> conn;
        if (!i->idle.empty()) {
            conn = std::move(i->idle.back());
            i->idle.pop_back();
        } else {
            conn = std::make_shared<detail::http_client_conn>(i->ex, i->url);
        }
        detail::client_response res;
        const auto path = i->url.path + "/" + topic;
        auto ec = co_await conn->request("POST", path, i->auth_header, json, i->opt.request_timeout, res);
        std::string id;
        if (!ec && res.status != 200) ec = detail::error_from_body(res.status, res.body);
        if (!ec) {
            if (is_valid_json(res.body))
                detail::json::for_each_member(res.body, [&](std::string_view k, std::string_view v) {
                    if (k == "id") id = detail::json::string_contents(v);
                });
            if (id.empty()) ec = error::bad_response;
        }
        if (!i->stopped && conn->is_open()) i->idle.push_back(std::move(conn));
        else conn->shutdown();
        co_return std::pair{ec, std::move(id)};
    }

    std::shared_ptr<impl> impl_;
};

} // namespace courier
