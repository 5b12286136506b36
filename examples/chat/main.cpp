// courier-chat: a multi-tenant chat API with rooms, history and a web page.
//
//   courier-chat [--port N] [--address ADDR] [--tokens FILE] [--web DIR]
//                [--history N] [--allow-origin ORIGIN]...
//
// A token names a user, the tenant (company) the user belongs to, and the
// rooms the user may read and write; rooms are topics inside the tenant, so
// acme's "lobby" and globex's "lobby" never mix. Every transport is mounted
// (/poll /lp /sse /ws) on one broker: a message written over WebSocket
// reaches readers on any transport. The page at / lets a person choose a
// token, a room and a transport; /courier.js is the browser client.
//
// Try it: courier-chat --port 8080, open http://127.0.0.1:8080/, or
//   curl -N -H 'Authorization: Bearer alice' http://127.0.0.1:8080/sse/lobby
//   curl -H 'Authorization: Bearer bob' -d '{"from":"bob","text":"hi"}' http://127.0.0.1:8080/poll/lobby
#include "../common/example.hpp"

#include <courier/courier.hpp>

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>

#include <fstream>
#include <iostream>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#ifndef COURIER_CHAT_DIR
#define COURIER_CHAT_DIR ""
#endif

namespace {

constexpr std::string_view usage =
    "usage: courier-chat [--port N] [--address ADDR] [--tokens FILE] [--web DIR]\n"
    "                    [--history N] [--allow-origin ORIGIN]...\n"
    "  --port N            port to listen on (0 picks a free one; default 8080)\n"
    "  --address ADDR      address to bind (default 127.0.0.1)\n"
    "  --tokens FILE       who may read and write which rooms (default: tokens.json of the example)\n"
    "  --web DIR           the page's files (default: web/ of the example)\n"
    "  --history N         messages kept per room (default 200)\n"
    "  --allow-origin O    allow pages of origin O (repeatable; * for any)\n";

struct settings {
    std::string address = "127.0.0.1";
    unsigned long port = 8080;
    unsigned long history = 200;
    std::string tokens, web;
    std::vector<std::string> origins;
};

// What one token may do. "*" in a list stands for every room.
struct grant {
    std::string tenant;
    std::set<std::string, std::less<>> read, write;

    static bool allows(const std::set<std::string, std::less<>>& rooms, std::string_view room) {
        return rooms.contains("*") || rooms.contains(room);
    }
};

std::set<std::string, std::less<>> room_list(const rapidjson::Value& v, const std::string& where) {
    std::set<std::string, std::less<>> rooms;
    if (!v.IsArray()) throw std::runtime_error(where + ": expected an array of room names");
    for (const auto& r : v.GetArray()) {
        if (!r.IsString()) throw std::runtime_error(where + ": room names are strings");
        std::string name(r.GetString(), r.GetStringLength());
        if (name != "*" && !courier::is_valid_topic(name)) throw std::runtime_error(where + ": bad room name " + name);
        rooms.insert(std::move(name));
    }
    return rooms;
}

// tokens.json: {"<token>": {"tenant": "acme", "read": ["lobby"], "write": ["lobby"]}, ...}
std::unordered_map<std::string, grant> load_tokens(const std::string& path) {
    std::ifstream in(path);
    if (!in) throw std::runtime_error("cannot read " + path);
    std::stringstream text;
    text << in.rdbuf();
    rapidjson::Document doc;
    doc.Parse(text.str().c_str());
    if (doc.HasParseError())
        throw std::runtime_error(path + ": invalid JSON at offset " + std::to_string(doc.GetErrorOffset()) + ": " +
                                 rapidjson::GetParseError_En(doc.GetParseError()));
    if (!doc.IsObject()) throw std::runtime_error(path + ": expected an object of tokens");
    std::unordered_map<std::string, grant> table;
    for (const auto& [key, v] : doc.GetObject()) {
        const std::string token(key.GetString(), key.GetStringLength());
        const std::string where = path + ": token " + token;
        if (!v.IsObject() || !v.HasMember("tenant") || !v["tenant"].IsString())
            throw std::runtime_error(where + ": expected {\"tenant\": ..., \"read\": [...], \"write\": [...]}");
        grant g;
        g.tenant = v["tenant"].GetString();
        if (v.HasMember("read")) g.read = room_list(v["read"], where + ".read");
        if (v.HasMember("write")) g.write = room_list(v["write"], where + ".write");
        table.emplace(token, std::move(g));
    }
    if (table.empty()) throw std::runtime_error(path + ": no tokens");
    return table;
}

// The authorizer: an unknown token is 401; a room outside the token's
// lists is 403. The tenant it returns scopes every room name.
courier::authorizer chat_authorizer(std::unordered_map<std::string, grant> tokens) {
    auto table = std::make_shared<const std::unordered_map<std::string, grant>>(std::move(tokens));
    return [table](std::string_view token, courier::action a, std::string_view room) -> courier::authorization {
        const auto it = table->find(std::string(token));
        if (it == table->end()) return {courier::error::unauthorized, {}};
        const grant& g = it->second;
        if (!grant::allows(a == courier::action::publish ? g.write : g.read, room))
            return {courier::error::forbidden, {}};
        return {{}, g.tenant};
    };
}

} // namespace

int main(int argc, char** argv) {
    settings s;
    const bool ok = example::command_line("courier-chat", std::string(usage))
                        .number("--port", s.port, 0, 65535)
                        .number("--history", s.history, 1, 1'000'000)
                        .text("--address", s.address)
                        .text("--tokens", s.tokens)
                        .text("--web", s.web)
                        .list("--allow-origin", s.origins)
                        .parse(argc, argv);
    if (!ok) return 2;
    try {
        const auto dir = example::example_dir(COURIER_CHAT_DIR, "chat");
        const std::string tokens = s.tokens.empty() ? (dir / "tokens.json").string() : s.tokens;
        const auto web = s.web.empty() ? dir / "web" : std::filesystem::path(s.web);

        courier::broker hub{{.history = s.history}};
        courier::server_options opt{.address = s.address, .port = static_cast<std::uint16_t>(s.port)};
        opt.http.allow_origins = s.origins;
        opt.http.authorize = chat_authorizer(load_tokens(tokens));
        courier::server srv{hub, std::move(opt)};
        srv.mount(courier::channel<courier::polling>{"/poll"});
        srv.mount(courier::channel<courier::long_polling>{"/lp"});
        srv.mount(courier::channel<courier::sse>{"/sse"});
        srv.mount(courier::channel<courier::websocket>{"/ws"});
        srv.mount(courier::static_files{"/", web});
        srv.mount(courier::static_files::courier_js());

        example::serve_until_signal(srv, [&] {
            std::cout << "courier-chat listening on http://" << s.address << ":" << srv.port()
                      << "/ (tokens from " << tokens << ")" << std::endl;
        });
        std::cout << "courier-chat stopped" << std::endl;
    } catch (const std::exception& e) {
        std::cerr << "courier-chat: " << e.what() << "\n";
        return 1;
    }
}
