// Limits under load: 1,000 connections (SSE and WebSocket) of which a tenth
// stop reading. The readers get every message, the stalled ones are cut
// as slow consumers, and the server's heap stays bounded.
#include <catch2/catch.hpp>
#include <courier/courier.hpp>

#include "integration/support.hpp"

#include <asio/read.hpp>

#include <malloc.h>
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <thread>

using namespace courier;
using namespace courier::test;
using namespace std::chrono_literals;

namespace {

// Bytes the allocator has handed out and not had back (glibc). Sanitizers
// bring their own allocator, where this reads nothing useful.
std::size_t heap_in_use() { return mallinfo2().uordblks; }

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool heap_measurable = false;
#else
constexpr bool heap_measurable = true;
#endif

// Enough descriptors for 2,000 sockets; false when the hard limit is lower.
bool raise_descriptor_limit(rlim_t want) {
    rlimit r{};
    if (::getrlimit(RLIMIT_NOFILE, &r) != 0) return false;
    if (r.rlim_cur >= want) return true;
    if (r.rlim_max < want) return false;
    r.rlim_cur = want;
    return ::setrlimit(RLIMIT_NOFILE, &r) == 0;
}

// A subscriber that reads everything, counts messages by their one '~'
// (a byte cannot be split between two reads) and keeps the stream's tail.
struct reader {
    explicit reader(asio::io_context& io) : sock(io) { tail.reserve(2048); }
    asio::ip::tcp::socket sock;
    std::array<char, 64 * 1024> buf{};
    std::atomic<int> messages{0};
    std::string tail;

    void read() {
        sock.async_read_some(asio::buffer(buf), [this](std::error_code ec, std::size_t n) {
            if (ec) return;
            const std::string_view got(buf.data(), n);
            messages.fetch_add(static_cast<int>(std::count(got.begin(), got.end(), '~')), std::memory_order_relaxed);
            // The last 1 KiB read, in a buffer that never grows past 2 KiB.
            if (got.size() >= 1024) tail.assign(got.substr(got.size() - 1024));
            else tail.append(got);
            if (tail.size() > 1024) tail.erase(0, tail.size() - 1024);
            read();
        });
    }
};

std::string ws_upgrade(std::string_view target) {
    return "GET " + std::string(target) +
           " HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
}

} // namespace

TEST_CASE("1,000 connections, a tenth stop reading: the others get everything, the stalled are cut, memory stays bounded",
          "[limits][slow]") {
    constexpr int connections = 1000, messages = 1500, history = 200;
    if (!raise_descriptor_limit(2 * connections + 64)) {
        WARN("skipped: the descriptor limit is below " << 2 * connections + 64);
        return;
    }
    broker hub({.history = history});
    http_options http;
    http.max_connections = 2 * connections;
    http.send_buffer_bytes = 64 * 1024;  // bounds the kernel's part too (see http_options)
    server srv{hub, {.address = "127.0.0.1", .port = 0, .threads = 2, .http = std::move(http)}};
    srv.mount(channel<sse>{"/sse", {.queue_bytes = 256 * 1024}});
    srv.mount(channel<websocket>{"/ws", {.queue_bytes = 256 * 1024}});
    srv.start();
    const asio::ip::tcp::endpoint at(asio::ip::make_address("127.0.0.1"), srv.port());

    asio::io_context io(1);
    std::vector<std::unique_ptr<reader>> readers;
    std::vector<std::unique_ptr<raw_socket>> stalled;
    for (int i = 0; i < connections; ++i) {
        const bool websocket = i % 2 == 1;
        const std::string request = websocket ? ws_upgrade("/ws/load") : get("/sse/load");
        if (i % 10 == 0) {  // a tenth: a small window, and never a read
            stalled.push_back(std::make_unique<raw_socket>(srv.port(), 1s, 4096));
            stalled.back()->send(request);
            continue;
        }
        auto r = std::make_unique<reader>(io);
        r->sock.connect(at);
        asio::write(r->sock, asio::buffer(request));
        r->read();
        readers.push_back(std::move(r));
    }
    std::thread reading([&] { io.run(); });
    auto subscribers = [&] {
        return srv.metrics().read(metrics::per_transport::subscribers, metrics::slot<sse>()) +
               srv.metrics().read(metrics::per_transport::subscribers, metrics::slot<websocket>());
    };
    REQUIRE(eventually([&] { return subscribers() == connections; }, 30s));
    std::this_thread::sleep_for(100ms);
    const auto heap_before = heap_in_use();
    std::size_t heap_peak = heap_before;

    // 1,500 messages of about 1 KB: 1.5 MB per subscriber, more than the
    // stalled ones' buffers (64 KiB sent, 4 KiB received, 256 KiB queued)
    // can hold. Published as fast as the slowest reader keeps up.
    const std::string pad(1000, 'x');  // and one '~' per message
    auto slowest = [&] {
        int m = messages;
        for (const auto& r : readers) m = std::min(m, r->messages.load(std::memory_order_relaxed));
        return m;
    };
    for (int n = 0; n < messages; ++n) {
        hub.publish("", "load", R"({"n":)" + std::to_string(n) + R"(,"pad":")" + pad + "~\"}");
        if (n % 50 == 49) {  // at most 150 messages (160 KB) ahead of the slowest reader
            eventually([&] { return slowest() >= n + 1 - 100; }, 20s);
            heap_peak = std::max(heap_peak, heap_in_use());
        }
    }
    const std::string last = R"({"n":)" + std::to_string(messages - 1) + ",";
    const bool all_read = eventually([&] { return slowest() == messages; }, 30s);
    std::this_thread::sleep_for(200ms);
    heap_peak = std::max(heap_peak, heap_in_use());

    const auto slow = srv.metrics().read(metrics::per_transport::slow_consumer_disconnects, metrics::slot<sse>()) +
                      srv.metrics().read(metrics::per_transport::slow_consumer_disconnects, metrics::slot<websocket>());
    io.stop();
    reading.join();
    CHECK(all_read);
    int complete = 0;
    for (const auto& r : readers) complete += r->tail.find(last) != std::string::npos;
    CHECK(complete == connections - connections / 10);
    CHECK(slow == connections / 10);
    CHECK(srv.connections() == std::size_t(connections - connections / 10));
    // Each stalled socket got far less than was published before it was cut.
    std::size_t most = 0;
    for (auto& s : stalled) {
        std::size_t got = 0;
        for (auto more = s->read_some(); !more.empty(); more = s->read_some()) got += more.size();
        most = std::max(most, got);
    }
    CHECK(most < std::size_t(messages) * pad.size() / 2);

    const double grew_mb = (double(heap_peak) - double(heap_before)) / 1e6;
    std::printf("1,000 connections, 100 stalled: heap %.1f MB before publishing, peak +%.1f MB; %llu slow consumers cut; "
                "the stalled received at most %zu KB\n",
                double(heap_before) / 1e6, grew_mb, static_cast<unsigned long long>(slow), most / 1024);
    if (heap_measurable) {
        // The history (200 messages, each in three wire forms) and the
        // queues' references are all that may grow: a copy per subscriber
        // (1.5 MB each) would be hundreds of megabytes.
        CHECK(grew_mb < 32.0);
    }
    srv.stop();
    srv.wait();
}
