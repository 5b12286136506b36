// courier ws: the opening handshake (RFC 6455, section 4) and the
// permessage-deflate negotiation (RFC 7692, section 7.1), sans I/O.
#pragma once
#include "../config.hpp"
#include "../error.hpp"
#include "../http/request.hpp"

#include <array>
#include <charconv>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace courier::ws {
namespace detail {

/// SHA-1 (FIPS 180-4), only for Sec-WebSocket-Accept: no security rests on
/// it, and it spares the library a dependency on OpenSSL.
inline std::array<std::uint8_t, 20> sha1(std::string_view data) noexcept {
    std::uint32_t h[5] = {0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476, 0xc3d2e1f0};
    auto rol = [](std::uint32_t x, int n) { return (x << n) | (x >> (32 - n)); };
    auto block = [&](const unsigned char* p) {
        std::uint32_t w[80];
        for (int i = 0; i < 16; ++i)
            w[i] = (std::uint32_t{p[4 * i]} << 24) | (std::uint32_t{p[4 * i + 1]} << 16) |
                   (std::uint32_t{p[4 * i + 2]} << 8) | p[4 * i + 3];
        for (int i = 16; i < 80; ++i) w[i] = rol(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
        std::uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
        for (int i = 0; i < 80; ++i) {
            std::uint32_t f, k;
            if (i < 20) { f = (b & c) | (~b & d); k = 0x5a827999; }
            else if (i < 40) { f = b ^ c ^ d; k = 0x6ed9eba1; }
            else if (i < 60) { f = (b & c) | (b & d) | (c & d); k = 0x8f1bbcdc; }
            else { f = b ^ c ^ d; k = 0xca62c1d6; }
            const std::uint32_t t = rol(a, 5) + f + e + k + w[i];
            e = d; d = c; c = rol(b, 30); b = a; a = t;
        }
        h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e;
    };
    const auto* bytes = reinterpret_cast<const unsigned char*>(data.data());
    std::size_t i = 0;
    for (; data.size() - i >= 64; i += 64) block(bytes + i);
    unsigned char tail[128] = {};
    const std::size_t rest = data.size() - i;
    std::memcpy(tail, bytes + i, rest);
    tail[rest] = 0x80;
    const std::size_t tail_size = rest < 56 ? 64 : 128;
    const std::uint64_t bits = std::uint64_t{data.size()} * 8;
    for (int j = 0; j < 8; ++j) tail[tail_size - 1 - j] = static_cast<unsigned char>(bits >> (8 * j));
    block(tail);
    if (tail_size == 128) block(tail + 64);
    std::array<std::uint8_t, 20> out{};
    for (int j = 0; j < 5; ++j)
        for (int k = 0; k < 4; ++k) out[4 * j + k] = static_cast<std::uint8_t>(h[j] >> (24 - 8 * k));
    return out;
}

inline constexpr char base64_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

inline std::string base64(const std::uint8_t* data, std::size_t size) {
    std::string out;
    out.reserve((size + 2) / 3 * 4);
    for (std::size_t i = 0; i < size; i += 3) {
        const std::uint32_t n = (std::uint32_t{data[i]} << 16) | (i + 1 < size ? std::uint32_t{data[i + 1]} << 8 : 0) |
                                (i + 2 < size ? data[i + 2] : 0);
        out.push_back(base64_alphabet[(n >> 18) & 63]);
        out.push_back(base64_alphabet[(n >> 12) & 63]);
        out.push_back(i + 1 < size ? base64_alphabet[(n >> 6) & 63] : '=');
        out.push_back(i + 2 < size ? base64_alphabet[n & 63] : '=');
    }
    return out;
}

/// How many bytes `text` decodes to, or nullopt when it is not canonical
/// base64 (RFC 4648, padded).
inline std::optional<std::size_t> base64_size(std::string_view text) noexcept {
    if (text.empty() || text.size() % 4 != 0) return std::nullopt;
    std::size_t pad = 0;
    for (std::size_t i = 0; i < text.size(); ++i) {
        const char c = text[i];
        if (c == '=') {
            if (i < text.size() - 2) return std::nullopt;
            ++pad;
        } else if (pad > 0 || !std::memchr(base64_alphabet, c, 64) || c == '\0') {
            return std::nullopt;
        }
    }
    return text.size() / 4 * 3 - pad;
}

inline std::string_view trim(std::string_view s) noexcept {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

/// Splits `list` at `sep` (outside quoted strings) and calls f(item) on
/// each trimmed item.
template <class F>
void split_list(std::string_view list, char sep, F&& f) {
    bool quoted = false;
    std::size_t start = 0;
    for (std::size_t i = 0; i <= list.size(); ++i) {
        if (i < list.size() && list[i] == '"') quoted = !quoted;
        if (i == list.size() || (list[i] == sep && !quoted)) {
            f(trim(list.substr(start, i - start)));
            start = i + 1;
        }
    }
}

} // namespace detail

/// The Sec-WebSocket-Accept value for a Sec-WebSocket-Key (RFC 6455, 4.2.2).
inline std::string accept_key(std::string_view key) {
    std::string s(detail::trim(key));
    s += "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    const auto digest = detail::sha1(s);
    return detail::base64(digest.data(), digest.size());
}

/// The permessage-deflate parameters both sides agreed on.
struct deflate_params {
    bool enabled = false;
    /// The server compresses each message on its own (always: that is what
    /// lets one compressed frame serve every subscriber).
    bool server_no_context_takeover = true;
    bool client_no_context_takeover = false;
    /// The peer's window for our messages, when it set one (echoed, as
    /// RFC 7692, 7.1.2.1 requires): a message longer than 2^bits is sent
    /// uncompressed, since a message compressed on its own never refers
    /// further back than its own length.
    std::optional<int> server_max_window_bits;
    /// The value we sent back, if the client asked for one.
    std::optional<int> client_max_window_bits;

    /// The Sec-WebSocket-Extensions response value.
    std::string response() const {
        std::string s = "permessage-deflate; server_no_context_takeover";
        if (client_no_context_takeover) s += "; client_no_context_takeover";
        if (server_max_window_bits) s += "; server_max_window_bits=" + std::to_string(*server_max_window_bits);
        if (client_max_window_bits) s += "; client_max_window_bits=" + std::to_string(*client_max_window_bits);
        return s;
    }
};

/// Picks the first permessage-deflate offer in Sec-WebSocket-Extensions
/// whose parameters are valid (RFC 7692, 7.1); offers with unknown,
/// repeated or out-of-range parameters are declined.
inline deflate_params negotiate_deflate(std::string_view header) {
    deflate_params chosen;
    detail::split_list(header, ',', [&](std::string_view offer) {
        if (chosen.enabled) return;
        deflate_params p;
        bool first = true, ok = true, seen_snct = false, seen_cnct = false, seen_smwb = false, seen_cmwb = false;
        detail::split_list(offer, ';', [&](std::string_view item) {
            if (first) {
                first = false;
                ok = item == "permessage-deflate";
                return;
            }
            const auto eq = item.find('=');
            const auto name = detail::trim(item.substr(0, eq));
            std::optional<int> value;
            if (eq != std::string_view::npos) {
                auto v = detail::trim(item.substr(eq + 1));
                if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
                int n = 0;
                const auto [ptr, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
                if (ec != std::errc{} || ptr != v.data() + v.size() || n < 8 || n > 15) { ok = false; return; }
                value = n;
            }
            auto once = [&](bool& seen) { ok = ok && !seen; seen = true; };
            if (name == "server_no_context_takeover" && !value) once(seen_snct);
            else if (name == "client_no_context_takeover" && !value) { once(seen_cnct); p.client_no_context_takeover = true; }
            else if (name == "server_max_window_bits" && value) { once(seen_smwb); p.server_max_window_bits = *value; }
            else if (name == "client_max_window_bits") { once(seen_cmwb); p.client_max_window_bits = value; }
            else ok = false;
        });
        if (ok && !first) {
            p.enabled = true;
            chosen = p;
        }
    });
    return chosen;
}

/// What the server needs from a valid upgrade request.
struct upgrade_request {
    std::string accept;       // Sec-WebSocket-Accept
    std::string subprotocol;  // chosen from the client's list, or empty
    deflate_params deflate;
};

/// Checks an upgrade request (RFC 6455, 4.2.1). Errors: upgrade_required
/// (no `Upgrade: websocket`, or a version other than 13: answer 426 with
/// `Sec-WebSocket-Version: 13`), bad_request (no `Connection: upgrade`, a
/// key that is not 16 bytes of base64, HTTP/1.0, or a body).
/// `subprotocols` is the server's list, in order of preference.
inline std::error_code check_upgrade(const http::request& req, const std::vector<std::string>& subprotocols,
                                     bool allow_deflate, upgrade_request& out) {
    if (!http::has_token(req.header("Upgrade"), "websocket")) return error::upgrade_required;
    if (req.header("Sec-WebSocket-Version") != "13") return error::upgrade_required;
    if (req.version_minor() < 1 || !http::has_token(req.header("Connection"), "upgrade")) return error::bad_request;
    if (req.has_length() && !req.body().empty()) return error::bad_request;
    const auto key = detail::trim(req.header("Sec-WebSocket-Key"));
    if (detail::base64_size(key) != std::size_t{16}) return error::bad_request;
    out.accept = accept_key(key);
    out.subprotocol.clear();
    const auto offered = req.header("Sec-WebSocket-Protocol");
    for (const auto& mine : subprotocols) {
        bool found = false;
        detail::split_list(offered, ',', [&](std::string_view p) { found = found || p == mine; });
        if (found) {
            out.subprotocol = mine;
            break;
        }
    }
    out.deflate = allow_deflate ? negotiate_deflate(req.header("Sec-WebSocket-Extensions")) : deflate_params{};
    return {};
}

} // namespace courier::ws
