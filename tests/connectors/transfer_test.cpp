// The connector's transfer pieces that need no broker: base64, the encryption key file, signed
// key bindings and manifests checked against the data space CA, the "datasets" config, and the
// Client's streaming upload and download over real TLS on loopback against a small Beast server
// in this test.
#include "connectors/transfer.h"

#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "certs/atomic_file.h"
#include "certs/ca.h"
#include "certs/signature.h"
#include "common/clock.h"
#include "connectors/client.h"
#include "connectors/transfer_stream.h"
#include "protocol/stream_format.h"

namespace fs = std::filesystem;
namespace conn = dsx::connectors;
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using json = nlohmann::json;

namespace {

// A CA and certificates for a broker (127.0.0.1), a provider and a consumer, in a temporary
// folder; and a second CA's consumer, which no one should trust.
struct Pki {
  fs::path dir;
  Pki() {
    char tmpl[] = "/tmp/dsx-transfer-test-XXXXXX";
    dir = mkdtemp(tmpl);
    REQUIRE(dsx::certs::init_ca(dir / "ca", {}));
    REQUIRE(dsx::certs::init_ca(dir / "other-ca", {}));
    issue(dir / "ca", "127.0.0.1", "broker", "broker");
    issue(dir / "ca", "acme", "provider", "acme");
    issue(dir / "ca", "leiden", "consumer", "leiden");
    issue(dir / "other-ca", "leiden", "consumer", "fake-leiden");
  }
  ~Pki() { fs::remove_all(dir); }
  void issue(const fs::path& ca, const std::string& name, const std::string& role,
             const std::string& out) {
    dsx::certs::IssueRequest r;
    r.name = name;
    r.roles = {role};
    auto issued = dsx::certs::issue(ca, r, dir / out);
    INFO(issued.status().message());
    REQUIRE(issued);
  }
  std::string pem(const std::string& who) const {
    return *dsx::certs::read_text_file(dir / who / "cert.pem");
  }
};

// A TLS server on a loopback port that answers each request on its connections: a PUT with
// {"bytes": N, "sum": S} (S: the sum of the body's bytes), a GET /big?n=N with N bytes (byte i is
// i mod 251) and an X-Test header, any other GET with 404 and a JSON error.
class TestServer {
 public:
  explicit TestServer(const fs::path& broker_dir)
      : ctx_(asio::ssl::context::tls_server),
        acceptor_(ioc_, {asio::ip::make_address("127.0.0.1"), 0}) {
    ctx_.use_certificate_chain_file((broker_dir / "cert.pem").string());
    ctx_.use_private_key_file((broker_dir / "key.pem").string(), asio::ssl::context::pem);
    ctx_.load_verify_file((broker_dir / "ca.pem").string());
    ctx_.set_verify_mode(asio::ssl::verify_peer | asio::ssl::verify_fail_if_no_peer_cert);
    port_ = acceptor_.local_endpoint().port();
    thread_ = std::thread([this] { serve(); });
  }
  ~TestServer() {
    stopping_ = true;
    boost::system::error_code ec;
    // Wake the accept with a connection of our own.
    asio::ip::tcp::socket s(ioc_);
    s.connect({asio::ip::make_address("127.0.0.1"), port_}, ec);
    thread_.join();
  }
  uint16_t port() const { return port_; }
  int connections() const { return connections_.load(); }

 private:
  void serve() {
    while (!stopping_) {
      asio::ip::tcp::socket socket(ioc_);
      boost::system::error_code ec;
      acceptor_.accept(socket, ec);
      if (ec || stopping_) return;
      ++connections_;
      beast::ssl_stream<asio::ip::tcp::socket> stream(std::move(socket), ctx_);
      stream.handshake(asio::ssl::stream_base::server, ec);
      if (ec) continue;
      beast::flat_buffer buffer;
      for (;;) {
        http::request_parser<http::string_body> parser;
        parser.body_limit(uint64_t{1} << 30);
        http::read(stream, buffer, parser, ec);
        if (ec) break;
        auto& req = parser.get();
        http::response<http::string_body> res;
        res.version(11);
        res.keep_alive(true);
        if (req.method() == http::verb::put) {
          uint64_t sum = 0;
          for (const char c : req.body())
            sum += static_cast<unsigned char>(c);
          res.result(200);
          res.body() = json{{"bytes", req.body().size()},
                            {"sum", sum},
                            {"header", std::string(req["X-Dsx-From-Chunk"])}}
                           .dump();
        } else if (req.target().starts_with("/big?n=")) {
          const size_t n = std::stoul(std::string(req.target().substr(7)));
          res.result(200);
          res.set("X-Test", "yes");
          res.body().resize(n);
          for (size_t i = 0; i < n; ++i)
            res.body()[i] = static_cast<char>(i % 251);
        } else {
          res.result(404);
          res.body() = R"({"code": "404:not-found", "reason": ["no such thing"]})";
        }
        res.prepare_payload();
        http::write(stream, res, ec);
        if (ec) break;
      }
      stream.shutdown(ec);
    }
  }

