// courier http: a parsed HTTP/1.1 request and the strict, incremental parser
// that produces it (RFC 9112). Sans-I/O: feed it bytes, it never reads.
#pragma once
#include "../config.hpp"
#include "../error.hpp"
#include "url.hpp"

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace courier::http {

enum class verb : std::uint8_t { get, head, post, put, delete_, options, patch, other };

/// Case-insensitive ASCII comparison, for header names and tokens.
inline constexpr bool iequals(std::string_view a, std::string_view b) noexcept {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        char x = a[i], y = b[i];
        if (x >= 'A' && x <= 'Z') x = static_cast<char>(x + 32);
        if (y >= 'A' && y <= 'Z') y = static_cast<char>(y + 32);
        if (x != y) return false;
    }
    return true;
}

/// True when the comma-separated header value `list` contains `token`.
inline constexpr bool has_token(std::string_view list, std::string_view token) noexcept {
    while (!list.empty()) {
        const auto comma = list.find(',');
        auto item = list.substr(0, comma);
        while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) item.remove_prefix(1);
        while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) item.remove_suffix(1);
        if (iequals(item, token)) return true;
        if (comma == std::string_view::npos) break;
        list.remove_prefix(comma + 1);
    }
    return false;
}

struct header_field {
    std::string_view name;
    std::string_view value;
};

/// A complete request. Views point into storage the request owns; they stay
/// valid while the request lives (moving it keeps them valid too, since the
/// storage is a heap buffer that moves with it).
class request {
public:
    request() = default;
    request(request&&) noexcept = default;
    request& operator=(request&&) noexcept = default;

    verb method() const noexcept { return verb_; }
    std::string_view method_text() const noexcept { return method_; }
    std::string_view target() const noexcept { return target_; }
    std::string_view path() const noexcept { return target_.substr(0, target_.find('?')); }
    query_view query() const noexcept {
        const auto q = target_.find('?');
        return query_view(q == std::string_view::npos ? std::string_view{} : target_.substr(q + 1));
    }
    int version_minor() const noexcept { return minor_; }
    const std::vector<header_field>& headers() const noexcept { return headers_; }
    const std::string& body() const noexcept { return body_; }
    std::string& body() noexcept { return body_; }
    /// Whether the connection stays open after the answer.
    bool keep_alive() const noexcept { return keep_alive_; }
    /// Whether the request declared a body length (Content-Length or chunked).
    bool has_length() const noexcept { return has_length_; }

    /// The first value of header `name` (case-insensitive), or empty.
    std::string_view header(std::string_view name) const noexcept {
        for (const auto& h : headers_)
            if (iequals(h.name, name)) return h.value;
        return {};
    }
    bool has_header(std::string_view name) const noexcept {
        for (const auto& h : headers_)
            if (iequals(h.name, name)) return true;
        return false;
    }

    /// Builds a request by hand (tests, clients, an application whose own
    /// parser already read the request and hands it to a channel).
    static request make(verb v, std::string_view method, std::string_view target,
                        const std::vector<std::pair<std::string, std::string>>& fields = {},
                        std::string body = {}) {
        request r;
        std::size_t need = method.size() + target.size();
        for (const auto& [n, val] : fields) need += n.size() + val.size();
        // One heap allocation (never the small-string buffer, which a move
        // would copy): the views below stay valid when the request moves.
        r.storage_.reserve(std::max<std::size_t>(need, 64));
        r.storage_.append(method).append(target);
        for (const auto& [n, val] : fields) r.storage_.append(n).append(val);
        const char* p = r.storage_.data();
        r.verb_ = v;
        r.method_ = {p, method.size()};
        p += method.size();
        r.target_ = {p, target.size()};
        p += target.size();
        for (const auto& [n, val] : fields) {
            r.headers_.push_back({{p, n.size()}, {p + n.size(), val.size()}});
            p += n.size() + val.size();
        }
        r.body_ = std::move(body);
        r.has_length_ = !r.body_.empty() || v == verb::post;
        return r;
    }

private:
    friend class request_parser;
    std::string storage_;  // the raw head; never appended to after parsing
    verb verb_ = verb::other;
    std::string_view method_, target_;
    std::vector<header_field> headers_;
    std::string body_;
    int minor_ = 1;
    bool keep_alive_ = true;
    bool has_length_ = false;
};

