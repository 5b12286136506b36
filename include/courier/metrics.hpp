// courier: what a server counts (connections, subscribers per transport,
// messages published and delivered, slow consumers), as numbers for the
// application or as Prometheus text; and the hook for the application's logger.
#pragma once
#include "config.hpp"

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

namespace courier {

enum class log_level : std::uint8_t { debug, info, warning, error };

inline constexpr std::string_view to_string(log_level l) noexcept {
    constexpr std::array<std::string_view, 4> names{"debug", "info", "warning", "error"};
    return names[static_cast<std::size_t>(l)];
}

/// The application's logger (http_options::log). Called on io threads, so it
/// must be thread-safe and quick; courier builds the message only when one is
/// installed. Levels: debug per request problem (a malformed request, a
/// WebSocket protocol error), info per connection event worth knowing (a
/// slow consumer disconnected), warning for resource trouble (the connection
/// limit reached, accept failing), error for an exception that ended a
/// connection.
using logger = std::function<void(log_level, std::string_view message)>;

/// Counters of one endpoint (a server, or a channel adopting connections).
///
/// Counting is on the delivery path, so each thread adds to a shard of its
/// own (relaxed atomics on cache lines no other thread writes); reading sums
/// the shards. Read values are a consistent-enough snapshot for monitoring,
/// not a transaction. Thread safety: every member, from any thread.
class metrics {
public:
    /// Counts that are not per transport.
    enum class total : std::uint8_t {
        connections_accepted,  // TCP connections taken in
        connections_refused,   // over max_connections: answered 503
        requests,              // HTTP requests answered
        client_errors,         // answers 4xx
        server_errors,         // answers 5xx
        messages_published,    // publishes accepted through this endpoint (HTTP and WebSocket)
        count_
    };
    /// Counts per transport (see slot()).
    enum class per_transport : std::uint8_t {
        subscribers,               // open now: SSE streams, WebSocket sessions, held long polls
        subscribers_total,         // opened since start
        messages_delivered,        // messages written to subscribers
        slow_consumer_disconnects, // subscribers cut because their queue overflowed
        messages_discarded,        // queued for a subscriber but unsent when it ended
        count_
    };
    static constexpr std::size_t max_transports = 8;

    metrics() : shards_(std::make_unique<shard[]>(shard_count)) {}

    /// The slot of transport `T` (by its name), the same in every endpoint.
    template <class T>
    static std::size_t slot() {
        static const std::size_t s = register_transport(T::name);
        return s;
    }
    /// The names of the transports that have a slot, by slot.
    static std::array<std::string_view, max_transports> transport_names() {
        auto& r = registry();
        std::lock_guard lock(r.mu);
        return r.names;
    }

    void add(total c, std::uint64_t n = 1) noexcept { cell(static_cast<std::size_t>(c)).fetch_add(n, relaxed); }
    void add(per_transport c, std::size_t transport, std::uint64_t n = 1) noexcept {
        cell(index(c, transport)).fetch_add(n, relaxed);
    }
    /// A subscriber that opens now and closes when the returned guard ends.
    class subscriber_guard {
    public:
        subscriber_guard(metrics& m, std::size_t transport) : m_(&m), t_(transport) {
            m.add(per_transport::subscribers, t_);
            m.add(per_transport::subscribers_total, t_);
        }
        subscriber_guard(const subscriber_guard&) = delete;
        subscriber_guard& operator=(const subscriber_guard&) = delete;
        ~subscriber_guard() { m_->add(per_transport::subscribers, t_, std::uint64_t(-1)); }

    private:
        metrics* m_;
        std::size_t t_;
    };

    std::uint64_t read(total c) const noexcept { return sum(static_cast<std::size_t>(c)); }
    std::uint64_t read(per_transport c, std::size_t transport) const noexcept { return sum(index(c, transport)); }

