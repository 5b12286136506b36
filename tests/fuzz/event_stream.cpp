// Fuzzes the event-stream parser: whole input versus byte by byte must give
// the same events, ids and retry; nothing may crash.
#include <courier/event_stream/parser.hpp>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

namespace {

struct outcome {
    std::vector<std::string> events;
    std::string last_id;
    std::uint64_t retry = 0;
    bool ok = true;
};

outcome run(std::string_view data, std::size_t step) {
    courier::event_stream::parser p(4096);
    outcome out;
    for (std::size_t i = 0; i < data.size() && out.ok; i += step)
        out.ok = p.feed(data.substr(i, step), [&](const courier::event_stream::event& e) {
            out.events.push_back(std::string(e.type) + '\x1f' + std::string(e.data) + '\x1f' + std::string(e.last_event_id));
        });
    out.last_id = p.last_event_id();
    out.retry = p.retry().value_or(0);
    return out;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* bytes, std::size_t size) {
    const std::string_view data(reinterpret_cast<const char*>(bytes), size);
    const auto whole = run(data, size ? size : 1);
    const auto bytewise = run(data, 1);
    // A line over the limit fails the parse however the bytes arrive.
    if (whole.ok != bytewise.ok) std::abort();
    if (!whole.ok) return 0;
    if (whole.events != bytewise.events || whole.last_id != bytewise.last_id || whole.retry != bytewise.retry)
        std::abort();
    return 0;
}