/// A GET or HEAD without an Upgrade: what polling, long polling and SSE take.
inline bool is_plain_get(const request& req) noexcept {
    return (req.method() == verb::get || req.method() == verb::head) && !req.has_header("Upgrade");
}

/// Parser limits (PROTOCOL.md, "Limits").
struct parser_limits {
    std::size_t head = 16 * 1024;      // request line + headers: 431 beyond
    std::size_t headers = 100;         // header count: 431 beyond
    std::size_t body = 1024 * 1024;    // body, after de-chunking: 413 beyond
};

/// Incremental HTTP/1.1 request parser. Feed it bytes as they arrive; it
/// consumes what belongs to the current request and leaves the rest (a
/// pipelined next request) to the caller. After done or failed, call reset()
/// for the next request.
class request_parser {
public:
    enum class status : std::uint8_t { need_more, head_done, done, failed };

    explicit request_parser(parser_limits limits = {}) : lim_(limits) {}

    /// Parses from `data`. Sets `consumed` to the bytes used. Returns
    /// head_done once when the head is complete and a body follows (so the
    /// caller may send "100 Continue"), then need_more / done / failed.
    status feed(std::string_view data, std::size_t& consumed) {
        consumed = 0;
        while (consumed < data.size() || state_ == state::body_done) {
            const auto before = state_;
            status s = step(data, consumed);
            if (s != status::need_more) return s;
            if (state_ == before && consumed >= data.size()) break;
        }
        return status::need_more;
    }

    /// True once any byte of a request has arrived (idle vs slow sender).
    bool started() const noexcept { return state_ != state::start || !req_.storage_.empty(); }
    /// The error after status::failed.
    error failure() const noexcept { return err_; }
    /// True when the client asked for "100 Continue" before sending its body.
    bool expects_continue() const noexcept { return expect_continue_; }

    /// The request after status::done.
    request& get() noexcept { return req_; }
    request release() noexcept { return std::move(req_); }

    void reset() {
        req_ = request{};
        state_ = state::start;
        scanned_ = 0;
        remaining_ = 0;
        chunk_line_.clear();
        expect_continue_ = false;
        trailer_bytes_ = 0;
    }

private:
    enum class state : std::uint8_t {
        start, head, body_length, chunk_size, chunk_data, chunk_data_crlf, trailers, body_done, done, failed
    };

    status fail(error e) {
        err_ = e;
        state_ = state::failed;
        return status::failed;
    }

    static constexpr bool is_tchar(char c) noexcept {
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
        switch (c) {
        case '!': case '#': case '$': case '%': case '&': case '\'': case '*': case '+':
        case '-': case '.': case '^': case '_': case '`': case '|': case '~': return true;
        default: return false;
        }
    }
    static constexpr bool is_field_char(unsigned char c) noexcept { return c == '\t' || c >= 0x20 ? c != 0x7f : false; }
    static constexpr bool is_target_char(unsigned char c) noexcept { return c > 0x20 && c != 0x7f; }

    status step(std::string_view data, std::size_t& pos) {
        switch (state_) {
        case state::start:
            // RFC 9112 2.2: ignore empty lines before the request line.
            while (pos < data.size() && (data[pos] == '\r' || data[pos] == '\n')) ++pos;
            if (pos < data.size()) state_ = state::head;
            return status::need_more;
        case state::head:
            return read_head(data, pos);
        case state::body_length: {
            const auto n = std::min<std::size_t>(remaining_, data.size() - pos);
            req_.body_.append(data.data() + pos, n);
            pos += n;
            remaining_ -= n;
            if (remaining_ == 0) state_ = state::body_done;
            return status::need_more;
        }
        case state::chunk_size:
            return read_chunk_size(data, pos);
        case state::chunk_data: {
            const auto n = std::min<std::size_t>(remaining_, data.size() - pos);
            req_.body_.append(data.data() + pos, n);
            pos += n;
            remaining_ -= n;
            if (remaining_ == 0) state_ = state::chunk_data_crlf;
            return status::need_more;
        }
        case state::chunk_data_crlf:
            return read_line_into(data, pos, [this](std::string_view line) {
                if (!line.empty()) return fail(error::bad_request);
                state_ = state::chunk_size;
                return status::need_more;
            });
        case state::trailers:
            return read_line_into(data, pos, [this](std::string_view line) {
                trailer_bytes_ += line.size() + 2;
                if (trailer_bytes_ > lim_.head) return fail(error::header_too_large);
                if (line.empty()) state_ = state::body_done;
                return status::need_more;
            });
        case state::body_done:
            state_ = state::done;
            return status::done;
        case state::done:
            return status::done;
        case state::failed:
            return status::failed;
        }
        return status::failed;
    }

