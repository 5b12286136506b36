// courier-loadgen: the benchmark suite's load generator. Drives any server
// that speaks courier's protocol (PROTOCOL.md), and nginx + nchan through a
// small adapter for its URL layout and resume headers (benchmarks/nchan/).
//
// S subscribers on one topic over one transport; one publisher over a
// keep-alive HTTP connection, as fast as accepted with at most `depth`
// requests in flight, or at a fixed rate. Each payload carries its sequence
// number and send time; every subscriber checks exactly-once, in-order
// delivery. Prints one JSON object with the results.
//
// It is written to cost less than the servers it measures: one thread, one
// 64 KiB read buffer per connection, payloads found by a byte scan of each
// delivered unit, no JSON parser on the hot path.
#include <asio/buffer.hpp>
#include <asio/connect.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/read.hpp>
#include <asio/steady_timer.hpp>
#include <asio/write.hpp>

#include <algorithm>
#include <array>
#include <charconv>
#include <filesystem>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <iostream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <sys/resource.h>
#include <unistd.h>
#include <vector>

namespace {

using asio::ip::tcp;
using clock_type = std::chrono::steady_clock;

std::int64_t now_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(clock_type::now().time_since_epoch()).count();
}

struct config {
    std::string server = "courier";  // courier | nchan
    std::string transport = "sse";   // sse | ws | lp | poll
    std::uint16_t port = 0;
    int server_pid = 0;
    int subscribers = 100;
    long messages = 1000;
    int depth = 10;                  // publishes in flight
    double rate = 0;                 // messages per second; 0: as fast as accepted
    int payload = 64;                // bytes of the published JSON
    int interval_ms = 100;           // interval polling
    int idle = 0;                    // memory scenario: connections to hold open
    int reconnects = 0;              // reconnect scenario: messages per connection before a resume
    int timeout_s = 60;
    std::string topic = "bench";
};

// Server CPU time of `pid` in seconds: the run time of all its threads, in
// nanoseconds, from /proc/PID/task/*/schedstat (/proc/PID/stat counts in
// 10 ms ticks, too coarse for a run of a fraction of a second).
double cpu_seconds(int pid) {
    if (pid <= 0) return 0;
    double total = 0;
    std::error_code ec;
    const std::filesystem::path tasks = "/proc/" + std::to_string(pid) + "/task";
    for (const auto& task : std::filesystem::directory_iterator(tasks, ec)) {
        std::ifstream f(task.path() / "schedstat");
        unsigned long long ns = 0;
        if (f >> ns) total += double(ns) / 1e9;
    }
    return total;
}

