// courier: options shared by every HTTP endpoint, and the authorizer.
#pragma once
#include "config.hpp"
#include "error.hpp"
#include "http/request.hpp"
#include "metrics.hpp"

#include <chrono>
#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace courier {

/// What a request wants to do with a topic.
enum class action : std::uint8_t { publish, subscribe };

/// An authorizer's verdict: the tenant the token belongs to, or an error
/// (error::unauthorized for an unknown token, error::forbidden when the
/// tenant may not perform `action` on the topic).
struct authorization {
    std::error_code ec;
    std::string tenant;
};

/// Maps (token, action, topic) to a tenant or an error (PROTOCOL.md,
/// "Tenancy"). Called on an io thread for every publish and subscribe, so it
/// must be quick and thread-safe. The token is never empty: a request
/// without one gets 401 before the authorizer is asked. The topic is empty
/// when a WebSocket connects to a bare mount (topics come later, in ops):
/// then only an unauthorized verdict counts (401 at the handshake).
using authorizer = std::function<authorization(std::string_view token, action, std::string_view topic)>;

/// Options of an HTTP endpoint: a server, or a channel that adopts
/// connections from the application's own server.
struct http_options {
    /// Origins allowed cross-origin (CORS) and on WebSocket handshakes, as
    /// "scheme://host[:port]"; "*" allows any. Empty: no cross-origin access.
    std::vector<std::string> allow_origins;
    /// Empty: the endpoint is open and everything lives in one tenant.
    authorizer authorize;
    http::parser_limits limits;
    /// A request head and body must arrive within this time, else 408.
    std::chrono::milliseconds request_timeout{10'000};
    /// A keep-alive connection with no request for this long is closed.
    std::chrono::milliseconds idle_timeout{60'000};
    /// Connections beyond this are answered 503 and closed.
    std::size_t max_connections = 10'000;
    /// The kernel's send buffer per connection (SO_SNDBUF); 0 keeps the
    /// system's default, which on Linux grows to 4 MiB for a peer that stops
    /// reading. With many slow clients that kernel memory dominates: a
    /// smaller buffer bounds it, and a stalled peer then reaches the send
    /// queue's limit (and is disconnected) sooner.
    std::size_t send_buffer_bytes = 0;
    /// The application's logger (see courier::logger); empty: courier logs nothing.
    logger log;
    /// The lowest level passed to `log`.
    log_level min_log_level = log_level::info;
};

} // namespace courier