    // Reads a CRLF-terminated line (bounded) and hands it to `f`.
    template <class F>
    status read_line_into(std::string_view data, std::size_t& pos, F&& f) {
        while (pos < data.size()) {
            const char c = data[pos++];
            chunk_line_.push_back(c);
            if (chunk_line_.size() > 1024) return fail(error::bad_request);
            if (c == '\n') {
                if (chunk_line_.size() < 2 || chunk_line_[chunk_line_.size() - 2] != '\r')
                    return fail(error::bad_request);
                std::string line = std::move(chunk_line_);
                chunk_line_.clear();
                line.resize(line.size() - 2);
                return f(std::string_view(line));
            }
        }
        return status::need_more;
    }

    status read_chunk_size(std::string_view data, std::size_t& pos) {
        return read_line_into(data, pos, [this](std::string_view line) {
            const auto semi = line.find(';');  // chunk extensions are ignored
            auto hex = line.substr(0, semi);
            while (!hex.empty() && (hex.back() == ' ' || hex.back() == '\t')) hex.remove_suffix(1);
            std::uint64_t size = 0;
            const auto [p, e] = std::from_chars(hex.data(), hex.data() + hex.size(), size, 16);
            if (hex.empty() || e != std::errc{} || p != hex.data() + hex.size()) {
                return e == std::errc::result_out_of_range ? fail(error::payload_too_large) : fail(error::bad_request);
            }
            if (size > lim_.body - req_.body_.size()) return fail(error::payload_too_large);
            if (size == 0) {
                state_ = state::trailers;
            } else {
                remaining_ = size;
                req_.body_.reserve(req_.body_.size() + size);
                state_ = state::chunk_data;
            }
            return status::need_more;
        });
    }

    status read_head(std::string_view data, std::size_t& pos) {
        auto& buf = req_.storage_;
        const std::size_t room = lim_.head - std::min(lim_.head, buf.size());
        const std::size_t take = std::min(room, data.size() - pos);
        const std::size_t old = buf.size();
        buf.append(data.data() + pos, take);
        // Binary junk (a TLS hello, say) fails at its first byte instead of
        // waiting for a blank line that may never come.
        if (old == 0 && take > 0 && !is_tchar(buf[0])) return fail(error::bad_request);
        const std::size_t from = scanned_ > 3 ? scanned_ - 3 : 0;
        const auto end = buf.find("\r\n\r\n", from);
        if (end == std::string::npos) {
            pos += take;
            scanned_ = buf.size();
            if (buf.size() >= lim_.head) return fail(error::header_too_large);
            return status::need_more;
        }
        // Give back what follows the head: it is body or the next request.
        pos += end + 4 - old;
        buf.resize(end + 4);
        if (auto s = parse_head(std::string_view(buf).substr(0, end + 2)); s != status::need_more) return s;
        return status::need_more;
    }

