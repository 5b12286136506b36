// courier: the concepts a transport, a broker, a sink and a channel satisfy.
// They document what a new transport or broker must provide; each policy
// header static_asserts its concept and the tests assert the negatives.
#pragma once
#include "config.hpp"
#include "core/message.hpp"
#include "core/topic.hpp"
#include "http/request.hpp"

#include <asio/any_io_executor.hpp>

#include <concepts>
#include <string>
#include <string_view>
#include <system_error>

namespace courier {

class subscription;
struct publish_result;

/// A delivery strategy: a name, which requests it takes, how it renders one
/// message (once, shared by every subscriber), and option defaults. Its
/// `serve(ctx, options)` coroutine answers a request on its mount.
template <class T>
concept Transport = requires(const http::request& req, const message& m) {
    { T::name } -> std::convertible_to<std::string_view>;
    { T::accepts(req) } -> std::same_as<bool>;
    { T::render(m) } -> std::convertible_to<std::string>;
    typename T::options;
};

/// Where the core hands messages for one subscriber (see courier::sink).
template <class S>
concept Sink = std::derived_from<S, sink> && requires(S& s, const message_ptr& m) {
    { s.offer(m) } -> std::same_as<bool>;
    s.dropped();
};

/// Where messages live: publish, read from a cursor, subscribe from a cursor.
template <class B>
concept Broker = requires(B& b, std::string_view sv, read_result& out, sink& s,
                          const asio::any_io_executor& lane, std::error_code& ec) {
    { b.publish(sv, sv, sv) } -> std::same_as<publish_result>;
    { b.read(sv, sv, sv, out) } -> std::same_as<std::error_code>;
    { b.subscribe(sv, sv, sv, s, lane, out, ec) } -> std::same_as<subscription>;
};

/// Something a server can mount: a prefix and a transport over a broker.
template <class C>
concept Channel = requires(const C& c) {
    { c.prefix() } -> std::convertible_to<std::string_view>;
    typename C::transport;
    typename C::broker_type;
} && Transport<typename C::transport> && Broker<typename C::broker_type>;

} // namespace courier
