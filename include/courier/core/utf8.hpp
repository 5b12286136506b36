// courier core: UTF-8 validation (RFC 3629), incremental so a message split
// across WebSocket fragments or stream chunks is checked as one.
#pragma once
#include "../config.hpp"

#include <cstdint>
#include <string>
#include <string_view>

namespace courier {

/// Incremental UTF-8 validator: feed bytes in any split; valid() at any
/// point says whether the bytes so far can still be (or are) valid;
/// complete() whether they end on a character boundary.
class utf8_validator {
public:
    /// Feeds bytes; returns false at the first byte that cannot be UTF-8.
    bool feed(std::string_view bytes) noexcept {
        for (unsigned char c : bytes) {
            if (need_ == 0) {
                if (c < 0x80) continue;
                if (c >= 0xc2 && c <= 0xdf) { need_ = 1; lo_ = 0x80; hi_ = 0xbf; }
                else if (c == 0xe0) { need_ = 2; lo_ = 0xa0; hi_ = 0xbf; }
                else if ((c >= 0xe1 && c <= 0xec) || c == 0xee || c == 0xef) { need_ = 2; lo_ = 0x80; hi_ = 0xbf; }
                else if (c == 0xed) { need_ = 2; lo_ = 0x80; hi_ = 0x9f; }  // no surrogates
                else if (c == 0xf0) { need_ = 3; lo_ = 0x90; hi_ = 0xbf; }
                else if (c >= 0xf1 && c <= 0xf3) { need_ = 3; lo_ = 0x80; hi_ = 0xbf; }
                else if (c == 0xf4) { need_ = 3; lo_ = 0x80; hi_ = 0x8f; }  // up to U+10FFFF
                else return ok_ = false;
            } else {
                if (c < lo_ || c > hi_) return ok_ = false;
                lo_ = 0x80;
                hi_ = 0xbf;
                --need_;
            }
        }
        return ok_;
    }
    bool valid() const noexcept { return ok_; }
    bool complete() const noexcept { return ok_ && need_ == 0; }
    void reset() noexcept { *this = utf8_validator{}; }

private:
    std::uint8_t need_ = 0;
    std::uint8_t lo_ = 0x80, hi_ = 0xbf;
    bool ok_ = true;
};

/// True when `s` is entirely valid UTF-8.
inline bool is_valid_utf8(std::string_view s) noexcept {
    utf8_validator v;
    return v.feed(s) && v.complete();
}

/// Appends `s` to `out`, replacing each maximal invalid subpart with U+FFFD,
/// as the WHATWG Encoding standard's UTF-8 decoder does.
inline void append_utf8_replacing(std::string& out, std::string_view s) {
    static constexpr std::string_view replacement = "\xef\xbf\xbd";
    std::size_t i = 0;
    while (i < s.size()) {
        const auto c = static_cast<unsigned char>(s[i]);
        if (c < 0x80) { out.push_back(static_cast<char>(c)); ++i; continue; }
        // Find how far a valid sequence extends from i.
        utf8_validator v;
        std::size_t j = i;
        while (j < s.size() && v.feed(s.substr(j, 1))) {
            ++j;
            if (v.complete()) break;
        }
        if (v.complete()) {
            out.append(s.substr(i, j - i));
            i = j;
        } else {
            out.append(replacement);
            // A maximal subpart: the bytes accepted so far, at least one.
            i = std::max(j, i + 1);
        }
    }
}

} // namespace courier
