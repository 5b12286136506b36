// Fuzzes the WebSocket frame reader, the UTF-8 validator, the op parser and
// the inflater. The first byte picks the reader's options and a split point;
// the frames are read whole and in pieces, and both must agree; whatever
// comes out as a text message must be valid UTF-8; nothing may crash.
#include <courier/ws/ops.hpp>
#include <courier/ws/deflate.hpp>
#include <courier/ws/frame.hpp>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

namespace {

using courier::ws::frame_reader;

std::vector<std::string> run(std::string_view data, std::size_t step, const frame_reader::options& opt) {
    frame_reader r(opt);
    std::vector<std::string> out;
    for (std::size_t i = 0; i < data.size(); i += step) {
        auto piece = data.substr(i, step);
        while (!piece.empty()) {
            std::size_t used = 0;
            const auto ev = r.feed(piece, used);
            piece.remove_prefix(used);
            if (ev == frame_reader::event::need_more) break;
            std::string e(1, static_cast<char>('0' + static_cast<int>(ev)));
            if (ev == frame_reader::event::message) {
                if (r.message_type() == courier::ws::opcode::text && !r.compressed() && !courier::is_valid_utf8(r.payload()))
                    std::abort();  // the reader let invalid UTF-8 through
                e += r.payload();
                // Ops arrive as text messages: parsing one must never crash.
                courier::detail::ws_op op;
                (void)courier::detail::parse_ws_op(r.payload(), op);
#if defined(COURIER_WITH_ZLIB)
                if (r.compressed()) {
                    courier::ws::inflater z;
                    std::string plain;
                    bool too_big = false;
                    (void)z.inflate(r.payload(), plain, 1 << 16, too_big);
                    if (plain.size() > (1 << 16) + 1) std::abort();  // the limit held
                }
#endif
                r.next_message();
            } else if (ev == frame_reader::event::failed) {
                e += std::to_string(static_cast<int>(r.failure()));
                out.push_back(std::move(e));
                return out;
            } else {
                e += r.control_payload();
            }
            out.push_back(std::move(e));
            if (ev == frame_reader::event::close) return out;
        }
    }
    return out;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* bytes, std::size_t size) {
    if (size == 0) return 0;
    const auto ctl = bytes[0];
    const std::string_view data(reinterpret_cast<const char*>(bytes + 1), size - 1);
    const frame_reader::options opt{.expect_masked = (ctl & 1) != 0, .allow_compressed = (ctl & 2) != 0,
                                    .max_message = (ctl & 4) ? 64u : 1u << 20};
    const std::size_t step = 1 + (ctl >> 3);
    const auto whole = run(data, data.size() ? data.size() : 1, opt);
    const auto pieces = run(data, step, opt);
    if (whole != pieces) std::abort();
    // The incremental validator agrees with itself whole and byte by byte.
    courier::utf8_validator a, b;
    a.feed(data);
    for (char c : data) b.feed(std::string_view(&c, 1));
    if (a.complete() != b.complete() || a.valid() != b.valid()) std::abort();
    return 0;
}