// This process's own CPU time: the load generator must cost less per
// message than the server it measures, and says how much it did.
double own_cpu_seconds() {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    return double(u.ru_utime.tv_sec + u.ru_stime.tv_sec) + double(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

// What every subscriber shares: counters and latencies.
struct totals {
    long long delivered = 0, lost = 0, duplicated = 0, gaps = 0, reconnects = 0;
    std::vector<std::uint32_t> reconnect_us;  // connect to last backlog message
    long long bytes = 0, requests = 0, empty_answers = 0;
    std::vector<std::uint32_t> latency_us;  // one per delivery
    std::int64_t last_delivery_ns = 0;
    int ready = 0;
};

// Finds every `{"seq":N,"t":T` in `unit` (a frame, an event, a body) and
// hands (seq, t) to `f`.
template <class F>
void scan_payloads(std::string_view unit, F&& f) {
    static constexpr std::string_view key = "{\"seq\":";
    std::size_t p = 0;
    while ((p = unit.find(key, p)) != std::string_view::npos) {
        p += key.size();
        long long seq = 0, t = 0;
        auto [q, e] = std::from_chars(unit.data() + p, unit.data() + unit.size(), seq);
        if (e != std::errc{} || unit.substr(q - unit.data(), 5) != ",\"t\":") continue;
        auto [r, e2] = std::from_chars(q + 5, unit.data() + unit.size(), t);
        if (e2 != std::errc{}) continue;
        f(seq, t);
        p = static_cast<std::size_t>(r - unit.data());
    }
}

// Finds a header's value in a response head ("" when absent).
std::string_view header_of(std::string_view head, std::string_view name) {
    std::size_t p = 0;
    while ((p = head.find("\r\n", p)) != std::string_view::npos) {
        p += 2;
        if (head.size() - p < name.size() + 1) break;
        bool match = true;
        for (std::size_t i = 0; i < name.size() && match; ++i)
            match = std::tolower(static_cast<unsigned char>(head[p + i])) == std::tolower(static_cast<unsigned char>(name[i]));
        if (!match || head[p + name.size()] != ':') continue;
        auto v = head.substr(p + name.size() + 1);
        v = v.substr(0, v.find("\r\n"));
        while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
        return v;
    }
    return {};
}

class subscriber : public std::enable_shared_from_this<subscriber> {
public:
    subscriber(asio::io_context& io, const config& cfg, totals& t, tcp::endpoint ep)
        : io_(io), cfg_(cfg), t_(t), ep_(ep), sock_(io), timer_(io), buf_(65536, '\0') {}

    void start() {
        connect_ns_ = now_ns();
        sock_.async_connect(ep_, [self = shared_from_this()](std::error_code ec) {
            if (ec) return self->fail("connect", ec);
            self->sock_.set_option(tcp::no_delay(true));
            self->send_first();
        });
    }
    long long expected() const { return next_; }
    void stop() {
        std::error_code ignored;
        sock_.close(ignored);
        timer_.cancel();
    }

private:
    bool nchan() const { return cfg_.server == "nchan"; }

    void send_first() {
        const auto& tr = cfg_.transport;
        // From the oldest retained message: on a fresh topic the same as
        // "from now", and what a resume after a drop asks for (nchan starts
        // there without an id).
        // A resume (reconnect scenario) starts after the last id received:
        // courier's ?since=, nchan's Last-Event-ID (SSE) or ?last_event_id=
        // (WebSocket, whose frames then carry ids: ws+meta.nchan).
        std::string from = nchan() ? "" : "?since=" + (last_id_.empty() ? std::string("earliest") : last_id_);
        std::string extra;
        if (nchan() && !last_id_.empty()) {
            if (tr == "sse") extra = "Last-Event-ID: " + last_id_ + "\r\n";
            else from = "?last_event_id=" + last_id_;
        }
        if (nchan() && tr == "ws" && cfg_.reconnects > 0) extra += "Sec-WebSocket-Protocol: ws+meta.nchan\r\n";
        std::string req;
        if (tr == "sse") {
            req = "GET /sse/" + cfg_.topic + from + " HTTP/1.1\r\nHost: b\r\nAccept: text/event-stream\r\n" + extra + "\r\n";
        } else if (tr == "ws") {
            req = "GET /ws/" + cfg_.topic + from +
                  " HTTP/1.1\r\nHost: b\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n" + extra + "\r\n";
        } else {
            send_poll();
            read();  // one read for the connection's life: each answer's handler reads on
            return;
        }
        write(std::move(req));
        read();
    }

    // Long polling and interval polling: one request per answer.
    void send_poll() {
        // Room for a whole batched answer, kept: a poller whose buffer grew
        // per answer faulted in fresh pages each time.
        if (in_.capacity() < poll_buffer) in_.reserve(poll_buffer);
        const bool lp = cfg_.transport == "lp";
        // nchan: /lp, whose answers batch what is buffered (multipart).
        std::string req = "GET /" + std::string(lp ? "lp/" : "poll/") + cfg_.topic;
        if (nchan()) {
            req += " HTTP/1.1\r\nHost: b\r\n";
            // nchan resumes from the answer's Last-Modified and Etag.
            if (!last_modified_.empty())
                req += "If-Modified-Since: " + last_modified_ + "\r\nIf-None-Match: " + etag_ + "\r\n";
            req += "\r\n";
        } else {
            if (!cursor_.empty()) req += "?since=" + cursor_ + (lp ? "&timeout=60" : "");
            req += " HTTP/1.1\r\nHost: b\r\n\r\n";
        }
        ++t_.requests;
        write(std::move(req));
        // A first long poll waits for the oldest message (nchan without an
        // id, courier with since=earliest on a fresh topic): it is ready,
        // and loses nothing, as soon as it is sent.
        if (lp) mark_ready();
    }

    static constexpr std::size_t poll_buffer = 256 * 1024;

    void write(std::string req) {
        auto p = std::make_shared<std::string>(std::move(req));
        asio::async_write(sock_, asio::buffer(*p), [self = shared_from_this(), p](std::error_code ec, std::size_t) {
            if (ec) self->fail("write", ec);
        });
    }

    void read() {
        sock_.async_read_some(asio::buffer(buf_), [self = shared_from_this()](std::error_code ec, std::size_t n) {
            if (ec) return self->fail("read", ec);
            self->t_.bytes += static_cast<long long>(n);
            self->in_.append(self->buf_.data(), n);
            if (!self->consume()) return;
            self->read();
        });
    }

    // Parses what arrived; false when the subscriber is done with this socket.
    bool consume() {
        if (!head_done_) {
            // Tolerate CRLFs between answers (RFC 9112 asks recipients to
            // ignore them before a message).
            std::size_t skip = 0;
            while (in_.compare(skip, 2, "\r\n") == 0) skip += 2;
            in_.erase(0, skip);
            const auto end = in_.find("\r\n\r\n");
            if (end == std::string::npos) return true;
            prev_head_ = std::move(head_);
            head_ = in_.substr(0, end + 2);
            in_.erase(0, end + 4);
            head_done_ = true;
            if (head_.size() < 12 || head_.compare(0, 5, "HTTP/") != 0) {
                std::fprintf(stderr, "loadgen: not an HTTP answer: %.40s after %s\n", head_.c_str(), prev_head_.c_str());
                std::exit(3);
            }
            const bool ok = head_.compare(9, 3, cfg_.transport == "ws" ? "101" : "200") == 0 ||
                            (head_.compare(9, 3, "304") == 0 && cfg_.transport == "poll");
            if (!ok && !(nchan() && cfg_.transport == "lp" && head_.compare(9, 3, "304") == 0)) {
                std::fprintf(stderr, "loadgen: unexpected answer: %s\n", head_.substr(0, head_.find("\r\n")).c_str());
                std::exit(3);
            }
            if (cfg_.transport == "sse" || cfg_.transport == "ws") mark_ready();
            if (cfg_.transport == "lp" || cfg_.transport == "poll") {
                const auto len = header_of(head_, "Content-Length");
                body_len_ = 0;
                std::from_chars(len.data(), len.data() + len.size(), body_len_);
                chunked_ = header_of(head_, "Transfer-Encoding").find("chunked") != std::string_view::npos;
            }
        }
        if (cfg_.transport == "sse") return consume_sse();
        if (cfg_.transport == "ws") return consume_ws();
        return consume_poll();
    }

    bool consume_sse() {
        std::size_t p = 0, end;
        while ((end = in_.find("\n\n", p)) != std::string::npos) {
            deliver_unit(std::string_view(in_).substr(p, end - p));
            p = end + 2;
        }
        in_.erase(0, p);
        return !maybe_reconnect();
    }

    bool consume_ws() {
        std::size_t p = 0;
        for (;;) {
            if (in_.size() - p < 2) break;
            std::size_t len = static_cast<unsigned char>(in_[p + 1]) & 0x7f, h = 2;
            if (len == 126) {
                if (in_.size() - p < 4) break;
                len = (std::size_t(static_cast<unsigned char>(in_[p + 2])) << 8) | static_cast<unsigned char>(in_[p + 3]);
                h = 4;
            } else if (len == 127) {
                if (in_.size() - p < 10) break;
                len = 0;
                for (int k = 0; k < 8; ++k) len = (len << 8) | static_cast<unsigned char>(in_[p + 2 + k]);
                h = 10;
            }
            if (in_.size() - p < h + len) break;
            const auto op = in_[p] & 0x0f;
            if (op == 1 || op == 2) deliver_unit(std::string_view(in_).substr(p + h, len));
            if (op == 9) {  // ping: answer with a masked pong
                std::string pong = {static_cast<char>(0x8a), static_cast<char>(0x80 | len), 0, 0, 0, 0};
                pong.append(in_, p + h, len);
                write(std::move(pong));
            }
            p += h + len;
        }
        in_.erase(0, p);
        return !maybe_reconnect();
    }

    // A chunked body (nchan sends large multipart answers so), once whole:
    // decoded into body_, its wire size in body_len_.
    bool dechunk() {
        body_.clear();
        std::size_t p = 0;
        for (;;) {
            const auto eol = in_.find("\r\n", p);
            if (eol == std::string::npos) return false;
            std::size_t size = 0;
            std::from_chars(in_.data() + p, in_.data() + eol, size, 16);
            if (size == 0) {
                if (in_.size() < eol + 4) return false;
                body_len_ = eol + 4;
                return true;
            }
            if (in_.size() < eol + 2 + size + 2) return false;
            body_.append(in_, eol + 2, size);
            p = eol + 2 + size + 2;
        }
    }

    bool consume_poll() {
        if (chunked_ ? !dechunk() : in_.size() < body_len_) return true;
        const std::string_view body = chunked_ ? std::string_view(body_) : std::string_view(in_.data(), body_len_);
        const long long before = t_.delivered;
        deliver_unit(body);
        const bool empty = t_.delivered == before;
        if (nchan()) {
            const auto lm = header_of(head_, "Last-Modified");
            const auto et = header_of(head_, "Etag");
            if (!lm.empty()) last_modified_.assign(lm);
            if (!et.empty()) etag_.assign(et);
        } else {
            // "next" follows the messages: search from the end, not through
            // every quote of a batch.
            const auto at = body.rfind("\"next\":\"");
            if (at != std::string_view::npos) {
                const auto from = at + 8;
                cursor_.assign(body.substr(from, body.find('"', from) - from));
            }
        }
        in_.erase(0, body_len_);
        head_done_ = false;
        if (maybe_reconnect()) return false;
        if (!ready_) {
            mark_ready();
        } else if (empty) {
            ++t_.empty_answers;
        }
        if (done()) return false;
        if (cfg_.transport == "poll") {
            timer_.expires_after(std::chrono::milliseconds(cfg_.interval_ms));
            timer_.async_wait([self = shared_from_this()](std::error_code ec) {
                if (!ec) self->send_poll();
            });
        } else {
            send_poll();
        }
        return true;  // keep reading: the next answer comes on this connection
    }

    void deliver_unit(std::string_view unit) {
        const auto now = now_ns();
        if (cfg_.reconnects > 0) remember_id(unit);
        scan_payloads(unit, [&](long long seq, long long t) {
            if (seq < next_) {
                ++t_.duplicated;
                return;
            }
            if (seq > next_) {
                t_.lost += seq - next_;
                ++t_.gaps;
            }
            next_ = seq + 1;
            ++t_.delivered;
            t_.latency_us.push_back(static_cast<std::uint32_t>(std::max<long long>(0, (now - t) / 1000)));
            t_.last_delivery_ns = now;
        });
    }

    void mark_ready() {
        if (ready_) return;
        ready_ = true;
        ++t_.ready;
    }
    bool done() const { return next_ >= cfg_.messages; }

    // Reconnect scenario: every message of the backlog arrived; drop the
    // connection and resume from the start again, as a client that lost its
    // connection would (the backlog is the messages it missed).
    // The id of a delivered unit: an SSE block's (or nchan's ws+meta
    // frame's) `id:` line, or a courier envelope's "id".
    void remember_id(std::string_view unit) {
        std::size_t at = std::string_view::npos;
        if (unit.starts_with("id: ")) at = 4;
        else if (const auto p = unit.find("\nid: "); p != std::string_view::npos) at = p + 5;
        if (at != std::string_view::npos) {
            last_id_.assign(unit.substr(at, unit.find('\n', at) - at));
        } else if (unit.starts_with("{\"id\":\"")) {
            last_id_.assign(unit.substr(7, unit.find('"', 7) - 7));
        }
    }

    // Reconnect scenario: after every `reconnects` messages the subscriber
    // drops its connection and resumes after the last id it received (a
    // client that lost its connection); the exactly-once check goes on
    // across every reconnect. Long polling resumes from its cursor
    // (courier's next, nchan's Last-Modified and Etag).
    bool maybe_reconnect() {
        if (cfg_.reconnects == 0 || next_ - since_connect_ < cfg_.reconnects || next_ >= cfg_.messages) return false;
        ++t_.reconnects;
        t_.reconnect_us.push_back(static_cast<std::uint32_t>((now_ns() - connect_ns_) / 1000));
        std::error_code ignored;
        sock_.close(ignored);
        sock_ = tcp::socket(io_);
        in_.clear();
        head_done_ = false;
        since_connect_ = next_;
        start();
        return true;
    }


    void fail(const char* what, std::error_code ec) {
        if (done() || stopping_) return;
        std::fprintf(stderr, "loadgen: subscriber %s: %s\n", what, ec.message().c_str());
        stopping_ = true;
    }

    asio::io_context& io_;
    const config& cfg_;
    totals& t_;
    tcp::endpoint ep_;
    tcp::socket sock_;
    asio::steady_timer timer_;
    std::string buf_, in_, head_, prev_head_;
    std::size_t body_len_ = 0;
    std::string body_;
    bool chunked_ = false;
    bool head_done_ = false, ready_ = false, stopping_ = false;
    long long next_ = 0;
    long long since_connect_ = 0;
    std::string last_id_;
    std::int64_t connect_ns_ = 0;
    std::string cursor_ = "earliest", last_modified_, etag_;
};

// The publisher: keep-alive HTTP, pipelined up to `depth`, optionally paced.
class publisher {
public:
    publisher(asio::io_context& io, const config& cfg, tcp::endpoint ep) : cfg_(cfg), sock_(io), timer_(io) {
        sock_.connect(ep);
        sock_.set_option(tcp::no_delay(true));
        path_ = cfg.server == "nchan" ? "/pub/" + cfg.topic : "/poll/" + cfg.topic;
    }
    void start() {
        start_ns_ = now_ns();
        pump();
        read();
    }
    long sent() const { return sent_; }
    long answered() const { return answered_; }
    int errors() const { return errors_; }

private:
    std::string request(long seq) const {
        std::string body = "{\"seq\":" + std::to_string(seq) + ",\"t\":" + std::to_string(now_ns()) + ",\"pad\":\"";
        const int pad = std::max(0, cfg_.payload - static_cast<int>(body.size()) - 2);
        body.append(static_cast<std::size_t>(pad), 'x').append("\"}");
        return "POST " + path_ + " HTTP/1.1\r\nHost: b\r\nContent-Type: application/json\r\nContent-Length: " +
               std::to_string(body.size()) + "\r\n\r\n" + body;
    }

    // Sends what the window (and the rate) allows, in one write.
    void pump() {
        if (writing_) return;
        long allowed = cfg_.messages;
        if (cfg_.rate > 0) {
            const double elapsed = double(now_ns() - start_ns_) / 1e9;
            allowed = std::min<long>(cfg_.messages, static_cast<long>(elapsed * cfg_.rate) + 1);
        }
        std::string batch;
        while (sent_ < allowed && sent_ - answered_ < cfg_.depth) batch += request(sent_++);
        if (batch.empty()) {
            if (cfg_.rate > 0 && sent_ < cfg_.messages && !timing_) {
                timing_ = true;
                timer_.expires_after(std::chrono::microseconds(static_cast<long>(1e6 / cfg_.rate)));
                timer_.async_wait([this](std::error_code) {
                    timing_ = false;
                    pump();
                });
            }
            return;
        }
        writing_ = true;
        auto p = std::make_shared<std::string>(std::move(batch));
        asio::async_write(sock_, asio::buffer(*p), [this, p](std::error_code ec, std::size_t) {
            writing_ = false;
            if (ec) {
                ++errors_;
                return;
            }
            pump();
        });
    }

    void read() {
        sock_.async_read_some(asio::buffer(rbuf_), [this](std::error_code ec, std::size_t n) {
            if (ec) return;
            in_.append(rbuf_.data(), n);
            std::size_t end;
            while ((end = in_.find("\r\n\r\n")) != std::string::npos) {
                const std::string_view head(in_.data(), end + 2);
                std::size_t len = 0;
                const auto v = header_of(head, "Content-Length");
                std::from_chars(v.data(), v.data() + v.size(), len);
                if (in_.size() < end + 4 + len) break;
                const auto status = head.substr(9, 3);
                if (status != "200" && status != "201" && status != "202") ++errors_;
                in_.erase(0, end + 4 + len);
                ++answered_;
            }
            pump();
            read();
        });
    }

    const config& cfg_;
    tcp::socket sock_;
    asio::steady_timer timer_;
    std::string path_, in_;
    std::array<char, 65536> rbuf_{};
    long sent_ = 0, answered_ = 0;
    int errors_ = 0;
    std::int64_t start_ns_ = 0;
    bool writing_ = false, timing_ = false;
};

std::uint32_t percentile(std::vector<std::uint32_t>& v, double q) {
    if (v.empty()) return 0;
    const auto k = static_cast<std::size_t>(q * double(v.size() - 1));
    std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
    return v[k];
}

// The reconnect scenario: publish the backlog, then every subscriber resumes
// after every `reconnects` messages from the last id it received, until it
// has them all; the cost of one reconnect with resume.
int run_reconnects(const config& cfg, const tcp::endpoint& ep) {
    asio::io_context io;
    const auto until = clock_type::now() + std::chrono::seconds(cfg.timeout_s);
    publisher pub(io, cfg, ep);
    pub.start();
    while (pub.answered() < cfg.messages && clock_type::now() < until) io.run_for(std::chrono::milliseconds(2));
    totals t;
    std::vector<std::shared_ptr<subscriber>> subs;
    const double cpu0 = cpu_seconds(cfg.server_pid);
    const auto t0 = now_ns();
    for (int i = 0; i < cfg.subscribers; ++i) {
        subs.push_back(std::make_shared<subscriber>(io, cfg, t, ep));
        subs.back()->start();
    }
    const long long want = static_cast<long long>(cfg.subscribers) * cfg.messages;
    while (t.delivered + t.lost < want && clock_type::now() < until) io.run_for(std::chrono::milliseconds(2));
    const double cpu = cpu_seconds(cfg.server_pid) - cpu0;
    const double secs = double(now_ns() - t0) / 1e9;
    for (auto& s : subs) s->stop();
    const double n = double(std::max<long long>(1, t.reconnects));
    long long missing = 0;
    for (const auto& s : subs) missing += std::max<long long>(0, cfg.messages - s->expected());
    std::printf("{\"server\":\"%s\",\"transport\":\"%s\",\"subscribers\":%d,\"backlog\":%ld,\"reconnects\":%lld,"
                "\"expected\":%lld,\"delivered\":%lld,\"lost\":%lld,\"missing\":%lld,\"duplicated\":%lld,"
                "\"seconds\":%.4f,\"reconnects_per_s\":%.0f,\"cpu_s\":%.4f,\"cpu_us_per_reconnect\":%.2f,"
                "\"p50_us\":%u,\"p99_us\":%u,\"bytes_per_reconnect\":%.0f,\"requests_per_reconnect\":%.2f}\n",
                cfg.server.c_str(), cfg.transport.c_str(), cfg.subscribers, cfg.messages, t.reconnects, want,
                t.delivered, t.lost, missing, t.duplicated, secs, n / std::max(secs, 1e-9),
                cpu, cpu * 1e6 / n, percentile(t.reconnect_us, 0.5), percentile(t.reconnect_us, 0.99),
                double(t.bytes) / n, double(t.requests) / n);
    return 0;
}

int usage() {
    std::cerr << "usage: courier-loadgen --port N --transport sse|ws|lp|poll [--server courier|nchan] [--server-pid PID]\n"
                 "       [--subscribers N] [--messages N] [--depth N] [--rate MSG_PER_S] [--payload BYTES]\n"
                 "       [--interval-ms N] [--idle N] [--reconnects N] [--timeout S] [--topic NAME]\n"
                 "  --reconnects N: publish --messages first; each subscriber then reads them, dropping its\n"
                 "  connection after every N and resuming after the last id it got (cost of a reconnect)\n";
    return 2;
}

} // namespace

int main(int argc, char** argv) {
    config cfg;
    for (int i = 1; i < argc; ++i) {
        const std::string_view flag = argv[i];
        if (i + 1 >= argc) return usage();
        const std::string value = argv[++i];
        try {
            if (flag == "--server") cfg.server = value;
            else if (flag == "--transport") cfg.transport = value;
            else if (flag == "--port") cfg.port = static_cast<std::uint16_t>(std::stoi(value));
            else if (flag == "--server-pid") cfg.server_pid = std::stoi(value);
            else if (flag == "--subscribers") cfg.subscribers = std::stoi(value);
            else if (flag == "--messages") cfg.messages = std::stol(value);
            else if (flag == "--depth") cfg.depth = std::max(1, std::stoi(value));
            else if (flag == "--rate") cfg.rate = std::stod(value);
            else if (flag == "--payload") cfg.payload = std::stoi(value);
            else if (flag == "--interval-ms") cfg.interval_ms = std::stoi(value);
            else if (flag == "--idle") cfg.idle = std::stoi(value);
            else if (flag == "--reconnects") cfg.reconnects = std::stoi(value);
            else if (flag == "--timeout") cfg.timeout_s = std::stoi(value);
            else if (flag == "--topic") cfg.topic = value;
            else return usage();
        } catch (const std::exception&) {
            return usage();
        }
    }
    if (cfg.port == 0 || (cfg.server != "courier" && cfg.server != "nchan")) return usage();
    if (cfg.transport != "sse" && cfg.transport != "ws" && cfg.transport != "lp" && cfg.transport != "poll") return usage();

    const tcp::endpoint ep(asio::ip::make_address("127.0.0.1"), cfg.port);
    if (cfg.reconnects > 0) return run_reconnects(cfg, ep);
    asio::io_context io;
    totals t;
    const int count = cfg.idle > 0 ? cfg.idle : cfg.subscribers;
    std::vector<std::shared_ptr<subscriber>> subs;
    subs.reserve(static_cast<std::size_t>(count));
    for (int i = 0; i < count; ++i) {
        subs.push_back(std::make_shared<subscriber>(io, cfg, t, ep));
        subs.back()->start();
        if (i % 200 == 199) io.poll();  // do not let connects pile up in the backlog
    }
    const auto deadline = clock_type::now() + std::chrono::seconds(cfg.timeout_s);
    while (t.ready < count && clock_type::now() < deadline) io.run_for(std::chrono::milliseconds(5));
    if (t.ready < count) {
        std::fprintf(stderr, "loadgen: only %d of %d subscribers connected\n", t.ready, count);
        return 1;
    }
    if (cfg.idle > 0) {
        // Memory scenario: hold the connections until the runner closes stdin.
        std::printf("{\"idle\":%d}\n", count);
        std::fflush(stdout);
        std::string line;
        std::getline(std::cin, line);
        return 0;
    }

    publisher pub(io, cfg, ep);
    const long long want = static_cast<long long>(cfg.messages) * cfg.subscribers;
    t.latency_us.reserve(static_cast<std::size_t>(want));  // no reallocation while measuring
    // Everything is counted from the first publish: what subscribers did
    // while the others connected is not the run's.
    const totals before = t;
    const double cpu0 = cpu_seconds(cfg.server_pid);
    const double own0 = own_cpu_seconds();
    const auto t0 = now_ns();
    double cpu_at_last = cpu0, own_at_last = own0;
    pub.start();
    const auto end_by = clock_type::now() + std::chrono::seconds(cfg.timeout_s);
    auto idle_since = clock_type::now();
    long long last_seen = -1;
    while (clock_type::now() < end_by) {
        io.run_for(std::chrono::milliseconds(2));
        // CPU is taken up to the last delivery, not to the end of the wait.
        if (t.delivered != last_seen) {
            cpu_at_last = cpu_seconds(cfg.server_pid);
            own_at_last = own_cpu_seconds();
        }
        if (t.delivered + t.lost >= want && pub.answered() >= cfg.messages) break;
        // Everything published and answered, and nothing arrives for 3 s: done.
        if (t.delivered != last_seen) {
            last_seen = t.delivered;
            idle_since = clock_type::now();
        } else if (pub.answered() >= cfg.messages && clock_type::now() - idle_since > std::chrono::seconds(3)) {
            break;
        }
    }
    const double cpu = cpu_at_last - cpu0;
    const double own = own_at_last - own0;
    t.bytes -= before.bytes;
    t.requests -= before.requests;
    t.empty_answers -= before.empty_answers;
    const auto end_ns = t.last_delivery_ns > t0 ? t.last_delivery_ns : now_ns();
    const double secs = double(end_ns - t0) / 1e9;
    long long missing = 0;
    for (const auto& s : subs) missing += std::max<long long>(0, cfg.messages - s->expected());
    for (auto& s : subs) s->stop();
    const auto p50 = percentile(t.latency_us, 0.50), p90 = percentile(t.latency_us, 0.90),
               p99 = percentile(t.latency_us, 0.99);
    const auto max = t.latency_us.empty() ? 0u : *std::max_element(t.latency_us.begin(), t.latency_us.end());
    const double delivered = double(std::max<long long>(1, t.delivered));
    std::printf(
        "{\"server\":\"%s\",\"transport\":\"%s\",\"subscribers\":%d,\"messages\":%ld,\"depth\":%d,\"rate\":%.0f,"
        "\"payload\":%d,\"interval_ms\":%d,\"delivered\":%lld,\"expected\":%lld,\"lost\":%lld,\"missing\":%lld,"
        "\"duplicated\":%lld,\"gaps\":%lld,\"publish_errors\":%d,\"seconds\":%.4f,\"msg_per_s\":%.0f,"
        "\"cpu_s\":%.4f,\"cpu_us_per_msg\":%.4f,\"p50_us\":%u,\"p90_us\":%u,\"p99_us\":%u,\"max_us\":%u,"
        "\"bytes_per_msg\":%.1f,\"requests_per_msg\":%.4f,\"empty_answers\":%lld,\"loadgen_cpu_us_per_msg\":%.4f}\n",
        cfg.server.c_str(), cfg.transport.c_str(), cfg.subscribers, cfg.messages, cfg.depth, cfg.rate, cfg.payload,
        cfg.interval_ms, t.delivered, want, t.lost, missing, t.duplicated, t.gaps, pub.errors(), secs,
        double(t.delivered) / std::max(secs, 1e-9), cpu, cpu * 1e6 / delivered, p50, p90, p99, max,
        double(t.bytes) / delivered, double(t.requests) / delivered, t.empty_answers, own * 1e6 / delivered);
    return 0;
}
