// courier ws: permessage-deflate bodies (RFC 7692, section 7.2), on zlib.
//
// Optional: defined when COURIER_WITH_ZLIB is (courier's CMake target sets
// it, and links zlib, when zlib is found). Without it the server declines
// every permessage-deflate offer and the clients make none.
//
// Encode once, compressed: the server always negotiates
// server_no_context_takeover, so each message is compressed on its own, once,
// and that one frame is shared by every subscriber that negotiated
// permessage-deflate (message cache slot wire_format::websocket_deflate).
// With context takeover each connection would need its own compressor (about
// 256 KiB with zlib's defaults) and its own compressed copy of every message.
#pragma once
#include "../config.hpp"

#include <algorithm>
#include <new>
#include <string>
#include <string_view>

#if defined(COURIER_WITH_ZLIB)
#include <zlib.h>
#endif

namespace courier::ws {

#if defined(COURIER_WITH_ZLIB)

inline constexpr bool deflate_supported = true;

/// Compresses whole messages, each on its own.
class deflater {
public:
    deflater() {
        if (deflateInit2(&z_, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK)
            throw std::bad_alloc();
    }
    ~deflater() { deflateEnd(&z_); }
    deflater(const deflater&) = delete;
    deflater& operator=(const deflater&) = delete;

    /// Appends the compressed form of `in` to `out`: a raw deflate stream
    /// ended by a sync flush, without its final 00 00 ff ff (RFC 7692, 7.2.1).
    void compress(std::string_view in, std::string& out) {
        deflateReset(&z_);
        z_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
        z_.avail_in = static_cast<uInt>(in.size());
        const auto start = out.size();
        std::size_t room = deflateBound(&z_, static_cast<uLong>(in.size())) + 16;
        for (;;) {
            const auto at = out.size();
            out.resize(at + room);
            z_.next_out = reinterpret_cast<Bytef*>(out.data() + at);
            z_.avail_out = static_cast<uInt>(room);
            deflate(&z_, Z_SYNC_FLUSH);
            out.resize(at + (room - z_.avail_out));
            if (z_.avail_out != 0) break;
            room *= 2;
        }
        if (out.size() - start >= 4 && out.compare(out.size() - 4, 4, std::string_view("\0\0\xff\xff", 4)) == 0)
            out.resize(out.size() - 4);
    }

private:
    z_stream z_{};
};

/// Decompresses the messages of one peer; keeps the peer's window between
/// messages unless it negotiated no context takeover. Allocates zlib's state
/// (about 44 KiB) only when the first compressed message arrives.
class inflater {
public:
    explicit inflater(bool reset_each_message = false) : reset_each_(reset_each_message) {}
    ~inflater() { release(); }
    inflater(const inflater&) = delete;
    inflater& operator=(const inflater&) = delete;

    /// Appends the decompressed message to `out`. False when the data is
    /// not a valid deflate stream, or would decompress to more than `limit`
    /// bytes (a small frame can inflate a thousandfold).
    bool inflate(std::string_view in, std::string& out, std::size_t limit, bool& too_big) {
        too_big = false;
        if (!init_) {
            if (inflateInit2(&z_, -15) != Z_OK) return false;
            init_ = true;
        } else if (reset_each_) {
            inflateReset(&z_);
        }
        static constexpr unsigned char tail[4] = {0, 0, 0xff, 0xff};
        const std::string_view parts[2] = {in, std::string_view(reinterpret_cast<const char*>(tail), 4)};
        const auto start = out.size();
        bool ended = false;
        for (const auto part : parts) {
            if (ended) break;
            z_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(part.data()));
            z_.avail_in = static_cast<uInt>(part.size());
            do {
                const std::size_t produced = out.size() - start;
                if (produced > limit) {
                    too_big = true;
                    return false;
                }
                const std::size_t room = std::min<std::size_t>(limit - produced + 1, std::max<std::size_t>(4096, part.size() * 4));
                const auto at = out.size();
                out.resize(at + room);
                z_.next_out = reinterpret_cast<Bytef*>(out.data() + at);
                z_.avail_out = static_cast<uInt>(room);
                const int rc = ::inflate(&z_, Z_SYNC_FLUSH);
                out.resize(at + (room - z_.avail_out));
                if (rc == Z_STREAM_END) {
                    // A final block (RFC 7692, 7.2.3 allows one) ends this
                    // message's stream, tail included; the next message
                    // starts a fresh one.
                    inflateReset(&z_);
                    ended = true;
                    break;
                }
                if (rc == Z_BUF_ERROR) break;  // all input used, all output given
                if (rc != Z_OK) return false;
            } while (z_.avail_in > 0 || z_.avail_out == 0);
        }
        if (out.size() - start > limit) {
            too_big = true;
            return false;
        }
        return true;
    }

    /// Frees zlib's state (it is rebuilt on the next compressed message;
    /// only valid between messages when the window is not kept).
    void release() {
        if (init_) inflateEnd(&z_);
        init_ = false;
    }

private:
    z_stream z_{};
    bool init_ = false;
    bool reset_each_;
};

#else

inline constexpr bool deflate_supported = false;

#endif

} // namespace courier::ws
