// courier: static files under a path prefix, for the pages and scripts that
// go with a channel (a chat page, a dashboard, courier.js). Mount it on a
// server beside the channels.
#pragma once
#include "config.hpp"
#include "detail/connection.hpp"
#include "error.hpp"
#include "http/request.hpp"
#include "http/response.hpp"
#include "http/url.hpp"
#include "web/courier_js.hpp"

#include <asio/awaitable.hpp>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>

namespace courier {
namespace detail {

/// The Content-Type for a file name, by its extension.
inline std::string_view content_type_of(std::string_view name) noexcept {
    const auto dot = name.rfind('.');
    const auto ext = dot == std::string_view::npos ? std::string_view{} : name.substr(dot + 1);
    struct entry { std::string_view ext, type; };
    static constexpr entry types[] = {
        {"html", "text/html; charset=utf-8"}, {"htm", "text/html; charset=utf-8"},
        {"js", "text/javascript; charset=utf-8"}, {"mjs", "text/javascript; charset=utf-8"},
        {"css", "text/css; charset=utf-8"}, {"json", "application/json"},
        {"svg", "image/svg+xml"}, {"png", "image/png"}, {"jpg", "image/jpeg"}, {"jpeg", "image/jpeg"},
        {"gif", "image/gif"}, {"ico", "image/x-icon"}, {"webp", "image/webp"},
        {"txt", "text/plain; charset=utf-8"}, {"md", "text/markdown; charset=utf-8"},
        {"woff2", "font/woff2"}, {"wasm", "application/wasm"},
    };
    for (const auto& t : types)
        if (http::iequals(t.ext, ext)) return t.type;
    return "application/octet-stream";
}

/// A strong validator for a file's bytes (FNV-1a, 64 bits, quoted).
inline std::string entity_tag(std::string_view bytes) {
    std::uint64_t h = 14695981039346656037ull;
    for (unsigned char c : bytes) h = (h ^ c) * 1099511628211ull;
    static constexpr char hex[] = "0123456789abcdef";
    std::string tag(18, '"');
    for (int i = 16; i >= 1; --i, h >>= 4) tag[static_cast<std::size_t>(i)] = hex[h & 15];
    return tag;
}

/// Whether an If-None-Match header lists `tag` (or is "*").
inline bool etag_matches(std::string_view if_none_match, std::string_view tag) noexcept {
    while (!if_none_match.empty()) {
        const auto comma = if_none_match.find(',');
        auto item = if_none_match.substr(0, comma);
        while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) item.remove_prefix(1);
        while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) item.remove_suffix(1);
        if (item.starts_with("W/")) item.remove_prefix(2);  // weak comparison (RFC 9110, 13.1.2)
        if (item == "*" || item == tag) return true;
        if (comma == std::string_view::npos) break;
        if_none_match.remove_prefix(comma + 1);
    }
    return false;
}

} // namespace detail

/// Files served under a path prefix, with GET and HEAD.
///
/// The files are read into memory when the object is built (so the io
/// threads never block on the disk, and a change needs a restart), and
/// shared by every copy. `P/name` serves the file `name`; a path ending in
/// '/' serves the `index.html` below it. Answers carry an ETag and
/// `Cache-Control: no-cache`, so browsers revalidate and get 304 when the
/// file did not change. Names that are not in the set get 404: nothing
/// outside the directory can be reached (no `..`, no symbolic links out).
/// Thread safety: build before mounting; served from every io thread after.
class static_files {
public:
    /// Total size a directory may hold: these are pages and scripts, not downloads.
    static constexpr std::size_t max_total_bytes = 64u << 20;

    /// An empty set at `prefix`; add files with add().
    explicit static_files(std::string prefix) : prefix_(std::move(prefix)), files_(std::make_shared<table>()) {
        if (prefix_.empty() || prefix_.front() != '/')
            throw std::invalid_argument("courier: a static_files prefix starts with '/', e.g. \"/\"");
    }

