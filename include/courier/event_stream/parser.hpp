// courier event_stream: the event-stream parser of the WHATWG HTML standard,
// "Server-sent events", section "Parsing an event stream". Sans-I/O: feed it
// the bytes of a response body in any split.
#pragma once
#include "../config.hpp"
#include "../core/utf8.hpp"

#include <charconv>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace courier::event_stream {

/// One dispatched event. Views are valid during the callback only.
struct event {
    std::string_view type;           // "message" unless the stream said otherwise
    std::string_view data;           // data lines joined with LF, no trailing LF
    std::string_view last_event_id;  // the last event ID after this event
};

/// Thread safety: none; one parser per stream.
class parser {
public:
    /// Lines longer than this (without their end) make feed() fail: a bound on
    /// memory for a hostile or broken server.
    static constexpr std::size_t default_max_line = 1 << 20;

    /// An event's data is bounded too: four lines' worth.
    explicit parser(std::size_t max_line = default_max_line) : max_line_(max_line), max_event_(4 * max_line) {}

    /// Parses `bytes`, calling on_event(const event&) for each dispatched
    /// event. Returns false when a line, or an event's data, is over the
    /// limit (then the stream should be dropped).
    template <class OnEvent>
    bool feed(std::string_view bytes, OnEvent&& on_event) {
        for (std::size_t i = 0; i < bytes.size(); ++i) {
            if (data_.size() > max_event_) return false;  // data lines with no end of event
            const char c = bytes[i];
            if (after_cr_) {
                after_cr_ = false;
                if (c == '\n') continue;  // CRLF: the CR ended the line
            }
            if (c == '\r' || c == '\n') {
                after_cr_ = c == '\r';
                line_done(on_event);
                continue;
            }
            // Take the run of ordinary bytes at once.
            std::size_t j = i;
            while (j < bytes.size() && bytes[j] != '\r' && bytes[j] != '\n') ++j;
            line_.append(bytes.substr(i, j - i));
            if (line_.size() > max_line_) return false;
            i = j - 1;
        }
        return true;
    }

    /// The reconnection time the stream asked for, in milliseconds.
    std::optional<std::uint64_t> retry() const noexcept { return retry_; }
    /// The last event ID string, sent back as Last-Event-ID on reconnection.
    const std::string& last_event_id() const noexcept { return last_id_; }

    /// A new connection: pending fields are discarded (an event not ended by
    /// a blank line is never dispatched) and a leading BOM is skipped again.
    /// The last event ID and the retry time survive.
    void reconnect() {
        line_.clear();
        data_.clear();
        type_.clear();
        id_buffer_ = last_id_;
        after_cr_ = false;
        first_line_ = true;
    }

private:
    template <class OnEvent>
    void line_done(OnEvent& on_event) {
        // Decoding replaces invalid UTF-8 with U+FFFD; valid lines (nearly
        // all) are used as they are.
        std::string decoded;
        std::string_view line = line_;
        if (!is_valid_utf8(line)) {
            append_utf8_replacing(decoded, line);
            line = decoded;
        }
        struct clear_line {
            std::string& s;
            ~clear_line() { s.clear(); }
        } clear{line_};
        if (first_line_) {
            first_line_ = false;
            if (line.substr(0, 3) == "\xef\xbb\xbf") line.remove_prefix(3);  // U+FEFF BOM
        }
        if (line.empty()) return dispatch(on_event);
        if (line.front() == ':') return;  // comment
        const auto colon = line.find(':');
        std::string_view field = line.substr(0, colon), value;
        if (colon != std::string_view::npos) {
            value = line.substr(colon + 1);
            if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
        }
        if (field == "event") {
            type_.assign(value);
        } else if (field == "data") {
            data_.append(value).push_back('\n');
        } else if (field == "id") {
            if (value.find('\0') == std::string_view::npos) id_buffer_.assign(value);
        } else if (field == "retry") {
            std::uint64_t ms = 0;
            const auto [p, e] = std::from_chars(value.data(), value.data() + value.size(), ms);
            bool digits = !value.empty();
            for (char ch : value) digits = digits && ch >= '0' && ch <= '9';
            if (digits && e == std::errc{} && p == value.data() + value.size()) retry_ = ms;
        }
        // Any other field is ignored.
    }

    template <class OnEvent>
    void dispatch(OnEvent& on_event) {
        last_id_ = id_buffer_;
        if (data_.empty()) {
            type_.clear();
            return;
        }
        data_.pop_back();  // the trailing LF
        const event ev{type_.empty() ? std::string_view("message") : std::string_view(type_), data_, last_id_};
        on_event(ev);
        data_.clear();
        type_.clear();
    }

    std::size_t max_line_;
    std::size_t max_event_;
    std::string line_;
    std::string data_;
    std::string type_;
    std::string id_buffer_;
    std::string last_id_;
    std::optional<std::uint64_t> retry_;
    bool after_cr_ = false;
    bool first_line_ = true;
};

} // namespace courier::event_stream
