// courier core: one topic's history ring and its subscribers, grouped by lane.
//
// A lane is a serialised executor (an io_context run by one thread, or a
// strand). Subscribers live in the slot of their lane and are touched only on
// that lane, so delivery needs no lock per subscriber. A publish appends under
// the topic's mutex and posts at most one "drain" to each lane that has
// subscribers and no drain pending; the drain pulls every message newer than
// the lane's last delivery from the history, so everything published during
// one pass of a lane's loop reaches a subscriber together, in order.
#pragma once
#include "../config.hpp"
#include "../error.hpp"
#include "message.hpp"
#include "names.hpp"

#include <asio/any_io_executor.hpp>
#include <asio/post.hpp>

#include <atomic>
#include <chrono>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace courier {

/// Where the core hands messages for one subscriber. Called on the
/// subscriber's lane only. Must not block and must not end the subscription
/// from inside a call (close asynchronously instead).
class sink {
public:
    /// Queue `m` for sending. Returns false when the queue is full: the core
    /// then detaches the subscriber and calls dropped().
    virtual bool offer(const message_ptr& m) = 0;
    /// The subscriber fell behind (queue full, or its messages left the
    /// history before they could be handed over) and was detached. The
    /// connection should end; the client resumes from its last id.
    virtual void dropped() = 0;

protected:
    ~sink() = default;
};

/// What a read from a cursor returns.
struct read_result {
    std::vector<message_ptr> messages;  // oldest first
    bool gap = false;                   // the cursor was outside the history
    std::string next;                   // resume cursor after these messages
    std::string gap_next;               // after a gap: the cursor delivery restarted from
};

/// Where a subscription from `since` starts, as a resume cursor: past the
/// gap, or `since` itself, or (from now) the cursor after the backlog.
inline std::string start_cursor(const read_result& backlog, std::string_view since) {
    if (backlog.gap) return backlog.gap_next;
    return since.empty() ? backlog.next : std::string(since);
}

/// Broker options; designated initialisers make call sites read well:
/// `courier::broker hub{{.history = 1000}}`.
struct broker_options {
    std::size_t history = 1000;                 // messages kept per topic
    std::chrono::milliseconds max_age{0};       // 0: no age limit
    std::size_t max_topics = 100'000;           // per broker, over all tenants
    std::size_t max_batch = 1000;               // messages per poll answer
    std::size_t max_batch_bytes = 1 << 20;      // and bytes (at least one message)
};

namespace detail {

struct lane_slot;

struct sub_state {
    sink* target = nullptr;
    lane_slot* slot = nullptr;
    std::uint64_t last_seq = 0;  // newest message handed to the sink
    std::size_t index = 0;       // position in slot->subs
    bool attached = false;
};

struct lane_slot {
    explicit lane_slot(asio::any_io_executor ex) : executor(std::move(ex)) {}
    asio::any_io_executor executor;
    std::atomic<bool> pending{false};
    std::size_t count = 0;              // guarded by the topic's mutex
    std::uint64_t delivered_seq = 0;    // lane only
    std::vector<sub_state*> subs;       // lane only
};

class topic : public std::enable_shared_from_this<topic> {
public:
    topic(std::string name, std::string epoch, const broker_options& opt)
        : name_(std::move(name)), epoch_(std::move(epoch)), opt_(opt) {}

    std::string_view name() const noexcept { return name_; }
    std::string_view epoch() const noexcept { return epoch_; }

    /// Appends a message (compact, valid JSON) and wakes the lanes.
    message_ptr publish(std::string_view compact_data) {
        const auto now = message::clock::now();
        std::lock_guard lock(mu_);
        auto m = std::make_shared<const message>(epoch_, last_seq_ + 1, name_, compact_data, now);
        ++last_seq_;
        history_.push_back(m);
        if (history_.size() > opt_.history) history_.pop_front();
        trim_expired(now);
        for (auto& slot : slots_) {
            if (slot->count == 0 || slot->pending.exchange(true)) continue;
            asio::post(slot->executor, [self = shared_from_this(), s = slot.get()] { self->drain(*s); });
        }
        return m;
    }

    /// Messages after `c`: at most `max` (0: no limit), and no more than
    /// `max_bytes` of envelopes unless that would be none at all.
    void read(const cursor& c, std::size_t max, std::size_t max_bytes, read_result& out) {
        std::lock_guard lock(mu_);
        trim_expired(message::clock::now());
        collect(c, max, max_bytes, out);
    }