    // `head` is the request line and header lines, each ending in CRLF.
    status parse_head(std::string_view head) {
        const auto eol = head.find("\r\n");
        if (auto s = parse_request_line(head.substr(0, eol)); s == status::failed) return s;
        head.remove_prefix(eol + 2);

        std::string_view content_length, transfer_encoding, connection;
        bool seen_host = false;
        while (!head.empty()) {
            const auto e = head.find("\r\n");
            const auto line = head.substr(0, e);
            head.remove_prefix(e + 2);
            if (line.empty() || line.front() == ' ' || line.front() == '\t') return fail(error::bad_request);  // obs-fold
            const auto colon = line.find(':');
            if (colon == std::string_view::npos || colon == 0) return fail(error::bad_request);
            const auto name = line.substr(0, colon);
            for (char c : name)
                if (!is_tchar(c)) return fail(error::bad_request);
            auto value = line.substr(colon + 1);
            for (char c : value)
                if (!is_field_char(static_cast<unsigned char>(c))) return fail(error::bad_request);
            while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
            while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
            if (req_.headers_.size() >= lim_.headers) return fail(error::header_too_large);
            req_.headers_.push_back({name, value});

            if (iequals(name, "content-length")) {
                if (value.empty() || (!content_length.empty() && content_length != value))
                    return fail(error::bad_request);
                content_length = value;
            } else if (iequals(name, "transfer-encoding")) {
                if (!transfer_encoding.empty()) return fail(error::not_implemented);
                transfer_encoding = value;
            } else if (iequals(name, "host")) {
                if (seen_host) return fail(error::bad_request);
                seen_host = true;
            } else if (iequals(name, "connection")) {
                connection = value;
            } else if (iequals(name, "expect")) {
                expect_continue_ = iequals(value, "100-continue");
            }
        }
        if (req_.minor_ == 1 && !seen_host) return fail(error::bad_request);
        req_.keep_alive_ = req_.minor_ == 1 ? !has_token(connection, "close") : has_token(connection, "keep-alive");

        if (!transfer_encoding.empty()) {
            // Both framings at once is how requests are smuggled: refuse.
            if (!content_length.empty() || req_.minor_ == 0) return fail(error::bad_request);
            if (!iequals(transfer_encoding, "chunked")) return fail(error::not_implemented);
            req_.has_length_ = true;
            state_ = state::chunk_size;
            return expect_continue_ ? status::head_done : status::need_more;
        }
        if (!content_length.empty()) {
            std::uint64_t n = 0;
            const auto [p, e] = std::from_chars(content_length.data(), content_length.data() + content_length.size(), n);
            if (e == std::errc::result_out_of_range) return fail(error::payload_too_large);
            if (e != std::errc{} || p != content_length.data() + content_length.size()) return fail(error::bad_request);
            if (n > lim_.body) return fail(error::payload_too_large);
            req_.has_length_ = true;
            remaining_ = n;
            if (n == 0) {
                state_ = state::body_done;
                return status::need_more;
            }
            req_.body_.reserve(n);
            state_ = state::body_length;
            return expect_continue_ ? status::head_done : status::need_more;
        }
        expect_continue_ = false;
        state_ = state::body_done;
        return status::need_more;
    }

    status parse_request_line(std::string_view line) {
        const auto sp1 = line.find(' ');
        if (sp1 == std::string_view::npos || sp1 == 0) return fail(error::bad_request);
        const auto method = line.substr(0, sp1);
        for (char c : method)
            if (!is_tchar(c)) return fail(error::bad_request);
        const auto rest = line.substr(sp1 + 1);
        const auto sp2 = rest.find(' ');
        if (sp2 == std::string_view::npos || sp2 == 0) return fail(error::bad_request);
        const auto target = rest.substr(0, sp2);
        const auto version = rest.substr(sp2 + 1);
        for (char c : target)
            if (!is_target_char(static_cast<unsigned char>(c))) return fail(error::bad_request);
        if (target.front() != '/' && !(target == "*" && method == "OPTIONS")) return fail(error::bad_request);
        if (version.size() != 8 || version.substr(0, 5) != "HTTP/" || version[6] != '.' ||
            version[5] < '0' || version[5] > '9' || version[7] < '0' || version[7] > '9')
            return fail(error::bad_request);
        if (version[5] != '1' || version[7] > '1') return fail(error::version_not_supported);
        req_.minor_ = version[7] - '0';
        req_.method_ = method;
        req_.target_ = target;
        req_.verb_ = method == "GET"       ? verb::get
                     : method == "POST"    ? verb::post
                     : method == "HEAD"    ? verb::head
                     : method == "OPTIONS" ? verb::options
                     : method == "PUT"     ? verb::put
                     : method == "DELETE"  ? verb::delete_
                     : method == "PATCH"   ? verb::patch
                                           : verb::other;
        return status::need_more;
    }

    parser_limits lim_;
    request req_;
    state state_ = state::start;
    error err_ = error::bad_request;
    std::size_t scanned_ = 0;
    std::uint64_t remaining_ = 0;
    std::string chunk_line_;
    std::size_t trailer_bytes_ = 0;
    bool expect_continue_ = false;
};

} // namespace courier::http
