// What the example servers share: reading numbers from the command line and
// serving until SIGINT or SIGTERM. Not part of the library.
#pragma once
#include <courier/server.hpp>

#include <asio/io_context.hpp>
#include <asio/signal_set.hpp>

#include <charconv>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <iostream>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace example {

/// A command line of `--flag value` pairs, each flag bound to a variable.
/// parse() prints the usage and exits for --help; on a bad flag or value it
/// says why and returns false.
class command_line {
public:
    command_line(std::string program, std::string usage) : program_(std::move(program)), usage_(std::move(usage)) {}

    /// A whole decimal number in [min, max].
    command_line& number(std::string flag, unsigned long& out, unsigned long min, unsigned long max) {
        flags_[std::move(flag)] = [&out, min, max](std::string_view v) {
            unsigned long n = 0;
            const auto [p, e] = std::from_chars(v.data(), v.data() + v.size(), n);
            if (v.empty() || e != std::errc{} || p != v.data() + v.size() || n < min || n > max) return false;
            out = n;
            return true;
        };
        return *this;
    }
    command_line& text(std::string flag, std::string& out) {
        flags_[std::move(flag)] = [&out](std::string_view v) { out = v; return true; };
        return *this;
    }
    /// A flag that may be repeated; each value is appended.
    command_line& list(std::string flag, std::vector<std::string>& out) {
        flags_[std::move(flag)] = [&out](std::string_view v) { out.emplace_back(v); return true; };
        return *this;
    }

    bool parse(int argc, char** argv) const {
        for (int i = 1; i < argc; ++i) {
            const std::string_view flag = argv[i];
            if (flag == "--help" || flag == "-h") {
                std::cout << usage_;
                std::exit(0);
            }
            const auto it = flags_.find(flag);
            if (it == flags_.end()) return complain("unknown flag " + std::string(flag));
            if (i + 1 >= argc) return complain(std::string(flag) + " needs a value");
            const std::string_view value = argv[++i];
            if (!it->second(value)) return complain("bad value for " + std::string(flag) + ": " + std::string(value));
        }
        return true;
    }

private:
    bool complain(const std::string& why) const {
        std::cerr << program_ << ": " << why << "\n" << usage_;
        return false;
    }

    std::string program_, usage_;
    std::map<std::string, std::function<bool(std::string_view)>, std::less<>> flags_;
};

/// Starts `srv`, calls `started` (to print where it listens), then serves
/// until SIGINT or SIGTERM stops it gracefully. Signals are caught on an
/// io_context of their own, whatever the server's threads are doing.
template <class Server, class Started>
void serve_until_signal(Server& srv, Started started) {
    asio::io_context signals_io;
    asio::signal_set signals(signals_io, SIGINT, SIGTERM);
    signals.async_wait([&](std::error_code ec, int) {
        if (!ec) srv.stop();
    });
    srv.start();
    started();
    signals_io.run();
    srv.wait();
}

/// Where an example finds its own files (pages, tokens): its source
/// directory, compiled in, while that exists; else `fallback`, relative to
/// the working directory (for a binary copied elsewhere).
inline std::filesystem::path example_dir(const char* source_dir, std::string_view fallback) {
    std::error_code ec;
    if (std::filesystem::is_directory(source_dir, ec)) return source_dir;
    return std::filesystem::path(fallback);
}

} // namespace example
