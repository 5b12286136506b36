// courier-hub: every transport courier has, mounted on one server.
//
//   courier-hub [--port N] [--threads N] [--history N] [--allow-origin ORIGIN]...
//               [--keepalive SECONDS] [--tokens FILE]
//
// Mounts /poll, /lp, /sse and /ws. Publish with POST on any mount:
//   curl -d '{"text":"hi"}' http://127.0.0.1:8080/poll/room
#include <courier/courier.hpp>

#include <asio/io_context.hpp>
#include <asio/signal_set.hpp>

#include <charconv>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace {

constexpr std::string_view usage =
    "usage: courier-hub [--port N] [--threads N] [--history N] [--allow-origin ORIGIN]...\n"
    "                   [--keepalive SECONDS] [--tokens FILE] [--address ADDR]\n"
    "  --port N             port to listen on (0 picks a free one and prints it; default 8080)\n"
    "  --threads N          io threads (default: one per hardware thread)\n"
    "  --history N          messages kept per topic (default 1000)\n"
    "  --allow-origin O     allow cross-origin requests from O (repeatable; * for any)\n"
    "  --keepalive SECONDS  SSE keepalive comments and WebSocket idle pings (default 15)\n"
    "  --tokens FILE        demo authorizer: each line `token tenant`; without it the hub is open\n"
    "  --address ADDR       address to bind (default 0.0.0.0)\n";

struct settings {
    std::string address = "0.0.0.0";
    unsigned long port = 8080;
    unsigned long threads = 0;
    unsigned long history = 1000;
    unsigned long keepalive = 15;
    std::vector<std::string> origins;
    std::string tokens;
};

bool parse_number(std::string_view s, unsigned long& out, unsigned long max) {
    const auto [p, e] = std::from_chars(s.data(), s.data() + s.size(), out);
    return !s.empty() && e == std::errc{} && p == s.data() + s.size() && out <= max;
}

// Returns false (after printing why) when the command line is wrong.
bool parse_args(int argc, char** argv, settings& s) {
    for (int i = 1; i < argc; ++i) {
        const std::string_view flag = argv[i];
        if (flag == "--help" || flag == "-h") {
            std::cout << usage;
            std::exit(0);
        }
        if (i + 1 >= argc) {
            std::cerr << "courier-hub: " << flag << " needs a value (or is unknown)\n" << usage;
            return false;
        }
        const std::string_view value = argv[++i];
        bool ok = true;
        if (flag == "--port") ok = parse_number(value, s.port, 65535);
        else if (flag == "--threads") ok = parse_number(value, s.threads, 1024);
        else if (flag == "--history") ok = parse_number(value, s.history, 10'000'000) && s.history > 0;
        else if (flag == "--keepalive") ok = parse_number(value, s.keepalive, 3600) && s.keepalive > 0;
        else if (flag == "--allow-origin") s.origins.emplace_back(value);
        else if (flag == "--tokens") s.tokens = value;
        else if (flag == "--address") s.address = value;
        else {
            std::cerr << "courier-hub: unknown flag " << flag << "\n" << usage;
            return false;
        }
        if (!ok) {
            std::cerr << "courier-hub: bad value for " << flag << ": " << value << "\n" << usage;
            return false;
        }
    }
    return true;
}

// The demo authorizer: a token file of `token tenant` lines. Every token may
// publish and subscribe to every topic of its tenant.
courier::authorizer load_tokens(const std::string& path) {
    std::ifstream in(path);
    if (!in) throw std::runtime_error("cannot read token file " + path);
    auto table = std::make_shared<std::unordered_map<std::string, std::string>>();
    std::string line;
    for (int n = 1; std::getline(in, line); ++n) {
        std::istringstream words(line);
        std::string token, tenant, extra;
        if (!(words >> token) || token.front() == '#') continue;
        if (!(words >> tenant) || (words >> extra))
            throw std::runtime_error(path + ":" + std::to_string(n) + ": expected `token tenant`");
        (*table)[token] = tenant;
    }
    return [table](std::string_view token, courier::action, std::string_view) -> courier::authorization {
        auto it = table->find(std::string(token));
        if (it == table->end()) return {courier::error::unauthorized, {}};
        return {{}, it->second};
    };
}

} // namespace

int main(int argc, char** argv) {
    settings s;
    if (!parse_args(argc, argv, s)) return 2;
    try {
        courier::broker hub{{.history = s.history}};
        courier::server_options opt{.address = s.address,
                                    .port = static_cast<std::uint16_t>(s.port),
                                    .threads = s.threads};
        opt.http.allow_origins = s.origins;
        if (!s.tokens.empty()) opt.http.authorize = load_tokens(s.tokens);
        courier::server srv{hub, std::move(opt)};
        srv.mount(courier::channel<courier::polling>{"/poll"});
        srv.mount(courier::channel<courier::long_polling>{"/lp"});
        srv.mount(courier::channel<courier::sse>{"/sse", {.keepalive = std::chrono::seconds(s.keepalive)}});
        srv.mount(courier::channel<courier::websocket>{"/ws", {.ping_interval = std::chrono::seconds(s.keepalive)}});

        // Signals are caught on an io_context of their own, so that SIGINT and
        // SIGTERM stop the server gracefully whatever its threads are doing.
        asio::io_context signals_io;
        asio::signal_set signals(signals_io, SIGINT, SIGTERM);
        signals.async_wait([&](std::error_code ec, int) {
            if (!ec) srv.stop();
        });
        srv.start();
        std::cout << "courier-hub listening on http://" << s.address << ":" << srv.port() << " (" << srv.threads()
                  << " threads) mounts /poll /lp /sse /ws" << std::endl;
        signals_io.run();
        srv.wait();
        std::cout << "courier-hub stopped" << std::endl;
    } catch (const std::exception& e) {
        std::cerr << "courier-hub: " << e.what() << "\n";
        return 1;
    }
}
