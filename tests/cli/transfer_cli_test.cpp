// A transfer from the command line, end to end: `dsx broker` and the provider's `dsx connector
// serve` in child processes on loopback, certificates from `dsx certs`, then publish, negotiate
// --wait and fetch files of 0 B, 1 B, 64 KiB - 1, 64 KiB, 64 KiB + 1 and a few MiB through the
// encrypted relay; each must arrive byte for byte.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

#include "tests/run_dsx.h"

namespace fs = std::filesystem;
using dsx::testing::run_dsx;

namespace {

// The dsx binary as a child process, its output in `log`; stopped with SIGTERM.
class Child {
 public:
  Child(std::vector<std::string> args, const fs::path& log) : log_(log) {
    pid_ = fork();
    REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
      std::vector<char*> argv = {const_cast<char*>(DSX_BINARY)};
      for (auto& a : args)
        argv.push_back(a.data());
      argv.push_back(nullptr);
      if (!freopen(log.c_str(), "w", stdout) || dup2(fileno(stdout), fileno(stderr)) < 0)
        _exit(126);
      execv(DSX_BINARY, argv.data());
      _exit(127);
    }
  }
  // Waits up to 10 s for a line containing `text`; the line, or "".
  std::string wait_for(const std::string& text) const {
    for (int i = 0; i < 200; ++i) {
      std::ifstream in(log_);
      std::string line;
      while (std::getline(in, line))
        if (line.find(text) != std::string::npos) return line;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return {};
  }
  std::string log() const {
    std::ifstream in(log_);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  int stop() {
    if (pid_ <= 0) return -1;
    kill(pid_, SIGTERM);
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }
  ~Child() { stop(); }

 private:
  fs::path log_;
  pid_t pid_ = -1;
};

std::string word_after(const std::string& text, const std::string& prefix) {
  const size_t at = text.find(prefix);
  if (at == std::string::npos) return {};
  const size_t start = at + prefix.size();
  return text.substr(start, text.find_first_of(" \n", start) - start);
}

std::string read_all(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

}  // namespace

TEST_CASE("a transfer from the command line: serve with datasets and fetch",
          "[cli][transfer-cli]") {
  char tmpl[] = "/tmp/dsx-transfer-cli-XXXXXX";
  const fs::path dir = mkdtemp(tmpl);
  REQUIRE(run_dsx("certs init --out " + (dir / "ca").string()).status == 0);
  for (const auto& [name, role] : std::vector<std::pair<std::string, std::string>>{
           {"127.0.0.1", "broker"}, {"acme", "provider"}, {"leiden", "consumer"}}) {
    auto issued = run_dsx("certs issue --ca " + (dir / "ca").string() + " --name " + name +
                          " --role " + role + " --out " + (dir / name).string());
    INFO(issued.out);
    REQUIRE(issued.status == 0);
  }
  // Sizes at the stream's edges (empty, one byte, one 64 KiB chunk and either side of it) and
  // 3 MiB and a bit: several chunks and a short final one.
  const std::vector<size_t> sizes = {0, 1, 65535, 65536, 65537, 3 * (1 << 20) + 1000};
  std::string datasets, config_datasets;
  for (size_t size : sizes) {
    const std::string n = std::to_string(size);
    std::ofstream data(dir / ("cohort-" + n + ".bin"), std::ios::binary);
    uint32_t x = 12345 + static_cast<uint32_t>(size);
    for (size_t i = 0; i < size; ++i) {
      x = x * 1103515245u + 12345u;
      data.put(static_cast<char>(x >> 24));
    }
    std::ofstream(dir / ("dataset-" + n + ".json"))
        << R"({"id": "urn:dsx:dataset:cohort-)" << n << R"(", "title": "Cohort )" << n
        << R"(", "offers": [{"@id": "urn:dsx:offer:cohort-)" << n
        << R"(", "permission": [{"action": "use"}]}]})";
    config_datasets += std::string(config_datasets.empty() ? "" : ", ") +
                       "\"urn:dsx:dataset:cohort-" + n + "\": \"" +
                       (dir / ("cohort-" + n + ".bin")).string() + "\"";
  }
  std::ofstream(dir / "acme.json")
      << R"({"autoAccept": [{"dataset": "*"}], "datasets": {)" << config_datasets << "}}";
  Child broker({"broker", "--cert", (dir / "127.0.0.1").string(), "--listen", "127.0.0.1:0",
                "--data", (dir / "data").string()},
               dir / "broker.log");
  const std::string url = word_after(broker.wait_for("listening on https://"), "listening on ");
  REQUIRE_FALSE(url.empty());
  auto as = [&](const std::string& who) {
    return "--broker " + url + " --cert " + (dir / who).string();
  };
  for (size_t size : sizes) {
    const std::string n = std::to_string(size);
    REQUIRE(run_dsx("connector publish " + as("acme") + " --dataset " +
                    (dir / ("dataset-" + n + ".json")).string())
                .status == 0);
  }
  Child serve({"connector", "serve", "--config", (dir / "acme.json").string(), "--broker", url,
               "--cert", (dir / "acme").string()},
              dir / "serve.log");
  REQUIRE_FALSE(serve.wait_for("control channel open").empty());
  for (size_t size : sizes) {
    const std::string n = std::to_string(size);
    INFO("a dataset of " << n << " bytes");
    auto negotiated =
        run_dsx("connector negotiate " + as("leiden") + " --offer urn:dsx:offer:cohort-" + n +
                " --purpose https://w3id.org/dpv#AcademicResearch --wait --timeout 20");
    INFO(negotiated.out);
    REQUIRE(negotiated.status == 0);
    const std::string agreement = word_after(negotiated.out, "FINALIZED: agreement ");
    REQUIRE(agreement.rfind("urn:uuid:", 0) == 0);

    const fs::path out = dir / ("received-" + n + ".bin");
    auto fetched = run_dsx("connector fetch " + as("leiden") + " --agreement " + agreement +
                           " --out " + out.string() + " --quiet --wait 20");
    INFO(fetched.out);
    INFO(serve.log());
    CHECK(fetched.status == 0);
    CHECK(fetched.out.find("received " + out.string()) != std::string::npos);
    CHECK(fetched.out.find(": COMPLETED; receipt logged") != std::string::npos);
    CHECK(fs::exists(out));
    CHECK(read_all(out) == read_all(dir / ("cohort-" + n + ".bin")));
    CHECK_FALSE(fs::exists(out.string() + ".part"));
    CHECK_FALSE(fs::exists(out.string() + ".part.json"));

    std::string pid = word_after(fetched.out, "\ntransfer ");
    if (!pid.empty() && pid.back() == ':') pid.pop_back();
    auto listed = run_dsx("connector transfers " + as("leiden"));
    INFO(listed.out);
    CHECK(listed.out.find(pid + "  COMPLETED") != std::string::npos);
  }
  CHECK(serve.wait_for("sent ").find("sealed for urn:dsx:participant:leiden") != std::string::npos);
  CHECK(serve.stop() == 0);
  fs::remove_all(dir);
}
