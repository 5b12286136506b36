// courier detail: slicing already-validated JSON without building a DOM, so a
// client hands the application each message's `data` exactly as the server
// sent it (numbers keep their digits). Only call it on text that
// is_valid_json() accepted.
#pragma once
#include "../config.hpp"

#include <cstddef>
#include <string_view>

namespace courier::detail::json {

inline std::size_t skip_ws(std::string_view s, std::size_t i) noexcept {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r')) ++i;
    return i;
}

/// The end of the value starting at `i` (after leading whitespace).
inline std::size_t skip_value(std::string_view s, std::size_t i) noexcept {
    i = skip_ws(s, i);
    if (i >= s.size()) return i;
    const char c = s[i];
    if (c == '"') {
        for (++i; i < s.size(); ++i) {
            if (s[i] == '\\') ++i;
            else if (s[i] == '"') return i + 1;
        }
        return s.size();
    }
    if (c == '{' || c == '[') {
        int depth = 0;
        for (; i < s.size(); ++i) {
            const char d = s[i];
            if (d == '"') {
                i = skip_value(s, i) - 1;
            } else if (d == '{' || d == '[') {
                ++depth;
            } else if (d == '}' || d == ']') {
                if (--depth == 0) return i + 1;
            }
        }
        return s.size();
    }
    while (i < s.size() && s[i] != ',' && s[i] != '}' && s[i] != ']' && s[i] != ' ' && s[i] != '\t' &&
           s[i] != '\n' && s[i] != '\r')
        ++i;
    return i;
}

/// Calls f(key, value) for each member of the object at `obj` (raw key text
/// without quotes; raw value text).
template <class F>
void for_each_member(std::string_view obj, F&& f) {
    std::size_t i = skip_ws(obj, 0);
    if (i >= obj.size() || obj[i] != '{') return;
    ++i;
    for (;;) {
        i = skip_ws(obj, i);
        if (i >= obj.size() || obj[i] != '"') return;
        const std::size_t kend = skip_value(obj, i);
        const auto key = obj.substr(i + 1, kend - i - 2);
        i = skip_ws(obj, kend);
        if (i >= obj.size() || obj[i] != ':') return;
        const std::size_t vstart = skip_ws(obj, i + 1);
        const std::size_t vend = skip_value(obj, vstart);
        f(key, obj.substr(vstart, vend - vstart));
        i = skip_ws(obj, vend);
        if (i >= obj.size() || obj[i] != ',') return;
        ++i;
    }
}

/// Calls f(element) for each element of the array `arr`.
template <class F>
void for_each_element(std::string_view arr, F&& f) {
    std::size_t i = skip_ws(arr, 0);
    if (i >= arr.size() || arr[i] != '[') return;
    i = skip_ws(arr, i + 1);
    if (i < arr.size() && arr[i] == ']') return;
    for (;;) {
        const std::size_t vstart = skip_ws(arr, i);
        const std::size_t vend = skip_value(arr, vstart);
        f(arr.substr(vstart, vend - vstart));
        i = skip_ws(arr, vend);
        if (i >= arr.size() || arr[i] != ',') return;
        ++i;
    }
}

/// The contents of a JSON string without its quotes (escapes left as they
/// are: ids and topics never contain any).
inline std::string_view string_contents(std::string_view v) noexcept {
    return v.size() >= 2 && v.front() == '"' && v.back() == '"' ? v.substr(1, v.size() - 2) : std::string_view{};
}

} // namespace courier::detail::json
