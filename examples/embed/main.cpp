// courier-embed: courier inside an Asio server that already exists.
//
//   courier-embed [--port N] [--address ADDR]
//
// The application owns the port, the accept loop and its routes:
//   GET  /            its page (an EventSource on /events/news)
//   GET  /health      "ok"
//   POST /api/news    its own endpoint: checks the body, then publishes
// It hands only /events/... to a courier channel with channel.accept(): the
// channel serves that connection from then on (the SSE stream, or further
// requests on a keep-alive connection under /events).
//
// Try it: courier-embed --port 8080, open http://127.0.0.1:8080/, then
//   curl -d '{"headline":"Courier ships"}' http://127.0.0.1:8080/api/news
#include "../common/example.hpp"

#include <courier/courier.hpp>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/signal_set.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>

#include <rapidjson/document.h>

#include <iostream>
#include <string>
#include <string_view>

namespace {

constexpr std::string_view usage =
    "usage: courier-embed [--port N] [--address ADDR]\n"
    "  --port N        port to listen on (0 picks a free one; default 8080)\n"
    "  --address ADDR  address to bind (default 127.0.0.1)\n";

constexpr std::string_view page = R"html(<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>courier embedded</title>
<style>body{font:15px system-ui,sans-serif;margin:2rem}li{margin:.2rem 0}</style></head>
<body><h1>News</h1><p id="state">connecting</p><ul id="news"></ul>
<script>
  // The platform's EventSource against the channel the application mounted
  // at /events; it resumes by itself with Last-Event-ID.
  const events = new EventSource("/events/news?since=earliest");
  events.onopen = () => { document.getElementById("state").textContent = "live"; };
  events.onerror = () => { document.getElementById("state").textContent = "reconnecting"; };
  events.onmessage = (e) => {
    const envelope = JSON.parse(e.data);
    const li = document.createElement("li");
    li.textContent = envelope.data.headline;
    document.getElementById("news").append(li);
  };
</script></body></html>
)html";

std::string respond(unsigned status, std::string_view type, std::string_view body) {
    std::string r = "HTTP/1.1 " + std::to_string(status) + " " + std::string(courier::http::reason_phrase(status));
    r += "\r\nContent-Type: " + std::string(type) + "\r\nContent-Length: " + std::to_string(body.size());
    r += "\r\n\r\n";
    r += body;
    return r;
}

// The application's own publish endpoint: it decides what may be published
// (here: an object with a string "headline"), then hands it to the broker.
std::string post_news(courier::broker& hub, const courier::http::request& req) {
    rapidjson::Document doc;
    doc.Parse(req.body().c_str(), req.body().size());
    if (doc.HasParseError() || !doc.IsObject() || !doc.HasMember("headline") || !doc["headline"].IsString())
        return respond(400, "application/json", courier::error_body(courier::error::bad_request,
                                                                    "expected {\"headline\": \"...\"}"));
    auto r = hub.publish("", "news", req.body());
    if (r.ec) return respond(400, "application/json", courier::error_body(courier::error::invalid_json));
    return respond(200, "application/json", std::string(R"({"id":")") + std::string(r.msg->id()) + "\"}");
}

// One connection of the application's server: read requests with any
// parser (courier's here), answer its own routes, hand /events to courier.
asio::awaitable<void> serve(asio::ip::tcp::socket sock, courier::broker& hub,
                            courier::channel<courier::sse>& events) {
    courier::http::request_parser parser;
    std::string buf;
    char chunk[4096];
    for (;;) {
        std::size_t used = 0;
        const auto status = parser.feed(buf, used);
        buf.erase(0, used);
        if (status == courier::http::request_parser::status::failed) {
            const auto e = parser.failure();
            co_await asio::async_write(sock, asio::buffer(respond(courier::http_status(e), "application/json",
                                                                  courier::error_body(e))),
                                       asio::use_awaitable);
            co_return;
        }
        if (status == courier::http::request_parser::status::head_done) {
            if (parser.expects_continue()) {  // the client waits for this before its body
                static constexpr std::string_view go_on = "HTTP/1.1 100 Continue\r\n\r\n";
                co_await asio::async_write(sock, asio::buffer(go_on), asio::use_awaitable);
            }
            continue;  // the body may be in buf already: feed before reading
        }
        if (status != courier::http::request_parser::status::done) {
            buf.append(chunk, co_await sock.async_read_some(asio::buffer(chunk), asio::use_awaitable));
            continue;
        }
        auto req = parser.release();
        parser.reset();
        const auto path = req.path();
        if (path.starts_with("/events/")) {
            // From here the channel owns the connection, with any bytes
            // already read past this request.
            events.accept(std::move(sock), std::move(req), buf);
            co_return;
        }
        std::string res;
        if (path == "/" && req.method() == courier::http::verb::get) res = respond(200, "text/html; charset=utf-8", page);
        else if (path == "/health") res = respond(200, "text/plain", "ok");
        else if (path == "/api/news" && req.method() == courier::http::verb::post) res = post_news(hub, req);
        else res = respond(404, "text/plain", "not found");
        co_await asio::async_write(sock, asio::buffer(res), asio::use_awaitable);
        if (!req.keep_alive()) co_return;
    }
}

asio::awaitable<void> accept_loop(asio::ip::tcp::acceptor& acceptor, courier::broker& hub,
                                  courier::channel<courier::sse>& events) {
    for (;;) {
        auto sock = co_await acceptor.async_accept(asio::use_awaitable);
        // A connection that fails (reset by the peer, say) ends alone.
        asio::co_spawn(acceptor.get_executor(), serve(std::move(sock), hub, events), asio::detached);
    }
}

} // namespace

int main(int argc, char** argv) {
    std::string address = "127.0.0.1";
    unsigned long port = 8080;
    const bool ok = example::command_line("courier-embed", std::string(usage))
                        .number("--port", port, 0, 65535)
                        .text("--address", address)
                        .parse(argc, argv);
    if (!ok) return 2;
    try {
        asio::io_context io(1);  // one thread: the sockets' executor is serialised, as accept() needs
        courier::broker hub;
        courier::channel<courier::sse> events{hub, "/events"};

        asio::ip::tcp::acceptor acceptor(io, {asio::ip::make_address(address), static_cast<std::uint16_t>(port)});
        asio::co_spawn(io, accept_loop(acceptor, hub, events), asio::detached);

        // On SIGINT or SIGTERM: stop accepting, end courier's streams
        // gracefully, and give them a second before the application's own
        // idle keep-alive connections are cut with the io_context.
        asio::signal_set signals(io, SIGINT, SIGTERM);
        asio::steady_timer grace(io);
        signals.async_wait([&](std::error_code, int) {
            acceptor.close();
            events.stop();
            grace.expires_after(std::chrono::seconds(1));
            grace.async_wait([&](std::error_code) { io.stop(); });
        });
        std::cout << "courier-embed listening on http://" << address << ":" << acceptor.local_endpoint().port()
                  << "/" << std::endl;
        io.run();
        std::cout << "courier-embed stopped" << std::endl;
    } catch (const std::exception& e) {
        std::cerr << "courier-embed: " << e.what() << "\n";
        return 1;
    }
}
