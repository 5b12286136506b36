// courier ws: WebSocket framing (RFC 6455, section 5), sans I/O.
//
// frame_reader turns bytes from the peer into whole messages and control
// frames, enforcing every framing rule: masking direction, reserved bits and
// opcodes, control frame limits, fragmentation with control frames
// interleaved, UTF-8 of text messages across fragments (checked as bytes
// arrive, so a bad byte fails at once), and a message size limit checked
// from the frame headers before anything is buffered. write_header() and
// append_frame() produce frames.
#pragma once
#include "../config.hpp"
#include "../core/utf8.hpp"

#include <array>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace courier::ws {

enum class opcode : std::uint8_t { continuation = 0, text = 1, binary = 2, close = 8, ping = 9, pong = 10 };

/// Close codes (RFC 6455, 7.4.1; 1012-1014 from the IANA registry).
enum class close_code : std::uint16_t {
    normal = 1000,
    going_away = 1001,
    protocol_error = 1002,
    unsupported_data = 1003,
    no_status = 1005,         // never sent: "the close frame had no code"
    abnormal = 1006,          // never sent: "the connection dropped"
    invalid_payload = 1007,   // e.g. a text message that is not UTF-8
    policy_violation = 1008,
    message_too_big = 1009,
    internal_error = 1011,
    try_again_later = 1013,
};

/// Whether `code` may appear in a close frame (RFC 6455, 7.4).
constexpr bool is_valid_close_code(std::uint16_t code) noexcept {
    return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999);
}

/// The largest frame header: 2 bytes, 8 of extended length, 4 of mask key.
inline constexpr std::size_t max_header_size = 14;

/// Writes a frame header into `out` (at least max_header_size bytes) and
/// returns its size. `mask` (4 bytes) makes a client frame; the payload must
/// then be masked with it (see apply_mask).
inline std::size_t write_header(char* out, opcode op, std::uint64_t length, bool fin = true, bool rsv1 = false,
                                const std::uint8_t* mask = nullptr) noexcept {
    std::size_t n = 0;
    out[n++] = static_cast<char>((fin ? 0x80 : 0) | (rsv1 ? 0x40 : 0) | static_cast<std::uint8_t>(op));
    const char mask_bit = mask ? static_cast<char>(0x80) : 0;
    if (length < 126) {
        out[n++] = static_cast<char>(mask_bit | static_cast<char>(length));
    } else if (length <= 0xffff) {
        out[n++] = static_cast<char>(mask_bit | 126);
        out[n++] = static_cast<char>(length >> 8);
        out[n++] = static_cast<char>(length);
    } else {
        out[n++] = static_cast<char>(mask_bit | 127);
        for (int shift = 56; shift >= 0; shift -= 8) out[n++] = static_cast<char>(length >> shift);
    }
    if (mask) {
        std::memcpy(out + n, mask, 4);
        n += 4;
    }
    return n;
}

/// XORs `data` with the mask key, starting at byte `offset` of the key
/// cycle; returns the offset for the bytes that follow.
inline std::size_t apply_mask(char* data, std::size_t size, const std::uint8_t* key, std::size_t offset = 0) noexcept {
    std::size_t i = 0;
    // Align to the key, then eight bytes at a time.
    while (i < size && (offset & 3) != 0) data[i++] ^= static_cast<char>(key[offset++ & 3]);
    if (size - i >= 8) {
        std::uint8_t k8[8];
        for (int j = 0; j < 8; ++j) k8[j] = key[j & 3];
        std::uint64_t k;
        std::memcpy(&k, k8, 8);
        for (; size - i >= 8; i += 8) {
            std::uint64_t w;
            std::memcpy(&w, data + i, 8);
            w ^= k;
            std::memcpy(data + i, &w, 8);
        }
    }
    for (; i < size; ++i) data[i] ^= static_cast<char>(key[offset++ & 3]);
    return offset & 3;
}

/// Appends one whole frame (header and payload) to `out`; masked when `mask`
/// is given (client frames).
inline void append_frame(std::string& out, opcode op, std::string_view payload, bool rsv1 = false,
                         const std::uint8_t* mask = nullptr, bool fin = true) {
    char head[max_header_size];
    out.append(head, write_header(head, op, payload.size(), fin, rsv1, mask));
    const auto at = out.size();
    out.append(payload);
    if (mask) apply_mask(out.data() + at, payload.size(), mask);
}

/// Appends a close frame with `code` and `reason` (cut to fit 125 bytes on
/// a UTF-8 boundary).
inline void append_close(std::string& out, std::uint16_t code, std::string_view reason = {},
                         const std::uint8_t* mask = nullptr) {
    if (reason.size() > 123) {
        reason = reason.substr(0, 123);
        while (!reason.empty() && (static_cast<unsigned char>(reason.back()) & 0xc0) == 0x80) reason.remove_suffix(1);
        if (!reason.empty() && static_cast<unsigned char>(reason.back()) >= 0xc0) reason.remove_suffix(1);
    }
    std::string payload;
    payload.push_back(static_cast<char>(code >> 8));
    payload.push_back(static_cast<char>(code & 0xff));
    payload.append(reason);
    append_frame(out, opcode::close, payload, false, mask);
}

