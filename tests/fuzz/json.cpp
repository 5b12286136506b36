// Fuzzes publish-body validation: compact_json must agree with
// is_valid_json, and compacting is idempotent.
#include <courier/core/json.hpp>

#include <cstdint>
#include <cstdlib>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* bytes, std::size_t size) {
    const std::string_view data(reinterpret_cast<const char*>(bytes), size);
    std::string once;
    const bool valid = !courier::compact_json(data, once);
    if (valid != courier::is_valid_json(data)) std::abort();
    if (!valid) return 0;
    std::string twice;
    if (courier::compact_json(once, twice) || once != twice) std::abort();
    if (once.find('\n') != std::string::npos) std::abort();
    return 0;
}
