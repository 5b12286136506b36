// courier-ticker: simulated stock prices streamed over Server-Sent Events to
// a page that draws them live.
//
//   courier-ticker [--port N] [--address ADDR] [--interval-ms N] [--web DIR]
//
// Each symbol is a topic; a simulator publishes a price per symbol every
// interval (a random walk), straight into the broker, on a thread of its
// own. The page opens one EventSource for all symbols
// (/sse?topic=ACME&topic=...), starting from the retained history
// (?since=earliest), so it draws the last minutes at once and then moves.
// Watch one symbol by hand: curl -N http://127.0.0.1:8080/sse/ACME
#include "../common/example.hpp"

#include <courier/courier.hpp>

#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#ifndef COURIER_TICKER_DIR
#define COURIER_TICKER_DIR ""
#endif

namespace {

constexpr std::string_view usage =
    "usage: courier-ticker [--port N] [--address ADDR] [--interval-ms N] [--web DIR]\n"
    "  --port N          port to listen on (0 picks a free one; default 8080)\n"
    "  --address ADDR    address to bind (default 127.0.0.1)\n"
    "  --interval-ms N   one price per symbol every N ms (default 250)\n"
    "  --web DIR         the page's files (default: web/ of the example)\n";

struct settings {
    std::string address = "127.0.0.1";
    unsigned long port = 8080;
    unsigned long interval_ms = 250;
    std::string web;
};

struct stock {
    std::string symbol;
    double price;
    double open;
};

// A geometric random walk per symbol, published on its own io_context: the
// broker may be called from any thread.
class simulator {
public:
    simulator(courier::broker& hub, std::chrono::milliseconds interval)
        : hub_(hub), interval_(interval), timer_(io_) {
        for (auto [symbol, price] : {std::pair{"ACME", 182.50}, {"GLOBEX", 64.20}, {"INITECH", 23.75},
                                     {"UMBRELLA", 311.00}, {"HOOLI", 1048.10}, {"STARK", 512.35}})
            stocks_.push_back({symbol, price, price});
    }

    simulator(const simulator&) = delete;
    simulator& operator=(const simulator&) = delete;
    ~simulator() { stop(); }  // also when the server fails to start

    void start() {
        tick();
        thread_ = std::thread([this] { io_.run(); });
    }
    void stop() {
        io_.stop();
        if (thread_.joinable()) thread_.join();
    }

private:
    void tick() {
        for (auto& s : stocks_) {
            s.price = std::max(0.01, s.price * std::exp(step_(rng_)));
            char json[160];
            const int n = std::snprintf(json, sizeof json, R"({"symbol":"%s","price":%.2f,"open":%.2f,"t":%lld})",
                                        s.symbol.c_str(), s.price, s.open, static_cast<long long>(now_ms()));
            // The default tenant: the ticker runs without an authorizer.
            hub_.publish("", s.symbol, std::string_view(json, static_cast<std::size_t>(n)));
        }
        timer_.expires_after(interval_);
        timer_.async_wait([this](std::error_code ec) {
            if (!ec) tick();
        });
    }
    static long long now_ms() {
        using namespace std::chrono;
        return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
    }

    courier::broker& hub_;
    std::chrono::milliseconds interval_;
    asio::io_context io_;
    asio::steady_timer timer_;
    std::vector<stock> stocks_;
    std::mt19937_64 rng_{std::random_device{}()};
    std::normal_distribution<double> step_{0.0, 0.002};
    std::thread thread_;
};

} // namespace

int main(int argc, char** argv) {
    settings s;
    const bool ok = example::command_line("courier-ticker", std::string(usage))
                        .number("--port", s.port, 0, 65535)
                        .number("--interval-ms", s.interval_ms, 1, 60'000)
                        .text("--address", s.address)
                        .text("--web", s.web)
                        .parse(argc, argv);
    if (!ok) return 2;
    try {
        const auto web = s.web.empty() ? example::example_dir(COURIER_TICKER_DIR, "ticker") / "web"
                                       : std::filesystem::path(s.web);
        // Ten minutes of prices at the default interval; the page draws them on load.
        courier::broker hub{{.history = 2400}};
        courier::server srv{hub, {.address = s.address, .port = static_cast<std::uint16_t>(s.port), .threads = 1}};
        srv.mount(courier::channel<courier::sse>{"/sse", {.keepalive = std::chrono::seconds(15)}});
        srv.mount(courier::static_files{"/", web});

        simulator sim(hub, std::chrono::milliseconds(s.interval_ms));
        sim.start();
        example::serve_until_signal(srv, [&] {
            std::cout << "courier-ticker listening on http://" << s.address << ":" << srv.port() << "/" << std::endl;
        });
        sim.stop();
        std::cout << "courier-ticker stopped" << std::endl;
    } catch (const std::exception& e) {
        std::cerr << "courier-ticker: " << e.what() << "\n";
        return 1;
    }
}