/// What a close frame's payload says.
struct close_reason {
    std::uint16_t code = static_cast<std::uint16_t>(close_code::no_status);
    std::string_view reason;
};

/// Reads frames from a peer. Feed it bytes in any split; each call returns
/// at the first complete event. Thread safety: none (one per connection).
class frame_reader {
public:
    enum class event {
        need_more,  // every byte was consumed; feed more
        message,    // a whole text or binary message: message_type(), payload()
        ping,       // control frames: control_payload()
        pong,
        close,      // close_info(); the peer sends nothing more
        failed,     // the peer broke the protocol: failure(), failure_reason()
    };

    struct options {
        /// Server side: client frames must be masked. Client side: server
        /// frames must not be.
        bool expect_masked = true;
        /// permessage-deflate was negotiated: RSV1 marks a compressed message.
        bool allow_compressed = false;
        /// Largest message (over all its fragments, as sent), else 1009.
        std::size_t max_message = 1 << 20;
    };

    frame_reader() = default;
    explicit frame_reader(options opt) : opt_(opt) {}
    void set_options(options opt) noexcept { opt_ = opt; }
    const options& config() const noexcept { return opt_; }

    /// Consumes bytes of `data` up to the next event; `used` says how many.
    event feed(std::string_view data, std::size_t& used) {
        used = 0;
        if (failed_) return event::failed;
        while (used < data.size() || (have_header_ && remaining_ == 0)) {
            if (!have_header_) {
                const std::size_t need = header_need();
                const std::size_t take = std::min(need - hdr_len_, data.size() - used);
                std::memcpy(hdr_.data() + hdr_len_, data.data() + used, take);
                hdr_len_ += take;
                used += take;
                if (hdr_len_ < header_need()) continue;  // the size may have grown with byte 2
                if (!parse_header()) return event::failed;
                continue;
            }
            const std::size_t take = static_cast<std::size_t>(std::min<std::uint64_t>(remaining_, data.size() - used));
            if (take > 0) {
                std::string& target = control_ ? control_payload_ : payload_;
                const auto at = target.size();
                target.append(data.data() + used, take);
                if (masked_) mask_offset_ = apply_mask(target.data() + at, take, mask_.data(), mask_offset_);
                used += take;
                remaining_ -= take;
                if (!control_ && check_utf8_ && !utf8_.feed(std::string_view(target).substr(at)))
                    return fail(close_code::invalid_payload, "text message is not valid UTF-8");
            }
            if (remaining_ > 0) continue;
            have_header_ = false;
            hdr_len_ = 0;
            if (control_) return finish_control();
            if (!fin_) continue;  // a continuation follows
            in_message_ = false;
            if (check_utf8_ && !utf8_.complete()) return fail(close_code::invalid_payload, "text message is not valid UTF-8");
            return event::message;
        }
        return event::need_more;
    }

    /// After event::message.
    opcode message_type() const noexcept { return message_type_; }
    /// After event::message: RSV1 was set (the payload is still deflated).
    bool compressed() const noexcept { return compressed_; }
    /// After event::message: the whole unmasked payload. Call next_message()
    /// before feeding the next bytes (it may be moved from).
    std::string& payload() noexcept { return payload_; }
    void next_message() noexcept { payload_.clear(); }

    /// After ping, pong or close.
    std::string_view control_payload() const noexcept { return control_payload_; }
    /// After event::close: the peer's code and reason (validated).
    close_reason close_info() const noexcept {
        close_reason r;
        if (control_payload_.size() >= 2) {
            r.code = static_cast<std::uint16_t>((static_cast<unsigned char>(control_payload_[0]) << 8) |
                                                static_cast<unsigned char>(control_payload_[1]));
            r.reason = std::string_view(control_payload_).substr(2);
        }
        return r;
    }

    /// After event::failed: the close code to send, and why.
    close_code failure() const noexcept { return failure_; }
    std::string_view failure_reason() const noexcept { return failure_reason_; }

