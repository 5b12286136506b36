// courier detail: a subscriber's bounded send queue: references to shared,
// already-encoded messages, counted in bytes. No copy of any payload.
#pragma once
#include "../config.hpp"
#include "../core/message.hpp"

#include <cstdint>
#include <vector>

namespace courier::detail {

class send_queue {
public:
    struct entry {
        message_ptr msg;
        std::uint32_t tag;           // which of the connection's subscriptions
        std::uint32_t bytes : 31;    // size on the wire
        std::uint32_t backlog : 1;   // part of a subscription's backlog
    };

    /// Appends a live message unless the live bytes queued would pass
    /// `limit` (an empty queue always takes one, so an oversized message
    /// cannot wedge a subscriber).
    bool push(message_ptr m, std::uint32_t tag, std::size_t bytes, std::size_t limit) {
        if (!empty() && live_bytes() + bytes > limit) return false;
        items_.push_back({std::move(m), tag, static_cast<std::uint32_t>(bytes), 0});
        bytes_ += bytes;
        return true;
    }
    /// Appends a message of a subscription's backlog: bounded by the history
    /// and always taken whole, it does not count against the live limit, so
    /// a resume with a large backlog is not mistaken for a slow consumer.
    void push_backlog(message_ptr m, std::uint32_t tag, std::size_t bytes) {
        items_.push_back({std::move(m), tag, static_cast<std::uint32_t>(bytes), 1});
        bytes_ += bytes;
        backlog_bytes_ += bytes;
    }
    bool empty() const noexcept { return head_ == items_.size(); }
    std::size_t size() const noexcept { return items_.size() - head_; }
    std::size_t bytes() const noexcept { return bytes_; }
    std::size_t live_bytes() const noexcept { return bytes_ - backlog_bytes_; }
    const entry& operator[](std::size_t i) const noexcept { return items_[head_ + i]; }

    /// Drops the first `n` entries (after they were written).
    void pop(std::size_t n) noexcept {
        for (std::size_t i = 0; i < n; ++i) {
            forget(items_[head_]);
            items_[head_++].msg.reset();
        }
        if (head_ == items_.size()) {
            items_.clear();
            head_ = 0;
        } else if (head_ >= 256 && head_ * 2 >= items_.size()) {
            items_.erase(items_.begin(), items_.begin() + static_cast<std::ptrdiff_t>(head_));
            head_ = 0;
        }
    }

    /// Drops every entry of subscription `tag` (it was cancelled), except
    /// the first `skip` (a write in flight still points into them).
    void remove_tag(std::uint32_t tag, std::size_t skip = 0) {
        std::size_t out = head_ + skip;
        for (std::size_t i = out; i < items_.size(); ++i) {
            if (items_[i].tag == tag) {
                forget(items_[i]);
                continue;
            }
            if (out != i) items_[out] = std::move(items_[i]);
            ++out;
        }
        items_.resize(out);
    }

private:
    void forget(const entry& e) noexcept {
        bytes_ -= e.bytes;
        if (e.backlog) backlog_bytes_ -= e.bytes;
    }

    std::vector<entry> items_;
    std::size_t head_ = 0;
    std::size_t bytes_ = 0;
    std::size_t backlog_bytes_ = 0;
};

} // namespace courier::detail
