// courier detail: a movable deadline for a connection. One timer per
// connection; moving the deadline later costs no timer operation, moving it
// earlier re-arms the timer (the watch loop then waits for the new time).
#pragma once
#include "../config.hpp"
#include "endpoint.hpp"

#include <asio/any_io_executor.hpp>
#include <asio/awaitable.hpp>
#include <asio/steady_timer.hpp>

#include <algorithm>
#include <chrono>

namespace courier::detail {

class deadline {
public:
    using clock = std::chrono::steady_clock;

    /// While no deadline is set the watch still wakes every `period`: then a
    /// new deadline `period` or more ahead is always later than the timer's
    /// expiry and costs no timer operation (a connection sets one for every
    /// write and read). Only a deadline sooner than that re-arms the timer.
    explicit deadline(const asio::any_io_executor& ex, clock::duration period = std::chrono::seconds(10))
        : timer_(ex), period_(period) {}

    void expires_at(clock::time_point t) {
        at_ = t;
        if (t < timer_.expiry()) timer_.expires_at(t);
    }
    void expires_after(clock::duration d) { expires_at(clock::now() + d); }
    void disarm() noexcept { at_ = clock::time_point::max(); }
    clock::time_point at() const noexcept { return at_; }
    /// Ends watch().
    void close() {
        closed_ = true;
        timer_.cancel();
    }

    /// Calls `on_expire()` whenever the deadline passes, until close().
    /// The owner keeps this object alive while the watch runs.
    template <class F>
    asio::awaitable<void> watch(F on_expire) {
        while (!closed_) {
            timer_.expires_at(std::min(at_, clock::now() + period_));
            co_await timer_.async_wait(nothrow_awaitable);
            if (closed_) break;
            if (at_ <= clock::now()) {
                at_ = clock::time_point::max();
                on_expire();
            }
        }
    }

private:
    asio::steady_timer timer_;
    clock::duration period_;
    clock::time_point at_ = clock::time_point::max();
    bool closed_ = false;
};

} // namespace courier::detail
