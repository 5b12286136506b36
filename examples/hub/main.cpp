// courier-hub: every transport courier has, mounted on one server.
//
//   courier-hub [--port N] [--threads N] [--history N] [--allow-origin ORIGIN]...
//               [--keepalive SECONDS] [--tokens FILE] [--web DIR] [--metrics PATH] [--log LEVEL]
//
// Mounts /poll, /lp, /sse and /ws, /courier.js, and at / one page per
// platform API (fetch polling, fetch long polling, EventSource, WebSocket)
// plus one that uses courier.js. Publish with POST on any mount:
//   curl -d '{"text":"hi"}' http://127.0.0.1:8080/poll/room
#include "../common/example.hpp"

#include <courier/courier.hpp>

#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#ifndef COURIER_HUB_DIR
#define COURIER_HUB_DIR ""
#endif

namespace {

constexpr std::string_view usage =
    "usage: courier-hub [--port N] [--threads N] [--history N] [--allow-origin ORIGIN]...\n"
    "                   [--keepalive SECONDS] [--tokens FILE] [--address ADDR] [--web DIR]\n"
    "                   [--metrics PATH] [--log LEVEL]\n"
    "  --port N             port to listen on (0 picks a free one and prints it; default 8080)\n"
    "  --threads N          io threads (default: one per hardware thread)\n"
    "  --history N          messages kept per topic (default 1000)\n"
    "  --allow-origin O     allow cross-origin requests from O (repeatable; * for any)\n"
    "  --keepalive SECONDS  SSE keepalive comments and WebSocket idle pings (default 15)\n"
    "  --tokens FILE        demo authorizer: each line `token tenant`; without it the hub is open\n"
    "  --address ADDR       address to bind (default 0.0.0.0)\n"
    "  --web DIR            pages served at / (default: web/ of the example)\n"
    "  --metrics PATH       Prometheus text of the server's counters at PATH (e.g. /metrics)\n"
    "  --log LEVEL          log to stderr from LEVEL on: debug, info, warning, error (default: warning)\n"
    "  --tls-cert FILE      serve https and wss with this PEM certificate chain...\n"
    "  --tls-key FILE       ...and this PEM private key\n";

struct settings {
    std::string address = "0.0.0.0";
    unsigned long port = 8080;
    unsigned long threads = 0;
    unsigned long history = 1000;
    unsigned long keepalive = 15;
    std::vector<std::string> origins;
    std::string tokens;
    std::string web;
    std::string metrics;
    std::string log = "warning";
    std::string tls_cert, tls_key;
};

std::optional<courier::log_level> parse_level(std::string_view name) {
    for (auto l : {courier::log_level::debug, courier::log_level::info, courier::log_level::warning,
                   courier::log_level::error})
        if (courier::to_string(l) == name) return l;
    return std::nullopt;
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
    const bool ok = example::command_line("courier-hub", std::string(usage))
                        .number("--port", s.port, 0, 65535)
                        .number("--threads", s.threads, 0, 1024)
                        .number("--history", s.history, 1, 10'000'000)
                        .number("--keepalive", s.keepalive, 1, 3600)
                        .list("--allow-origin", s.origins)
                        .text("--tokens", s.tokens)
                        .text("--address", s.address)
                        .text("--web", s.web)
                        .text("--metrics", s.metrics)
                        .text("--log", s.log)
                        .text("--tls-cert", s.tls_cert)
                        .text("--tls-key", s.tls_key)
                        .parse(argc, argv);
    if (!ok) return 2;
    const auto level = parse_level(s.log);
    if (!level) {
        std::cerr << "courier-hub: bad value for --log: " << s.log << "\n" << usage;
        return 2;
    }
    try {
        courier::broker hub{{.history = s.history}};
        courier::server_options opt{.address = s.address,
                                    .port = static_cast<std::uint16_t>(s.port),
                                    .threads = s.threads};
        opt.http.allow_origins = s.origins;
        if (!s.tokens.empty()) opt.http.authorize = load_tokens(s.tokens);
        if (s.tls_cert.empty() != s.tls_key.empty()) throw std::runtime_error("--tls-cert and --tls-key go together");
#if COURIER_WITH_TLS
        std::optional<courier::tls_context> tls;
        if (!s.tls_cert.empty()) {
            tls.emplace(courier::tls_context::tls_server);
            tls->use_certificate_chain_file(s.tls_cert);
            tls->use_private_key_file(s.tls_key, courier::tls_context::pem);
            opt.tls = &*tls;
        }
#else
        if (!s.tls_cert.empty()) throw std::runtime_error("built without TLS (OpenSSL was not found)");
#endif
        opt.http.min_log_level = *level;
        opt.http.log = [](courier::log_level l, std::string_view message) {
            // One write per line, so that lines from several threads do not interleave.
            std::string line = "courier-hub: ";
            line.append(courier::to_string(l)).append(": ").append(message).push_back('\n');
            std::cerr << line << std::flush;
        };
        courier::server srv{hub, std::move(opt)};
        srv.mount(courier::channel<courier::polling>{"/poll"});
        srv.mount(courier::channel<courier::long_polling>{"/lp"});
        srv.mount(courier::channel<courier::sse>{"/sse", {.keepalive = std::chrono::seconds(s.keepalive)}});
        srv.mount(courier::channel<courier::websocket>{"/ws", {.ping_interval = std::chrono::seconds(s.keepalive)}});

        // The pages of examples/hub/web (one per platform API) and courier.js.
        const auto web = s.web.empty() ? example::example_dir(COURIER_HUB_DIR, "hub") / "web"
                                       : std::filesystem::path(s.web);
        if (!s.web.empty() || std::filesystem::is_directory(web)) srv.mount(courier::static_files{"/", web});
        srv.mount(courier::static_files::courier_js());
        if (!s.metrics.empty()) srv.mount(courier::metrics_endpoint{s.metrics});

        example::serve_until_signal(srv, [&] {
            std::cout << "courier-hub listening on " << (s.tls_cert.empty() ? "http" : "https") << "://" << s.address << ":" << srv.port() << " ("
                      << srv.threads() << " threads) mounts /poll /lp /sse /ws" << std::endl;
        });
        std::cout << "courier-hub stopped" << std::endl;
    } catch (const std::exception& e) {
        std::cerr << "courier-hub: " << e.what() << "\n";
        return 1;
    }
}