    /// Registers `target` on the lane `ex`. Must be called on that lane.
    /// Fills `backlog` with every retained message after `c`; the sink then
    /// receives every later message exactly once.
    std::unique_ptr<sub_state> attach(sink& target, const asio::any_io_executor& ex,
                                      const cursor& c, read_result& backlog) {
        auto st = std::make_unique<sub_state>();
        st->target = &target;
        lane_slot* slot = nullptr;
        {
            std::lock_guard lock(mu_);
            trim_expired(message::clock::now());
            collect(c, 0, 0, backlog);
            slot = slot_for(ex);
            if (slot->count++ == 0) slot->delivered_seq = last_seq_;
            st->last_seq = last_seq_;
        }
        st->slot = slot;
        st->index = slot->subs.size();
        st->attached = true;
        slot->subs.push_back(st.get());
        return st;
    }

    /// Unregisters; must be called on the subscriber's lane.
    void detach(sub_state& st) {
        if (!st.attached) return;
        unlink(st);
        std::lock_guard lock(mu_);
        --st.slot->count;
    }

private:
    lane_slot* slot_for(const asio::any_io_executor& ex) {
        for (auto& s : slots_)
            if (s->executor == ex) return s.get();
        slots_.push_back(std::make_unique<lane_slot>(ex));
        return slots_.back().get();
    }

    static void unlink(sub_state& st) {
        auto& subs = st.slot->subs;
        subs[st.index] = subs.back();
        subs[st.index]->index = st.index;
        subs.pop_back();
        st.attached = false;
    }

    std::uint64_t first_seq() const noexcept { return last_seq_ - history_.size() + 1; }

    void trim_expired(message::clock::time_point now) {
        if (opt_.max_age.count() <= 0) return;
        while (!history_.empty() && now - history_.front()->published() > opt_.max_age)
            history_.pop_front();
    }

    void collect(const cursor& c, std::size_t max, std::size_t max_bytes, read_result& out) const {
        const std::uint64_t first = first_seq();
        std::uint64_t after = last_seq_;
        switch (c.where) {
        case cursor::kind::now:
            break;
        case cursor::kind::earliest:
            after = first - 1;
            break;
        case cursor::kind::position:
            if (c.well_formed && c.epoch == epoch_ && c.seq <= last_seq_ && c.seq + 1 >= first) {
                after = c.seq;
            } else {
                after = first - 1;
                out.gap = true;
                out.gap_next = make_id(epoch_, after);
            }
            break;
        }
        std::uint64_t last = last_seq_;
        if (max != 0 && last - after > max) last = after + max;
        out.messages.reserve(out.messages.size() + (last - after));
        std::size_t bytes = 0;
        for (std::uint64_t s = after + 1; s <= last; ++s) {
            const auto& m = history_[s - first];
            bytes += m->envelope().size();
            if (max_bytes != 0 && bytes > max_bytes && s != after + 1) {
                last = s - 1;  // the rest comes with the next poll
                break;
            }
            out.messages.push_back(m);
        }
        out.next = make_id(epoch_, last);
    }

    // Runs on the slot's lane.
    void drain(lane_slot& slot) {
        slot.pending.store(false);
        thread_local std::vector<message_ptr> batch;
        batch.clear();
        std::uint64_t first = 0;
        {
            std::lock_guard lock(mu_);
            first = first_seq();
            const std::uint64_t from = std::max(slot.delivered_seq + 1, first);
            for (std::uint64_t s = from; s <= last_seq_; ++s) batch.push_back(history_[s - first]);
            slot.delivered_seq = last_seq_;
        }
        auto& subs = slot.subs;
        for (std::size_t i = 0; i < subs.size();) {
            sub_state& st = *subs[i];
            bool keep = st.last_seq + 1 >= first;  // else its next message already left the history
            for (auto it = batch.begin(); keep && it != batch.end(); ++it) {
                if ((*it)->seq() <= st.last_seq) continue;
                if (!st.target->offer(*it)) keep = false;
                else st.last_seq = (*it)->seq();
            }
            if (keep) { ++i; continue; }
            unlink(st);  // moves the last subscriber into position i
            {
                std::lock_guard lock(mu_);
                --slot.count;
            }
            st.target->dropped();
        }
        batch.clear();
    }

    std::mutex mu_;
    const std::string name_;
    const std::string epoch_;
    const broker_options opt_;
    std::uint64_t last_seq_ = 0;
    std::deque<message_ptr> history_;
    std::vector<std::unique_ptr<lane_slot>> slots_;
};

} // namespace detail
} // namespace courier
