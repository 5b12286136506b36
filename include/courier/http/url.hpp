// courier http: request-target helpers (percent-decoding, query parameters).
#pragma once
#include "../config.hpp"

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace courier::http {

namespace detail {
inline constexpr int hex_value(char c) noexcept {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}
} // namespace detail

/// Percent-decodes `in` ('+' becomes a space when `plus_is_space`).
/// Returns nullopt for a malformed escape or an encoded NUL.
inline std::optional<std::string> percent_decode(std::string_view in, bool plus_is_space = false) {
    std::string out;
    out.reserve(in.size());
    for (std::size_t i = 0; i < in.size(); ++i) {
        const char c = in[i];
        if (c == '%') {
            if (i + 2 >= in.size()) return std::nullopt;
            const int hi = detail::hex_value(in[i + 1]), lo = detail::hex_value(in[i + 2]);
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) return std::nullopt;
            out.push_back(static_cast<char>(hi * 16 + lo));
            i += 2;
        } else if (c == '+' && plus_is_space) {
            out.push_back(' ');
        } else {
            out.push_back(c);
        }
    }
    return out;
}

/// The query string of a request target, read lazily.
class query_view {
public:
    query_view() = default;
    explicit query_view(std::string_view q) noexcept : q_(q) {}

    /// The first value of `name`, decoded; nullopt when absent or malformed.
    std::optional<std::string> get(std::string_view name) const {
        std::optional<std::string> found;
        each([&](std::string_view k, std::string_view v) {
            if (k != name) return true;
            found = percent_decode(v, true);
            return false;
        });
        return found;
    }

    /// Every value of `name`, decoded (malformed ones skipped), in order.
    std::vector<std::string> all(std::string_view name) const {
        std::vector<std::string> out;
        each([&](std::string_view k, std::string_view v) {
            if (k == name)
                if (auto d = percent_decode(v, true)) out.push_back(std::move(*d));
            return true;
        });
        return out;
    }

    bool has(std::string_view name) const {
        bool found = false;
        each([&](std::string_view k, std::string_view) { return !(found = (k == name)); });
        return found;
    }

private:
    // Calls f(key, raw value) for each pair until f returns false. Keys are
    // compared raw: courier's parameter names never need escaping.
    template <class F>
    void each(F&& f) const {
        std::string_view rest = q_;
        while (!rest.empty()) {
            const auto amp = rest.find('&');
            const auto pair = rest.substr(0, amp);
            rest = amp == std::string_view::npos ? std::string_view{} : rest.substr(amp + 1);
            if (pair.empty()) continue;
            const auto eq = pair.find('=');
            const auto key = pair.substr(0, eq);
            const auto value = eq == std::string_view::npos ? std::string_view{} : pair.substr(eq + 1);
            if (!f(key, value)) return;
        }
    }
    std::string_view q_;
};

} // namespace courier::http