  asio::io_context ioc_;
  asio::ssl::context ctx_;
  asio::ip::tcp::acceptor acceptor_;
  uint16_t port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<int> connections_{0};
  std::thread thread_;
};

}  // namespace

TEST_CASE("the encryption key file is created once with mode 0600", "[connectors][transfer]") {
  Pki pki;
  auto a = conn::load_or_create_encryption_key(pki.dir / "leiden");
  REQUIRE(a);
  struct stat st {};
  REQUIRE(stat((pki.dir / "leiden" / "encryption-key.pem").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  auto b = conn::load_or_create_encryption_key(pki.dir / "leiden");
  REQUIRE(b);
  CHECK(a->public_key() == b->public_key());
}

namespace {

// `text` signed by WHO (a folder of the Pki) with its certificate beside it, as a manifest or a
// key binding travels.
json signed_by(const Pki& pki, const std::string& who, const std::string& text) {
  auto sig = dsx::certs::sign_text(pki.dir / who, text);
  REQUIRE(sig);
  json doc = dsx::certs::signed_document(text, *sig);
  doc["certificate"] = pki.pem(who);
  return doc;
}

}  // namespace

TEST_CASE("a key binding checks only for the consumer whose certificate signed it",
          "[connectors][transfer]") {
  Pki pki;
  auto key = dsx::protocol::X25519PrivateKey::generate();
  REQUIRE(key);
  auto binding =
      conn::signed_key_binding(pki.dir / "leiden", key->public_key(), dsx::SystemClock().now());
  INFO(binding.status().message());
  REQUIRE(binding);
  json event_key = *binding;
  event_key["certificate"] = pki.pem("leiden");
  const fs::path acme = pki.dir / "acme";
  auto checked = conn::check_key_binding(acme, event_key, "urn:dsx:participant:leiden");
  INFO(checked.status().message());
  REQUIRE(checked);
  CHECK(*checked == key->public_key());

  // Another participant's transfer: refused.
  auto other = conn::check_key_binding(acme, event_key, "urn:dsx:participant:beijing");
  REQUIRE_FALSE(other);
  CHECK(other.status().message().find("not by urn:dsx:participant:beijing") != std::string::npos);
  // A certificate from another CA in leiden's name (what a broker could make): refused.
  auto fake_binding = conn::signed_key_binding(pki.dir / "fake-leiden", key->public_key(),
                                               dsx::SystemClock().now());
  REQUIRE(fake_binding);
  json fake = *fake_binding;
  fake["certificate"] = pki.pem("fake-leiden");
  auto forged = conn::check_key_binding(acme, fake, "urn:dsx:participant:leiden");
  REQUIRE_FALSE(forged);
  CHECK(forged.status().message().find("does not verify against the data space CA") !=
        std::string::npos);
  // Another key in the document, same signature: refused.
  auto key2 = dsx::protocol::X25519PrivateKey::generate();
  auto swapped_binding =
      conn::signed_key_binding(pki.dir / "leiden", key2->public_key(), dsx::SystemClock().now());
  json swapped = event_key;
  swapped["document"] = (*swapped_binding)["document"];
  CHECK_FALSE(conn::check_key_binding(acme, swapped, "urn:dsx:participant:leiden"));
  // No certificate to check with: refused.
  CHECK_FALSE(conn::check_key_binding(acme, *binding, "urn:dsx:participant:leiden"));
}

TEST_CASE("a signed manifest travels in a header and checks for its provider only",
          "[connectors][transfer]") {
  Pki pki;
  dsx::protocol::StreamManifest m;
  m.dataset_id = "urn:dsx:dataset:x";
  m.agreement_id = "urn:uuid:a";
  m.transfer_id = "urn:uuid:t";
  m.plaintext_size = 12345;
  m.plaintext_sha256.fill(1);
  m.ciphertext_sha256.fill(2);
  const auto text = dsx::protocol::stream_manifest_json(m);
  REQUIRE(text);
  const json signed_manifest = signed_by(pki, "acme", *text);
  const std::string header = conn::encode_manifest_header(signed_manifest);
  CHECK(header.find_first_of("{\" \n") == std::string::npos);
  auto decoded = conn::decode_manifest_header(header);
  REQUIRE(decoded);
  CHECK(*decoded == signed_manifest);
  auto checked =
      conn::check_signed_manifest(pki.dir / "leiden", *decoded, "urn:dsx:participant:acme");
  INFO(checked.status().message());
  REQUIRE(checked);
  CHECK(checked->manifest == m);
  CHECK(checked->text == *text);
  CHECK_FALSE(conn::check_signed_manifest(pki.dir / "leiden", *decoded, "urn:dsx:participant:bmw"));
  json tampered = *decoded;
  m.plaintext_size = 12346;
  tampered["document"] = *dsx::protocol::stream_manifest_json(m);
  CHECK_FALSE(
      conn::check_signed_manifest(pki.dir / "leiden", tampered, "urn:dsx:participant:acme"));
  CHECK_FALSE(conn::decode_manifest_header("not base64!"));

  // The receipt is the same text signed by the consumer.
  auto receipt = conn::sign_receipt(pki.dir / "leiden", *text);
  REQUIRE(receipt);
  auto parsed = dsx::certs::parse_signed_document(*receipt);
  REQUIRE(parsed);
  CHECK(parsed->text == *text);
  CHECK(dsx::certs::verify_text(pki.pem("leiden"), parsed->text, parsed->signature));
}

TEST_CASE("with CERT_DIR/crl.pem, a manifest or key binding of a revoked certificate is refused",
          "[connectors][transfer]") {
  Pki pki;
  dsx::protocol::StreamManifest m;
  m.dataset_id = "urn:dsx:dataset:x";
  m.agreement_id = "urn:uuid:a";
  m.transfer_id = "urn:uuid:t";
  const auto text = dsx::protocol::stream_manifest_json(m);
  REQUIRE(text);
  const json signed_manifest = signed_by(pki, "acme", *text);
  const auto check = [&] {
    return conn::check_signed_manifest(pki.dir / "leiden", signed_manifest,
                                       "urn:dsx:participant:acme");
  };
  // No crl.pem: chain and validity only.
  REQUIRE(check());
  // The CA's CRL, before and after the provider's certificate is revoked.
  fs::copy_file(pki.dir / "ca" / "crl.pem", pki.dir / "leiden" / "crl.pem");
  CHECK(check());
  REQUIRE(dsx::certs::revoke(pki.dir / "ca", pki.dir / "acme" / "cert.pem"));
  fs::copy_file(pki.dir / "ca" / "crl.pem", pki.dir / "leiden" / "crl.pem",
                fs::copy_options::overwrite_existing);
  auto refused = check();
  REQUIRE_FALSE(refused);
  CHECK(refused.status().message().find("certificate revoked") != std::string::npos);
  CHECK(refused.status().code() == dsx::Status::Code::kInvalidArgument);  // the signer's fault
  // The provider's side: a key binding of a revoked consumer, with acme's copy of the CRL.
  auto key = dsx::protocol::X25519PrivateKey::generate();
  REQUIRE(key);
  auto binding =
      conn::signed_key_binding(pki.dir / "leiden", key->public_key(), dsx::SystemClock().now());
  REQUIRE(binding);
  json event_key = *binding;
  event_key["certificate"] = pki.pem("leiden");
  REQUIRE(dsx::certs::revoke(pki.dir / "ca", pki.dir / "leiden" / "cert.pem"));
  CHECK(conn::check_key_binding(pki.dir / "acme", event_key, "urn:dsx:participant:leiden"));
  fs::copy_file(pki.dir / "ca" / "crl.pem", pki.dir / "acme" / "crl.pem");
  auto revoked_key =
      conn::check_key_binding(pki.dir / "acme", event_key, "urn:dsx:participant:leiden");
  REQUIRE_FALSE(revoked_key);
  CHECK(revoked_key.status().message().find("certificate revoked") != std::string::npos);
  // Our own CRL at fault is kInternal (worth a retry once mended), not the signer's fault: one
  // that is not a CRL, or another CA's.
  std::ofstream(pki.dir / "leiden" / "crl.pem") << "not a CRL";
  auto unreadable = check();
  REQUIRE_FALSE(unreadable);
  CHECK(unreadable.status().code() == dsx::Status::Code::kInternal);
  CHECK(unreadable.status().message().find("crl.pem") != std::string::npos);
  fs::copy_file(pki.dir / "other-ca" / "crl.pem", pki.dir / "leiden" / "crl.pem",
                fs::copy_options::overwrite_existing);
  auto foreign = check();
  REQUIRE_FALSE(foreign);
  CHECK(foreign.status().code() == dsx::Status::Code::kInternal);
  CHECK(foreign.status().message().find("cannot be used") != std::string::npos);
}

TEST_CASE("the upload pool runs one job per transfer, never makes its caller wait, and stops",
          "[connectors][transfer]") {
  conn::ClientConfig nowhere;
  nowhere.cert_dir = "/nonexistent";  // each job gets a connection error, which it ignores
  std::mutex m;
  std::vector<std::string> events;
  std::atomic<int> connected{0};  // no Catch macro on the pool's threads: it is not thread-safe
  std::atomic<bool> b_may_end{false};
  auto note = [&](std::string e) {
    std::lock_guard lock(m);
    events.push_back(std::move(e));
  };
  auto happened = [&](const std::string& e) {
    std::lock_guard lock(m);
    return std::find(events.begin(), events.end(), e) != events.end();
  };
  auto at = [&](const std::string& e) {
    std::lock_guard lock(m);
    return std::find(events.begin(), events.end(), e) - events.begin();
  };
  auto eventually = [&](auto condition) {
    for (int i = 0; i < 5000 && !condition(); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    return condition();
  };
  // A job that runs until told to stop, saying when it began and how it ended.
  auto until_stopped = [&](std::string name) {
    return [&, name](dsx::Result<std::unique_ptr<conn::Client>> client,
                     const std::atomic<bool>& stopping) {
      if (client) ++connected;
      note(name + " began");
      while (!stopping || (name == "b" && !b_may_end))  // b ends when the test says
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
      note(name + " stopped");
    };
  };
  conn::UploadPool pool(nowhere, 2);  // declared last: its threads use what is above
  pool.start("t1", until_stopped("a"));
  pool.start("t2", until_stopped("b"));
  CHECK(eventually([&] { return pool.running() == 2; }));
  // Both places taken: a third transfer queues, and start() returns at once.
  pool.start("t3", until_stopped("d"));
  CHECK(pool.queued() == 1);
  CHECK_FALSE(happened("d began"));
  // A second job of t1 replaces the first: it begins once the first has returned, and it does
  // not jump the queue (t3 was first).
  pool.start("t1", until_stopped("c"));
  CHECK(eventually([&] { return happened("a stopped"); }));
  CHECK(eventually([&] { return happened("d began"); }));
  CHECK(pool.running() == 2);
  CHECK(pool.queued() == 1);  // c: b and d hold the places
  // end() does not wait, and its `then` runs once the job has returned, before another of its
  // key could begin.
  std::atomic<bool> forgotten{false};
  pool.end("t2", [&] {
    note("t2 forgotten");
    forgotten = true;
  });
  CHECK_FALSE(forgotten);  // b has not ended yet
  b_may_end = true;
  CHECK(eventually([&] { return forgotten.load(); }));
  CHECK(at("b stopped") < at("t2 forgotten"));
  CHECK(eventually([&] { return happened("c began"); }));
  CHECK(at("a stopped") < at("c began"));
  // Nothing of t2 runs: `then` at once.
  bool at_once = false;
  pool.end("t2", [&] { at_once = true; });
  CHECK(at_once);
  // A queued job that is ended never runs.
  pool.start("t4", until_stopped("e"));
  CHECK(pool.queued() == 1);
  pool.end("t4");
  CHECK(pool.queued() == 0);
  CHECK_FALSE(pool.wait_for(std::chrono::milliseconds(20)));  // c and d run
  pool.stop();
  CHECK(pool.wait_for(std::chrono::seconds(10)));
  CHECK(pool.running() == 0);
  CHECK(connected == 0);
  CHECK_FALSE(happened("e began"));
  // Nothing runs after stop().
  std::atomic<bool> ran{false};
  pool.start("t3", [&](auto, const std::atomic<bool>&) { ran = true; });
  CHECK(pool.wait_for(std::chrono::seconds(1)));
  CHECK_FALSE(ran);
}

TEST_CASE("the datasets a provider serves come from its config file", "[connectors][transfer]") {
  auto d = conn::parse_datasets(
      json::parse(
          R"({"datasets": {"urn:dsx:dataset:a": "/srv/a.csv", "urn:dsx:dataset:b": "b.csv"}})"),
      "/etc/dsx");
  REQUIRE(d);
  CHECK(d->at("urn:dsx:dataset:a") == "/srv/a.csv");
  CHECK(d->at("urn:dsx:dataset:b") == "/etc/dsx/b.csv");
  CHECK(conn::parse_datasets(json::object())->empty());
  auto bad = conn::parse_datasets(json::parse(R"({"datasets": {"x": 3}})"));
  REQUIRE_FALSE(bad);
  CHECK(bad.status().message() == "datasets.x: expected a file name");
  CHECK_FALSE(conn::parse_datasets(json::parse(R"({"datasets": ["x"]})")));
}

TEST_CASE("the client streams an upload and a download on one kept-alive connection",
          "[connectors][transfer]") {
  Pki pki;
  TestServer server(pki.dir / "broker");
  conn::ClientConfig config;
  config.port = server.port();
  config.cert_dir = pki.dir / "leiden";
  config.timeout = std::chrono::seconds(10);
  auto client = conn::Client::connect(config);
  INFO(client.status().message());
  REQUIRE(client);

  // 1 MiB + 7 bytes in pieces the source chooses (never more than asked).
  const uint64_t size = (1 << 20) + 7;
  uint64_t produced = 0, expected_sum = 0;
  size_t calls = 0;
  auto up = (*client)->upload(
      "PUT", "/t/data", {{"X-Dsx-From-Chunk", "3"}}, size,
      [&](std::span<uint8_t> out) -> dsx::Result<size_t> {
        ++calls;
        const size_t n = std::min<size_t>(out.size(), 100000);
        for (size_t i = 0; i < n; ++i) {
          out[i] = static_cast<uint8_t>((produced + i) % 7);
          expected_sum += out[i];
        }
        produced += n;
        return n;
      },
      64 * 1024);
  INFO(up.status().message());
  REQUIRE(up);
  CHECK(up->status == 200);
  const json answer = json::parse(up->body);
  CHECK(answer["bytes"] == size);
  CHECK(answer["sum"] == expected_sum);
  CHECK(answer["header"] == "3");
  CHECK(calls >= size / (64 * 1024));

  // A download in pieces, with its headers first.
  std::string got;
  bool saw_headers = false;
  auto down = (*client)->download(
      "/big?n=3000000", {},
      [&](const conn::Reply& head) {
        saw_headers = head.header("x-test") == "yes";
        return dsx::Status::ok();
      },
      [&](std::span<const uint8_t> piece) {
        CHECK(piece.size() <= 256 * 1024);
        got.append(reinterpret_cast<const char*>(piece.data()), piece.size());
        return dsx::Status::ok();
      });
  INFO(down.status().message());
  REQUIRE(down);
  CHECK(down->status == 200);
  CHECK(saw_headers);
  REQUIRE(got.size() == 3000000);
  bool same = true;
  for (size_t i = 0; i < got.size() && same; ++i)
    same = static_cast<unsigned char>(got[i]) == i % 251;
  CHECK(same);

  // A refusal is read whole, without the sinks; the connection stays usable.
  bool called = false;
  auto refused = (*client)->download(
      "/missing", {},
      [&](const conn::Reply&) {
        called = true;
        return dsx::Status::ok();
      },
      [&](std::span<const uint8_t>) {
        called = true;
        return dsx::Status::ok();
      });
  REQUIRE(refused);
  CHECK(refused->status == 404);
  CHECK_FALSE(called);
  CHECK(conn::describe_error(*refused) == "404 not-found: no such thing");
  // A sink's error aborts the download with that error.
  auto aborted = (*client)->download("/big?n=1000000", {}, nullptr, [](std::span<const uint8_t>) {
    return dsx::Status::invalid_argument("enough");
  });
  REQUIRE_FALSE(aborted);
  CHECK(aborted.status().message() == "enough");
  // A source's error aborts the upload.
  auto failed =
      (*client)->upload("PUT", "/t/data", {}, 10, [](std::span<uint8_t>) -> dsx::Result<size_t> {
        return dsx::Status::failed_precondition("disk gone");
      });
  REQUIRE_FALSE(failed);
  CHECK(failed.status().message() == "disk gone");
  CHECK(server.connections() <= 3);  // one, then a new one after each abort
}
