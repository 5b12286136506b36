// courier core: an immutable published message, shared by every subscriber.
#pragma once
#include "../config.hpp"
#include "names.hpp"

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace courier {

/// Wire formats that cache an encoding of a message (the envelope itself
/// needs no cache: it is how a message is stored). A transport names its
/// slot; the encoding is computed once per message, by whichever subscriber
/// needs it first, and shared by all (DESIGN.md, "Encode once").
enum class wire_format : std::uint8_t { sse, websocket, websocket_deflate, spare, count_ };

/// One published message. Thread safety: immutable after construction,
/// except for the encoding cache, which is filled at most once per format
/// with a lock-free compare-and-swap, so any thread may read it.
class message {
public:
    using clock = std::chrono::steady_clock;

    /// Builds the envelope `{"id":..,"topic":..,"data":..}` around
    /// `compact_data`, which must already be compact, valid JSON.
    message(std::string_view epoch, std::uint64_t seq, std::string_view topic,
            std::string_view compact_data, clock::time_point published = clock::now())
        : seq_(seq), published_(published) {
        envelope_.reserve(32 + epoch.size() + topic.size() + compact_data.size());
        envelope_ += R"({"id":")";
        id_off_ = static_cast<std::uint32_t>(envelope_.size());
        detail::append_id(envelope_, epoch, seq);
        id_len_ = static_cast<std::uint32_t>(envelope_.size() - id_off_);
        envelope_ += R"(","topic":")";
        topic_off_ = static_cast<std::uint32_t>(envelope_.size());
        envelope_ += topic;
        envelope_ += R"(","data":)";
        data_off_ = static_cast<std::uint32_t>(envelope_.size());
        envelope_ += compact_data;
        envelope_ += '}';
        topic_len_ = static_cast<std::uint32_t>(topic.size());
    }

    message(const message&) = delete;
    message& operator=(const message&) = delete;

    ~message() {
        for (auto& slot : cache_) delete slot.load(std::memory_order_acquire);
    }

    std::string_view envelope() const noexcept { return envelope_; }
    std::string_view id() const noexcept { return {envelope_.data() + id_off_, id_len_}; }
    std::string_view topic() const noexcept { return {envelope_.data() + topic_off_, topic_len_}; }
    std::string_view data() const noexcept {
        return {envelope_.data() + data_off_, envelope_.size() - data_off_ - 1};
    }
    std::uint64_t seq() const noexcept { return seq_; }
    clock::time_point published() const noexcept { return published_; }

    /// The encoding of this message for `format`, computed by `render(*this)`
    /// on first use and shared afterwards. If two threads race, one result wins
    /// and the other is discarded; both callers see the winner.
    template <class Render>
    const std::string& encoded(wire_format format, Render&& render) const {
        auto& slot = cache_[static_cast<std::size_t>(format)];
        if (const std::string* s = slot.load(std::memory_order_acquire)) return *s;
        auto fresh = std::make_unique<const std::string>(render(*this));
        const std::string* expected = nullptr;
        if (slot.compare_exchange_strong(expected, fresh.get(), std::memory_order_acq_rel))
            return *fresh.release();
        return *expected;
    }

private:
    std::string envelope_;
    std::uint64_t seq_;
    clock::time_point published_;
    std::uint32_t id_off_ = 0, id_len_ = 0, topic_off_ = 0, topic_len_ = 0, data_off_ = 0;
    mutable std::array<std::atomic<const std::string*>, static_cast<std::size_t>(wire_format::count_)> cache_{};
};

using message_ptr = std::shared_ptr<const message>;

} // namespace courier
