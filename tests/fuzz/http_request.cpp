// Fuzzes the HTTP/1.1 request parser: whole input, then the same bytes split
// at a point the input chooses; both must agree, and nothing may crash.
#include <courier/http/request.hpp>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

namespace {

struct outcome {
    std::vector<std::string> targets;  // one per complete request
    std::vector<std::string> bodies;
    int failure = 0;
};

outcome run(std::string_view data, std::size_t split) {
    courier::http::request_parser p({.head = 2048, .headers = 32, .body = 4096});
    outcome out;
    std::string pending;
    for (auto piece : {data.substr(0, split), data.substr(std::min(split, data.size()))}) {
        pending += piece;
        for (;;) {
            std::size_t used = 0;
            auto st = p.feed(pending, used);
            if (used > pending.size()) std::abort();
            pending.erase(0, used);
            if (st == courier::http::request_parser::status::head_done) continue;
            if (st == courier::http::request_parser::status::done) {
                out.targets.emplace_back(p.get().target());
                out.bodies.push_back(p.get().body());
                if (p.get().body().size() > 4096) std::abort();
                p.reset();
                continue;
            }
            if (st == courier::http::request_parser::status::failed) {
                out.failure = static_cast<int>(p.failure());
                return out;
            }
            break;
        }
    }
    return out;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* bytes, std::size_t size) {
    const std::string_view data(reinterpret_cast<const char*>(bytes), size);
    const auto whole = run(data, size);
    const auto split = run(data, size ? bytes[0] % size : 0);
    if (whole.targets != split.targets || whole.bodies != split.bodies || whole.failure != split.failure) std::abort();
    return 0;
}
