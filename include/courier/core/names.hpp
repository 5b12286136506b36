// courier core: topic names and resume cursors (PROTOCOL.md, "Terms").
#pragma once
#include "../config.hpp"
#include "../error.hpp"

#include <charconv>
#include <cstdint>
#include <string>
#include <string_view>

namespace courier {

inline constexpr std::size_t max_topic_length = 128;
inline constexpr std::size_t max_id_length = 64;

/// A topic name: 1 to 128 characters of A-Z a-z 0-9 . _ : -
inline constexpr bool is_valid_topic(std::string_view name) noexcept {
    if (name.empty() || name.size() > max_topic_length) return false;
    for (char c : name) {
        const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                        c == '.' || c == '_' || c == ':' || c == '-';
        if (!ok) return false;
    }
    return true;
}

/// An id or cursor: 1 to 64 characters of A-Z a-z 0-9 : _ -
inline constexpr bool is_valid_id(std::string_view id) noexcept {
    if (id.empty() || id.size() > max_id_length) return false;
    for (char c : id) {
        const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                        c == ':' || c == '_' || c == '-';
        if (!ok) return false;
    }
    return true;
}

/// Where a reader starts. Ids look like `<epoch>-<seq>`: the epoch is drawn
/// when a topic is created, so a cursor from an earlier life of the topic
/// (a restart) is recognised and reported as a gap. Clients never parse ids.
struct cursor {
    enum class kind : std::uint8_t {
        now,       // no cursor: start after the newest message
        earliest,  // everything still retained, no gap
        position,  // after a given message
    };
    kind where = kind::now;
    std::string_view epoch;
    std::uint64_t seq = 0;
    bool well_formed = true;  // valid id syntax but not one of ours: a gap

    /// Parses a since / Last-Event-ID value. Empty means now.
    /// error::invalid_cursor when the text is not an id at all.
    static cursor parse(std::string_view text, std::error_code& ec) noexcept {
        ec.clear();
        cursor c;
        if (text.empty()) return c;
        if (!is_valid_id(text)) {
            ec = error::invalid_cursor;
            return c;
        }
        if (text == "earliest") {
            c.where = kind::earliest;
            return c;
        }
        c.where = kind::position;
        const auto dash = text.rfind('-');
        if (dash == std::string_view::npos || dash == 0 || dash + 1 == text.size()) {
            c.well_formed = false;
            return c;
        }
        c.epoch = text.substr(0, dash);
        const auto digits = text.substr(dash + 1);
        const auto [p, e] = std::from_chars(digits.data(), digits.data() + digits.size(), c.seq);
        if (e != std::errc{} || p != digits.data() + digits.size()) c.well_formed = false;
        return c;
    }
};

namespace detail {

/// Appends `<epoch>-<seq>`.
inline void append_id(std::string& out, std::string_view epoch, std::uint64_t seq) {
    char digits[24];
    const auto r = std::to_chars(digits, digits + sizeof digits, seq);
    out.append(epoch);
    out.push_back('-');
    out.append(digits, r.ptr);
}

inline std::string make_id(std::string_view epoch, std::uint64_t seq) {
    std::string s;
    s.reserve(epoch.size() + 21);
    append_id(s, epoch, seq);
    return s;
}

} // namespace detail
} // namespace courier