    /// Prometheus text exposition format 0.0.4. `open_connections` and
    /// `topics` (negative: unknown) come from the endpoint and the broker.
    std::string prometheus(std::uint64_t open_connections, long long topics = -1) const {
        std::string out;
        out.reserve(2048);
        const auto header = [&](std::string_view name, std::string_view type, std::string_view help) {
            out.append("# HELP ").append(name).append(" ").append(help).append("\n# TYPE ");
            out.append(name).append(" ").append(type).append("\n");
        };
        const auto value = [&](std::string_view name, std::string_view labels, std::uint64_t v, bool gauge = false) {
            out.append(name);
            if (!labels.empty()) out.append("{").append(labels).append("}");
            // A gauge's +1 and -1 may sit in different shards and be summed
            // mid-change: never show a value below zero.
            const auto g = static_cast<std::int64_t>(v);
            out.append(" ").append(gauge ? std::to_string(g < 0 ? 0 : g) : std::to_string(v));
            out.push_back('\n');
        };
        header("courier_connections", "gauge", "Open HTTP connections.");
        value("courier_connections", {}, open_connections, true);
        struct row { std::string_view name, type, help; total c; };
        static constexpr row totals[] = {
            {"courier_connections_accepted_total", "counter", "HTTP connections accepted.", total::connections_accepted},
            {"courier_connections_refused_total", "counter", "Connections refused over the connection limit (503).",
             total::connections_refused},
            {"courier_http_requests_total", "counter", "HTTP requests answered.", total::requests},
            {"courier_http_client_errors_total", "counter", "HTTP answers with a 4xx status.", total::client_errors},
            {"courier_http_server_errors_total", "counter", "HTTP answers with a 5xx status.", total::server_errors},
            {"courier_messages_published_total", "counter", "Messages published through this endpoint.",
             total::messages_published},
        };
        for (const auto& r : totals) {
            header(r.name, r.type, r.help);
            value(r.name, {}, read(r.c));
        }
        struct per_row { std::string_view name, type, help; per_transport c; };
        static constexpr per_row per[] = {
            {"courier_subscribers", "gauge", "Open subscribers: SSE streams, WebSocket sessions, held long polls.",
             per_transport::subscribers},
            {"courier_subscribers_opened_total", "counter", "Subscribers opened.", per_transport::subscribers_total},
            {"courier_messages_delivered_total", "counter", "Messages written to subscribers.",
             per_transport::messages_delivered},
            {"courier_slow_consumer_disconnects_total", "counter",
             "Subscribers disconnected because their send queue overflowed.", per_transport::slow_consumer_disconnects},
            {"courier_messages_discarded_total", "counter",
             "Messages queued for a subscriber that ended before they were written (it resumes by id).",
             per_transport::messages_discarded},
        };
        const auto names = transport_names();
        for (const auto& r : per) {
            header(r.name, r.type, r.help);
            for (std::size_t t = 0; t < max_transports && !names[t].empty(); ++t) {
                std::string label = "transport=\"";
                label.append(names[t]).push_back('"');
                value(r.name, label, read(r.c, t), r.type == "gauge");
            }
        }
        if (topics >= 0) {
            header("courier_topics", "gauge", "Topics the broker holds.");
            value("courier_topics", {}, static_cast<std::uint64_t>(topics), true);
        }
        return out;
    }

private:
    static constexpr auto relaxed = std::memory_order_relaxed;
    static constexpr std::size_t totals = static_cast<std::size_t>(total::count_);
    static constexpr std::size_t cells =
        totals + static_cast<std::size_t>(per_transport::count_) * max_transports;
    static constexpr std::size_t shard_count = 16;

    struct alignas(64) shard {
        std::array<std::atomic<std::uint64_t>, cells> values{};
    };

    struct transport_registry {
        std::mutex mu;
        std::array<std::string_view, max_transports> names{};
    };
    static transport_registry& registry() {
        static transport_registry r;
        return r;
    }
    static std::size_t register_transport(std::string_view name) {
        auto& r = registry();
        std::lock_guard lock(r.mu);
        for (std::size_t i = 0; i < max_transports; ++i) {
            if (r.names[i] == name) return i;
            if (r.names[i].empty()) {
                r.names[i] = name;
                return i;
            }
        }
        return max_transports - 1;  // more transports than slots: the last one is shared
    }

    static constexpr std::size_t index(per_transport c, std::size_t transport) noexcept {
        return totals + static_cast<std::size_t>(c) * max_transports + transport;
    }
    // Threads take shards round-robin as they first count; with more
    // threads than shards, some share one (still correct, just contended).
    static std::size_t my_shard() noexcept {
        static std::atomic<std::size_t> next{0};
        thread_local const std::size_t mine = next.fetch_add(1, relaxed) % shard_count;
        return mine;
    }
    std::atomic<std::uint64_t>& cell(std::size_t i) noexcept { return shards_[my_shard()].values[i]; }
    std::uint64_t sum(std::size_t i) const noexcept {
        std::uint64_t s = 0;
        for (std::size_t k = 0; k < shard_count; ++k) s += shards_[k].values[i].load(relaxed);
        return s;
    }

    std::unique_ptr<shard[]> shards_;
};

} // namespace courier
