// courier: header-only real-time delivery for C++20.
// Include this header, or the parts you use.
#pragma once
#include "broker.hpp"
#include "channel.hpp"
#include "client.hpp"
#include "concepts.hpp"
#include "config.hpp"
#include "error.hpp"
#include "options.hpp"
#include "server.hpp"
#include "static_files.hpp"
#include "transport/long_poll.hpp"
#include "transport/poll.hpp"
#include "transport/sse.hpp"
#include "transport/websocket.hpp"

namespace courier {
static_assert(Transport<polling>);
static_assert(Transport<long_polling>);
static_assert(Broker<in_memory>);
static_assert(Channel<channel<polling>>);
static_assert(Channel<channel<long_polling>>);
static_assert(Transport<sse>);
static_assert(Channel<channel<sse>>);
} // namespace courier
