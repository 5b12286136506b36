// TLS: https and wss on the server and in the C++ clients, with a
// certificate this test makes (OpenSSL, EC P-256, for localhost and
// 127.0.0.1). Only in builds with COURIER_WITH_TLS.
#include <catch2/catch.hpp>
#include <courier/courier.hpp>

#include "integration/support.hpp"

#if COURIER_WITH_TLS
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <memory>
#include <stdexcept>

using namespace courier;
using namespace courier::test;
using namespace std::chrono_literals;

namespace {

// A self-signed certificate and its key, in PEM.
struct certificate {
    std::string cert_pem, key_pem;
};

std::string to_pem(int (*write)(BIO*, const void*), const void* object) {
    std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), BIO_free);
    if (!write(bio.get(), object)) throw std::runtime_error("PEM write failed");
    char* data = nullptr;
    const long n = BIO_get_mem_data(bio.get(), &data);
    return std::string(data, static_cast<std::size_t>(n));
}

certificate make_certificate(const char* common_name) {
    std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(EVP_EC_gen("P-256"), EVP_PKEY_free);
    std::unique_ptr<X509, decltype(&X509_free)> x(X509_new(), X509_free);
    if (!key || !x) throw std::runtime_error("OpenSSL: cannot make a key");
    X509_set_version(x.get(), 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x.get()), 1);
    X509_gmtime_adj(X509_getm_notBefore(x.get()), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x.get()), 24 * 3600);
    X509_set_pubkey(x.get(), key.get());
    X509_NAME* name = X509_get_subject_name(x.get());
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(common_name), -1, -1, 0);
    X509_set_issuer_name(x.get(), name);
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, x.get(), x.get(), nullptr, nullptr, 0);
    for (auto [nid, value] : {std::pair{NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1"},
                              {NID_basic_constraints, "critical,CA:TRUE"},
                              {NID_key_usage, "critical,digitalSignature,keyCertSign"}}) {
        X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
        if (!ext) throw std::runtime_error("OpenSSL: bad extension");
        X509_add_ext(x.get(), ext, -1);
        X509_EXTENSION_free(ext);
    }
    if (!X509_sign(x.get(), key.get(), EVP_sha256())) throw std::runtime_error("OpenSSL: cannot sign");
    return {to_pem([](BIO* b, const void* o) { return PEM_write_bio_X509(b, static_cast<X509*>(const_cast<void*>(o))); },
                   x.get()),
            to_pem([](BIO* b, const void* o) {
                return PEM_write_bio_PrivateKey(b, static_cast<EVP_PKEY*>(const_cast<void*>(o)), nullptr, nullptr, 0,
                                                nullptr, nullptr);
            }, key.get())};
}

std::unique_ptr<tls_context> server_context(const certificate& c) {
    auto ctx = std::make_unique<tls_context>(tls_context::tls_server);
    ctx->use_certificate_chain(asio::buffer(c.cert_pem));
    ctx->use_private_key(asio::buffer(c.key_pem), tls_context::pem);
    return ctx;
}

std::unique_ptr<tls_context> client_context(const certificate& trusted) {
    auto ctx = std::make_unique<tls_context>(tls_context::tls_client);
    ctx->add_certificate_authority(asio::buffer(trusted.cert_pem));
    return ctx;
}

struct tls_server {
    explicit tls_server(tls_context& ctx, http_options http = {})
        : srv(hub, server_options{.address = "127.0.0.1", .port = 0, .threads = 2, .http = std::move(http), .tls = &ctx}) {
        srv.mount(channel<polling>{"/poll"});
        srv.mount(channel<long_polling>{"/lp"});
        srv.mount(channel<sse>{"/sse"});
        srv.mount(channel<websocket>{"/ws"});
        srv.start();
    }
    ~tls_server() {
        srv.stop();
        srv.wait();
    }
    std::string url(std::string_view scheme, std::string_view mount) const {
        return std::string(scheme) + "://127.0.0.1:" + std::to_string(srv.port()) + std::string(mount);
    }
    broker hub;
    server srv;
};

// Subscribes a client<T> over TLS, publishes `count` messages through it and
// returns how many arrived in order.
template <class T>
int round_trip(asio::io_context& io, const std::string& url, tls_context& trust, int count) {
    client<T> c(io.get_executor(), {.url = url, .tls = &trust, .interval = 20ms});
    int next = 0, wrong = 0, errors = 0;
    c.on_error([&](std::string_view, std::error_code) { ++errors; });
    c.subscribe("secure", [&](const delivery& d) {
        if (n_of(d.data) == next) ++next;
        else ++wrong;
    }, "earliest");
    // One publish at a time: over HTTP, publishes in flight together may
    // take different connections and land in any order.
    int acked = 0;
    for (int i = 0; i < count; ++i) {
        c.async_publish("secure", R"({"n":)" + std::to_string(i) + "}", [&](std::error_code ec, std::string) {
            if (!ec) ++acked;
        });
        run_until(io, [&] { return acked == i + 1; }, 5s);
    }
    run_until(io, [&] { return next == count; }, 10s);
    c.stop();
    io.run_for(20ms);
    CHECK(acked == count);
    CHECK(wrong == 0);
    CHECK(errors == 0);
    return next;
}

} // namespace

