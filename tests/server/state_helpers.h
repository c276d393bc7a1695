// Test helpers for portable states and the prefix cache: replicas (servers
// with their own registries) built from a random package, optionally
// sharing a state key file; and a /metrics scrape. Header-only.
#ifndef LSTMSERVE_TESTS_SERVER_STATE_HELPERS_H_
#define LSTMSERVE_TESTS_SERVER_STATE_HELPERS_H_

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "client/client.h"
#include "gtest/gtest.h"
#include "models/engine_factory.h"
#include "server/model_fingerprint.h"
#include "server/server.h"
#include "testing/random_package.h"

namespace lstmserve::testing {

// A key file in the test's temp directory holding `keys` (hex lines); the
// name carries the process id (ctest runs tests in parallel processes).
inline std::string WriteKeyFile(const std::string& name, const std::vector<std::string>& keys) {
  const std::string path = absl::StrCat(::testing::TempDir(), "/", name, ".", getpid());
  std::ofstream out(path, std::ios::trunc);
  out << "# test keys\n";
  for (const std::string& k : keys) out << k << "\n";
  return path;
}

inline constexpr char kKeyA[] = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
inline constexpr char kKeyB[] = "f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff000102030405060708090a0b0c0d0e0f";

struct ReplicaConfig {
  std::string model = "tiny";
  RandomPackageShape shape;
  EngineKind engine = EngineKind::kReference;
  std::string key_file;  // empty: random key
  int64_t prefix_cache_bytes = 0;
  int prefix_cache_interval = 8;
  bool metrics = false;
};

// One server process's worth of serving: its own registry, scheduler and
// key ring, as a second replica would have.
struct Replica {
  explicit Replica(const ReplicaConfig& c) {
    ServerOptions o;
    o.listen = "127.0.0.1:0";
    o.state_key_file = c.key_file;
    o.scheduler.prefix_cache_bytes = c.prefix_cache_bytes;
    o.scheduler.prefix_cache_interval = c.prefix_cache_interval;
    o.limits.max_prompt_tokens = 20000;
    if (c.metrics) o.telemetry.metrics_listen = "127.0.0.1:0";
    ModelPackage package = RandomPackage(c.shape);
    const std::string fingerprint = PackageFingerprint(package);
    EngineOptions engine_options;
    engine_options.threads = 1;
    auto engine = CreateEngine(c.engine, std::move(package), engine_options);
    EXPECT_TRUE(engine.ok()) << engine.status();
    std::vector<NamedEngine> engines;
    engines.push_back({c.model, *std::move(engine), fingerprint});
    auto started = LanguageModelServer::Start(o, std::move(engines));
    EXPECT_TRUE(started.ok()) << started.status();
    if (!started.ok()) std::abort();
    server = *std::move(started);
    client = std::make_unique<LanguageModelClient>(absl::StrCat("127.0.0.1:", server->port()));
    model = c.model;
  }

  // Greedy generation; the text and (when asked) the returned state.
  LanguageModelClient::Generation Greedy(const std::string& prompt, int max_tokens,
                                         const std::string& state = "",
                                         bool return_state = false,
                                         const std::vector<std::string>& stops = {}) {
    v1::GenerateRequest r;
    r.set_model(model);
    r.set_prompt(prompt);
    r.set_max_tokens(max_tokens);
    r.set_temperature(0.0f);
    r.set_state(state);
    r.set_return_state(return_state);
    for (const auto& s : stops) r.add_stop(s);
    auto g = client->GenerateText(r);
    EXPECT_TRUE(g.ok()) << g.status();
    return g.ok() ? *g : LanguageModelClient::Generation{};
  }
  v1::ScoreResponse Score(const std::string& context, const std::string& text,
                          const std::string& state = "", bool return_state = false) {
    v1::ScoreRequest r;
    r.set_model(model);
    r.set_context(context);
    r.set_text(text);
    r.set_state(state);
    r.set_return_state(return_state);
    auto s = client->Score(r);
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? *s : v1::ScoreResponse{};
  }
  v1::EmbedResponse Embed(const std::string& text, const std::string& state = "",
                          bool return_state = false) {
    v1::EmbedRequest r;
    r.set_model(model);
    r.set_text(text);
    r.set_state(state);
    r.set_return_state(return_state);
    r.set_include_all_layers(true);
    auto e = client->Embed(r);
    EXPECT_TRUE(e.ok()) << e.status();
    return e.ok() ? *e : v1::EmbedResponse{};
  }

  std::string model;
  std::unique_ptr<LanguageModelServer> server;
  std::unique_ptr<LanguageModelClient> client;
};

// GET /metrics on 127.0.0.1:port; the samples by series name with labels.
inline std::map<std::string, double> ScrapeMetrics(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  const std::string request = "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
  EXPECT_EQ(write(fd, request.data(), request.size()), static_cast<ssize_t>(request.size()));
  std::string response;
  char buf[65536];
  for (ssize_t n; (n = read(fd, buf, sizeof(buf))) > 0;) response.append(buf, n);
  close(fd);
  std::map<std::string, double> samples;
  std::istringstream in(response.substr(std::min(response.size(), response.find("\r\n\r\n"))));
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#' || line[0] == '\r') continue;
    const size_t space = line.rfind(' ');
    if (space == std::string::npos) continue;
    samples[line.substr(0, space)] = std::stod(line.substr(space + 1));
  }
  return samples;
}

// Random text over the tiny vocabulary ('A' + 0..36).
inline std::string RandomText(int n, uint32_t seed) {
  std::string s;
  for (int i = 0; i < n; ++i) {
    seed = seed * 1664525u + 1013904223u;
    s += static_cast<char>('A' + (seed >> 16) % 37);
  }
  return s;
}

}  // namespace lstmserve::testing

#endif  // LSTMSERVE_TESTS_SERVER_STATE_HELPERS_H_