    /// Bytes held for a message in progress (for memory accounting).
    std::size_t buffered() const noexcept { return payload_.capacity() + control_payload_.capacity(); }
    /// Frees the buffers when no message is in progress.
    void shrink() {
        if (!in_message_) {
            payload_.clear();
            payload_.shrink_to_fit();
        }
        if (!have_header_) {
            control_payload_.clear();
            control_payload_.shrink_to_fit();
        }
    }

private:
    std::size_t header_need() const noexcept {
        if (hdr_len_ < 2) return 2;
        const unsigned len7 = static_cast<unsigned char>(hdr_[1]) & 0x7f;
        const bool mask = (static_cast<unsigned char>(hdr_[1]) & 0x80) != 0;
        return 2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0) + (mask ? 4 : 0);
    }

    event fail(close_code code, std::string_view why) {
        failed_ = true;
        failure_ = code;
        failure_reason_ = why;
        return event::failed;
    }

    bool parse_header() {
        const auto b0 = static_cast<unsigned char>(hdr_[0]);
        const auto b1 = static_cast<unsigned char>(hdr_[1]);
        fin_ = (b0 & 0x80) != 0;
        const bool rsv1 = (b0 & 0x40) != 0;
        const auto op = static_cast<std::uint8_t>(b0 & 0x0f);
        masked_ = (b1 & 0x80) != 0;
        const unsigned len7 = b1 & 0x7f;
        std::uint64_t len = len7;
        std::size_t p = 2;
        if (len7 == 126) {
            len = (std::uint64_t{static_cast<unsigned char>(hdr_[2])} << 8) | static_cast<unsigned char>(hdr_[3]);
            p = 4;
            if (len < 126) return fail(close_code::protocol_error, "length not in its shortest form"), false;
        } else if (len7 == 127) {
            len = 0;
            for (int i = 0; i < 8; ++i) len = (len << 8) | static_cast<unsigned char>(hdr_[2 + i]);
            p = 10;
            if (len >> 63) return fail(close_code::protocol_error, "64-bit length with its top bit set"), false;
            if (len <= 0xffff) return fail(close_code::protocol_error, "length not in its shortest form"), false;
        }
        if (masked_) std::memcpy(mask_.data(), hdr_.data() + p, 4);
        mask_offset_ = 0;
        remaining_ = len;

        if (b0 & 0x30) return fail(close_code::protocol_error, "reserved bits set"), false;
        if (masked_ != opt_.expect_masked)
            return fail(close_code::protocol_error, opt_.expect_masked ? "client frames must be masked"
                                                                       : "server frames must not be masked"), false;
        control_ = (op & 0x08) != 0;
        if (control_) {
            if (op != 8 && op != 9 && op != 10) return fail(close_code::protocol_error, "reserved opcode"), false;
            if (!fin_) return fail(close_code::protocol_error, "fragmented control frame"), false;
            if (len > 125) return fail(close_code::protocol_error, "control frame over 125 bytes"), false;
            if (rsv1) return fail(close_code::protocol_error, "RSV1 on a control frame"), false;
            control_op_ = static_cast<opcode>(op);
            control_payload_.clear();
        } else {
            if (op > 2) return fail(close_code::protocol_error, "reserved opcode"), false;
            if (op == 0) {
                if (!in_message_) return fail(close_code::protocol_error, "continuation without a message"), false;
                if (rsv1) return fail(close_code::protocol_error, "RSV1 on a continuation frame"), false;
            } else {
                if (in_message_) return fail(close_code::protocol_error, "new message before the last one ended"), false;
                if (rsv1 && !opt_.allow_compressed) return fail(close_code::protocol_error, "RSV1 without permessage-deflate"), false;
                in_message_ = true;
                message_type_ = static_cast<opcode>(op);
                compressed_ = rsv1;
                payload_.clear();
                utf8_.reset();
                check_utf8_ = message_type_ == opcode::text && !compressed_;
            }
            if (len > opt_.max_message - std::min(opt_.max_message, payload_.size()))
                return fail(close_code::message_too_big, "message over the size limit"), false;
        }
        have_header_ = true;
        return true;
    }

    event finish_control() {
        switch (control_op_) {
        case opcode::ping: return event::ping;
        case opcode::pong: return event::pong;
        default: break;
        }
        if (control_payload_.size() == 1) return fail(close_code::protocol_error, "close payload of one byte");
        if (control_payload_.size() >= 2) {
            const auto info = close_info();
            if (!is_valid_close_code(info.code)) return fail(close_code::protocol_error, "invalid close code");
            if (!is_valid_utf8(info.reason)) return fail(close_code::invalid_payload, "close reason is not UTF-8");
        }
        failed_ = true;  // nothing may follow a close frame
        failure_ = close_code::protocol_error;
        failure_reason_ = "data after a close frame";
        return event::close;
    }

    options opt_;
    std::array<char, max_header_size> hdr_{};
    std::size_t hdr_len_ = 0;
    bool have_header_ = false;
    bool fin_ = false;
    bool masked_ = false;
    bool control_ = false;
    bool in_message_ = false;
    bool compressed_ = false;
    bool check_utf8_ = false;
    bool failed_ = false;
    opcode control_op_ = opcode::ping;
    opcode message_type_ = opcode::text;
    std::array<std::uint8_t, 4> mask_{};
    std::size_t mask_offset_ = 0;
    std::uint64_t remaining_ = 0;
    std::string payload_;
    std::string control_payload_;
    utf8_validator utf8_;
    close_code failure_ = close_code::protocol_error;
    std::string_view failure_reason_;
};

} // namespace courier::ws