TEST_CASE("TLS: https and wss with every C++ client against a server with a generated certificate", "[tls]") {
    const auto cert = make_certificate("localhost");
    auto server_ctx = server_context(cert);
    auto trust = client_context(cert);
    asio::io_context io(1);
    {
        tls_server s(*server_ctx);
        CHECK(round_trip<polling>(io, s.url("https", "/poll"), *trust, 20) == 20);
    }
    {
        tls_server s(*server_ctx);
        CHECK(round_trip<long_polling>(io, s.url("https", "/lp"), *trust, 20) == 20);
    }
    {
        tls_server s(*server_ctx);
        CHECK(round_trip<sse>(io, s.url("https", "/sse"), *trust, 20) == 20);
    }
    {
        tls_server s(*server_ctx);
        CHECK(round_trip<websocket>(io, s.url("wss", "/ws"), *trust, 20) == 20);
    }
}

TEST_CASE("TLS: a certificate the client does not trust, plain HTTP on a TLS port, and a TLS client on a plain port",
          "[tls][errors]") {
    const auto cert = make_certificate("localhost");
    const auto other = make_certificate("localhost");
    auto server_ctx = server_context(cert);
    auto wrong_trust = client_context(other);
    std::vector<std::string> logged;
    std::mutex mu;
    http_options http;
    http.min_log_level = log_level::debug;
    http.log = [&](log_level, std::string_view m) {
        std::lock_guard lock(mu);
        logged.emplace_back(m);
    };
    tls_server s(*server_ctx, std::move(http));
    asio::io_context io(1);

    // Not trusted: the client reports errors and receives nothing.
    {
        client<polling> c(io.get_executor(), {.url = s.url("https", "/poll"), .tls = wrong_trust.get(),
                                               .interval = 20ms, .backoff_min = 10ms, .backoff_max = 20ms});
        int errors = 0, got = 0;
        c.on_error([&](std::string_view, std::error_code) { ++errors; });
        c.subscribe("untrusted", [&](const delivery&) { ++got; }, "earliest");
        s.hub.publish("", "untrusted", "1");
        run_until(io, [&] { return errors >= 2; }, 5s);
        CHECK(errors >= 2);
        CHECK(got == 0);
        c.stop();
        io.run_for(20ms);
    }
    // Plain HTTP to the TLS port: no answer, the connection is closed, and
    // the server goes on serving TLS.
    {
        raw_socket plain(s.srv.port(), 3s);
        plain.send(get("/poll/untrusted?since=earliest"));
        CHECK(plain.closed_by_peer());
    }
    auto trust = client_context(cert);
    CHECK(round_trip<websocket>(io, s.url("wss", "/ws"), *trust, 5) == 5);
    // A TLS client against a plain server fails cleanly too.
    {
        broker hub;
        server plain_srv{hub, {.address = "127.0.0.1", .port = 0, .threads = 1}};
        plain_srv.mount(channel<polling>{"/poll"});
        plain_srv.start();
        client<polling> c(io.get_executor(), {.url = "https://127.0.0.1:" + std::to_string(plain_srv.port()) + "/poll",
                                               .tls = trust.get(), .backoff_min = 10ms, .backoff_max = 20ms});
        int errors = 0;
        c.on_error([&](std::string_view, std::error_code) { ++errors; });
        c.subscribe("secure", [](const delivery&) {});
        run_until(io, [&] { return errors >= 1; }, 5s);
        CHECK(errors >= 1);
        c.stop();
        io.run_for(20ms);
        plain_srv.stop();
        plain_srv.wait();
    }
    std::lock_guard lock(mu);
    CHECK(std::any_of(logged.begin(), logged.end(),
                      [](const std::string& m) { return m.starts_with("TLS handshake failed"); }));
}

#else
TEST_CASE("TLS is compiled out (no OpenSSL): a server asked for TLS refuses to start", "[tls]") {
    courier::broker hub;
    CHECK_THROWS_AS((courier::server{hub, {.tls = reinterpret_cast<courier::tls_context*>(1)}}), std::invalid_argument);
}
#endif
