// courier detail: state shared by every connection of one endpoint (a server,
// or a channel adopting the application's connections): options, the list of
// live connections for a graceful stop, and the connection limit.
#pragma once
#include "../config.hpp"
#include "../metrics.hpp"
#include "../options.hpp"

#include <asio/experimental/as_tuple.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/socket_base.hpp>
#include <asio/use_awaitable.hpp>

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

namespace courier::detail {

/// Completion token for coroutines that take errors as values.
inline constexpr auto nothrow_awaitable = asio::experimental::as_tuple(asio::use_awaitable);

/// What the endpoint needs from a connection to stop it.
class stoppable {
public:
    /// Called from any thread: the connection posts to its own executor,
    /// answers what it is doing and closes. Returns what keeps the
    /// connection alive meanwhile (empty when it is already going away), so
    /// that the caller drops the last reference outside its lock.
    virtual std::shared_ptr<void> request_stop() = 0;

protected:
    ~stoppable() = default;
};

/// Socket options every accepted connection gets: no Nagle delay (messages
/// are small and latency matters), and the configured send buffer.
template <class Socket>
void tune_socket(Socket& sock, const http_options& opt) {
    std::error_code ignored;
    sock.set_option(asio::ip::tcp::no_delay(true), ignored);
    if (opt.send_buffer_bytes > 0)
        sock.set_option(asio::socket_base::send_buffer_size(static_cast<int>(opt.send_buffer_bytes)), ignored);
}

class endpoint_state {
public:
    explicit endpoint_state(http_options opt) : opt(std::move(opt)) {}

    const http_options opt;
    courier::metrics stats;

    /// Whether a message at `level` would be logged: build it only then.
    bool logs(log_level level) const noexcept { return opt.log && level >= opt.min_log_level; }
    void log(log_level level, std::string_view message) const {
        if (logs(level)) opt.log(level, message);
    }

    bool stopping() const noexcept { return stopping_.load(std::memory_order_acquire); }

    /// Registers a live connection; false when over the connection limit.
    bool add(stoppable* c) {
        {
            std::lock_guard lock(mu_);
            if (live_.size() < opt.max_connections) {
                live_.insert(c);
                stats.add(metrics::total::connections_accepted);
                return true;
            }
        }
        stats.add(metrics::total::connections_refused);
        if (logs(log_level::warning))
            log(log_level::warning, "connection refused: max_connections (" + std::to_string(opt.max_connections) +
                                        ") reached");
        return false;
    }
    void remove(stoppable* c) {
        std::lock_guard lock(mu_);
        live_.erase(c);
    }
    std::size_t connections() const {
        std::lock_guard lock(mu_);
        return live_.size();
    }

    /// Refuses new work from now on and asks every live connection to finish.
    void stop() {
        stopping_.store(true, std::memory_order_release);
        std::vector<std::shared_ptr<void>> keep;
        std::lock_guard lock(mu_);
        keep.reserve(live_.size());
        for (auto* c : live_) keep.push_back(c->request_stop());
        // `keep` is destroyed after `lock`: a connection whose last reference
        // it holds unregisters itself without deadlocking.
    }

private:
    mutable std::mutex mu_;
    std::unordered_set<stoppable*> live_;
    std::atomic<bool> stopping_{false};
};

} // namespace courier::detail