    /// Every regular file under `directory`, recursively, at prefix/relative
    /// path; symbolic links and hidden names (starting with '.') are left out. Throws std::invalid_argument when the directory cannot be read
    /// or holds more than max_total_bytes.
    static_files(std::string prefix, const std::filesystem::path& directory) : static_files(std::move(prefix)) {
        namespace fs = std::filesystem;
        std::error_code ec;
        if (!fs::is_directory(directory, ec))
            throw std::invalid_argument("courier: static_files: not a directory: " + directory.string());
        std::size_t total = 0;
        // Regular files only, never through a symbolic link (it may point
        // out of the directory), and no hidden files (.env, .git/...).
        for (fs::recursive_directory_iterator it(directory, ec), end; !ec && it != end; it.increment(ec)) {
            if (it->path().filename().string().starts_with(".")) {
                if (it->is_directory(ec)) it.disable_recursion_pending();
                continue;
            }
            if (!it->is_regular_file(ec) || it->is_symlink(ec)) continue;
            std::ifstream in(it->path(), std::ios::binary);
            std::string bytes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
            if (!in.good() && !in.eof())
                throw std::invalid_argument("courier: static_files: cannot read " + it->path().string());
            total += bytes.size();
            if (total > max_total_bytes)
                throw std::invalid_argument("courier: static_files: more than 64 MiB under " + directory.string());
            add(fs::relative(it->path(), directory).generic_string(), std::move(bytes));
        }
        if (ec) throw std::invalid_argument("courier: static_files: " + directory.string() + ": " + ec.message());
    }

    /// courier.js, the browser client (docs/courier-js.md), at `path`.
    static static_files courier_js(std::string path = "/courier.js") {
        static_files f(std::move(path));
        f.add("", std::string(web::courier_js), "text/javascript; charset=utf-8");
        return f;
    }

    /// Adds (or replaces) one file at prefix/name; the type defaults to one
    /// chosen by the name's extension.
    static_files& add(std::string name, std::string bytes, std::string_view type = {}) {
        file f;
        f.type = type.empty() ? detail::content_type_of(name) : type;
        f.etag = detail::entity_tag(bytes);
        f.bytes = std::move(bytes);
        (*files_)[std::move(name)] = std::move(f);
        return *this;
    }

    const std::string& prefix() const noexcept { return prefix_; }
    std::size_t size() const noexcept { return files_->size(); }

    /// Serves one request under the prefix; `rest` follows it.
    template <class Stream>
    asio::awaitable<bool> serve(detail::http_connection<Stream>& conn, http::request& req, std::string_view rest) const {
        if (req.method() != http::verb::get && req.method() != http::verb::head) {
            auto res = http::error_response(error::method_not_allowed);
            res.set("Allow", "GET, HEAD");
            co_return co_await conn.respond(req, res);
        }
        auto decoded = http::percent_decode(rest);
        auto name = decoded.value_or(std::string{});
        if (name.empty() ? !files_->contains(name) : name.back() == '/') name += "index.html";
        const auto it = decoded ? files_->find(name) : files_->end();  // a broken escape names nothing
        if (it == files_->end()) {
            auto res = http::error_response(error::not_found);
            co_return co_await conn.respond(req, res);
        }
        const file& f = it->second;
        http::response res(200);
        res.set("ETag", f.etag).set("Cache-Control", "no-cache").set("X-Content-Type-Options", "nosniff");
        if (detail::etag_matches(req.header("If-None-Match"), f.etag)) {
            res.status(304);
        } else {
            res.content_type(f.type);
            res.body() = f.bytes;
        }
        co_return co_await conn.respond(req, res);
    }

private:
    struct file {
        std::string type;
        std::string etag;
        std::string bytes;
    };
    using table = std::map<std::string, file, std::less<>>;

    std::string prefix_;
    std::shared_ptr<table> files_;
};

} // namespace courier
