// courier: the in-memory broker, where topics and their history live.
#pragma once
#include "config.hpp"
#include "core/json.hpp"
#include "core/message.hpp"
#include "core/names.hpp"
#include "core/topic.hpp"
#include "error.hpp"

#include <asio/any_io_executor.hpp>

#include <array>
#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>

namespace courier {

/// A live subscription: while it exists, its sink receives every message
/// published to the topic after the backlog, exactly once and in order.
/// Movable, not copyable; destroying it unsubscribes. Thread safety: create,
/// use and destroy it on the lane (executor) it was subscribed on.
class subscription {
public:
    subscription() = default;
    subscription(subscription&&) noexcept = default;
    subscription& operator=(subscription&& o) noexcept {
        if (this != &o) {
            reset();
            topic_ = std::move(o.topic_);
            state_ = std::move(o.state_);
        }
        return *this;
    }
    ~subscription() { reset(); }

    /// Unsubscribes now.
    void reset() {
        if (topic_ && state_) topic_->detach(*state_);
        state_.reset();
        topic_.reset();
    }

    /// False once reset, or once the core dropped it as a slow consumer.
    bool active() const noexcept { return state_ && state_->attached; }
    std::string_view topic() const noexcept { return topic_ ? topic_->name() : std::string_view{}; }
    /// The cursor after the newest message handed to the sink.
    std::string cursor() const { return topic_ ? detail::make_id(topic_->epoch(), state_->last_seq) : std::string{}; }

private:
    friend class in_memory;
    subscription(std::shared_ptr<detail::topic> t, std::unique_ptr<detail::sub_state> s)
        : topic_(std::move(t)), state_(std::move(s)) {}
    std::shared_ptr<detail::topic> topic_;
    std::unique_ptr<detail::sub_state> state_;
};

/// The result of a publish: the stored message, or why it was refused.
struct publish_result {
    std::error_code ec;
    message_ptr msg;
};

/// The embedded broker: topics inside tenants, each with a history ring.
/// Thread safety: every member function may be called from any thread, except
/// subscribe(), which must be called on the lane passed to it.
/// Topics are sharded: publishes to different topics share no lock.
class in_memory {
public:
    using options = broker_options;

    explicit in_memory(options opt = {}) : opt_(opt) {
        if (opt_.history == 0) throw std::invalid_argument("courier: broker history must be at least 1");
        if (opt_.max_batch == 0) throw std::invalid_argument("courier: broker max_batch must be at least 1");
        std::random_device rd;
        seed_ = (std::uint64_t{rd()} << 32) ^ rd();
    }
    in_memory(const in_memory&) = delete;
    in_memory& operator=(const in_memory&) = delete;

    const options& config() const noexcept { return opt_; }
    std::size_t topic_count() const noexcept { return topics_.load(std::memory_order_relaxed); }

    /// Validates `json`, stores it compactly and hands it to every current
    /// subscriber. Errors: invalid_topic, invalid_json, too_many_topics.
    publish_result publish(std::string_view tenant, std::string_view topic, std::string_view json) {
        publish_result r;
        if (!is_valid_topic(topic)) { r.ec = error::invalid_topic; return r; }
        thread_local std::string compact;
        compact.clear();
        if ((r.ec = compact_json(json, compact))) return r;
        auto t = find_or_create(tenant, topic, r.ec);
        if (t) r.msg = t->publish(compact);
        return r;
    }

    /// Retained messages after `since` (empty: start from now), at most the
    /// configured batch in count and bytes. Errors: invalid_topic,
    /// invalid_cursor.
    std::error_code read(std::string_view tenant, std::string_view topic, std::string_view since,
                         read_result& out) {
        std::error_code ec;
        const auto c = check(topic, since, ec);
        if (ec) return ec;
        if (auto t = find(tenant, topic)) {
            t->read(c, opt_.max_batch, opt_.max_batch_bytes, out);
            return {};
        }
        // A topic nobody published to or subscribed to is not created by
        // reading it (a reader of random names must not fill the broker).
        // "earliest" is the right cursor: everything published from now on.
        // A position cursor came from an earlier life of the topic: a gap.
        out.next = "earliest";
        out.gap = c.where == cursor::kind::position;
        if (out.gap) out.gap_next = "earliest";
        return {};
    }

    /// Subscribes `target` on the lane `lane` (call this on that lane). Every
    /// retained message after `since` goes to `backlog`; later ones go to the
    /// sink. Errors as read().
    subscription subscribe(std::string_view tenant, std::string_view topic, std::string_view since,
                           sink& target, const asio::any_io_executor& lane, read_result& backlog,
                           std::error_code& ec) {
        const auto c = check(topic, since, ec);
        if (ec) return {};
        auto t = find_or_create(tenant, topic, ec);
        if (!t) return {};
        auto st = t->attach(target, lane, c, backlog);
        return subscription(std::move(t), std::move(st));
    }

private:
    static cursor check(std::string_view topic, std::string_view since, std::error_code& ec) {
        if (!is_valid_topic(topic)) { ec = error::invalid_topic; return {}; }
        return cursor::parse(since, ec);
    }

    struct string_hash {
        using is_transparent = void;
        std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
    };
    struct shard {
        std::mutex mu;
        std::unordered_map<std::string, std::shared_ptr<detail::topic>, string_hash, std::equal_to<>> topics;
    };
    static constexpr std::size_t shard_count = 32;

    // The key keeps tenants apart: "<tenant>\x1f<topic>", and '\x1f' is
    // never part of a topic name.
    static const std::string& key_of(std::string_view tenant, std::string_view name) {
        thread_local std::string key;
        key.assign(tenant).push_back('\x1f');
        key.append(name);
        return key;
    }
    shard& shard_of(const std::string& key) { return shards_[string_hash{}(key) % shard_count]; }

    std::shared_ptr<detail::topic> find(std::string_view tenant, std::string_view name) {
        const auto& key = key_of(tenant, name);
        auto& sh = shard_of(key);
        std::lock_guard lock(sh.mu);
        auto it = sh.topics.find(std::string_view(key));
        return it == sh.topics.end() ? nullptr : it->second;
    }

    std::shared_ptr<detail::topic> find_or_create(std::string_view tenant, std::string_view name,
                                                  std::error_code& ec) {
        const auto& key = key_of(tenant, name);
        auto& sh = shard_of(key);
        std::lock_guard lock(sh.mu);
        if (auto it = sh.topics.find(std::string_view(key)); it != sh.topics.end()) return it->second;
        if (topics_.fetch_add(1) >= opt_.max_topics) {
            topics_.fetch_sub(1);
            ec = error::too_many_topics;
            return nullptr;
        }
        auto t = std::make_shared<detail::topic>(std::string(name), new_epoch(), opt_);
        sh.topics.emplace(key, t);
        return t;
    }

    // An epoch per topic creation: random, so a cursor from an earlier life
    // of the process (or of the topic) never matches. Never the wall clock.
    std::string new_epoch() {
        std::uint64_t z = seed_ + 0x9e3779b97f4a7c15ULL * (++created_);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;  // splitmix64 finaliser
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        z ^= z >> 31;
        static constexpr char digits[] = "0123456789abcdefghijklmnopqrstuvwxyz";
        std::string e(8, '0');
        for (auto& c : e) { c = digits[z % 36]; z /= 36; }
        return e;
    }

    const options opt_;
    std::uint64_t seed_ = 0;
    std::atomic<std::uint64_t> created_{0};
    std::atomic<std::size_t> topics_{0};
    std::array<shard, shard_count> shards_;
};

/// The default broker.
using broker = in_memory;

} // namespace courier
