// The versioned model repository through a real server: hot swap under live
// streams, broken versions, removal, pinning, the resident limit, rescans
// racing file changes, and memory after a swap. Rescans are triggered with
// ModelRepository::RescanNow / RequestRescan (what SIGHUP does in lstmserve;
// repository_signal_test sends the real signal to the binary).
#include <arpa/inet.h>
#include <malloc.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>
#include <vector>

#include "absl/synchronization/blocking_counter.h"
#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "server/model_loader.h"
#include "server/model_repository.h"
#include "tests/server/controllable_engine.h"
#include "tests/server/repository_fixture.h"

namespace lstmserve::testing {
namespace {

constexpr char kM[] = "m";

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool kRssMeaningful = false;  // quarantine / shadow memory (see faults_test)
#else
constexpr bool kRssMeaningful = true;
#endif

int64_t ResidentBytes() {
  malloc_trim(0);
  std::ifstream in("/proc/self/statm");
  int64_t size = 0, resident = 0;
  in >> size >> resident;
  return resident * sysconf(_SC_PAGESIZE);
}

// Polls `done` (a cheap in-process check) until it holds or 60 s passed.
bool Eventually(const std::function<bool()>& done) {
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  while (!done()) {
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(5));
  }
  return true;
}

// The value of `series` on http://127.0.0.1:port/metrics ("" if absent).
std::string ScrapeValue(int port, const std::string& series) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string response;
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
    const std::string request = "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    if (write(fd, request.data(), request.size()) == static_cast<ssize_t>(request.size())) {
      char buf[65536];
      for (ssize_t n; (n = read(fd, buf, sizeof(buf))) > 0;) response.append(buf, n);
    }
  }
  close(fd);
  const size_t at = response.find("\n" + series + " ");
  if (at == std::string::npos) return "";
  const size_t begin = at + series.size() + 2;
  return response.substr(begin, response.find('\n', begin) - begin);
}

std::unique_ptr<LanguageModelServer> StartServer(const ServerOptions& options) {
  auto server = LanguageModelServer::Start(options, {});
  EXPECT_TRUE(server.ok()) << server.status();
  return server.ok() ? *std::move(server) : nullptr;
}

v1::GenerateRequest Greedy(const std::string& model, const std::string& prompt, int max_tokens,
                           int64_t version = 0) {
  v1::GenerateRequest r = GreedyRequest(prompt, max_tokens);
  r.set_model(model);
  r.set_model_version(version);
  return r;
}

// A stream read to its end on its own thread; `started` counts its first
// message.
class LiveStream {
 public:
  LiveStream(LanguageModelClient* client, v1::GenerateRequest request,
             absl::BlockingCounter* started)
      : thread_([this, client, request, started] {
          status_ = client->Generate(request, [&](const v1::GenerateResponse& r) {
            text_ += r.text();
            versions_.insert(r.model_version());
            if (!first_) {
              first_ = true;
              started->DecrementCount();
            }
            return true;
          });
          done_.Notify();
        }) {}
  bool done() const { return done_.HasBeenNotified(); }
  void Join() { thread_.join(); }
  const absl::Status& status() const { return status_; }
  const std::string& text() const { return text_; }
  const std::set<int64_t>& versions() const { return versions_; }

 private:
  bool first_ = false;
  std::string text_;
  std::set<int64_t> versions_;
  absl::Status status_;
  absl::Notification done_;
  std::thread thread_;  // last
};

// The engines of repository versions, wrapped so a test can slow down or
// hold (wedge) one version's steps: a stream on a held version is certainly
// still running while the test swaps.
struct VersionGates {
  std::shared_ptr<ControllableEngine::Controls> Of(int64_t version) {
    absl::MutexLock lock(&mu);
    auto& c = controls[version];
    if (c == nullptr) {
      c = std::make_shared<ControllableEngine::Controls>();
      c->step_delay_us = step_delay_us;
    }
    return c;
  }
  void Install(ServerOptions* o) {
    o->loading.wrap_engine = [this](int64_t version, std::unique_ptr<InferenceEngine> engine) {
      return std::make_unique<ControllableEngine>(std::move(engine), Of(version));
    };
  }
  int64_t step_delay_us = 0;
  absl::Mutex mu;
  std::map<int64_t, std::shared_ptr<ControllableEngine::Controls>> controls ABSL_GUARDED_BY(mu);
};

TEST(ModelRepositoryTest, SwapUnder24LiveStreamsEachFinishesOnItsOwnVersion) {
  constexpr int kStreams = 24;
  constexpr int kTokens = 1000;
  TestRepository repo;
  repo.Publish(kM, 1);
  ServerOptions o = RepoServerOptions(repo.path());
  o.limits.max_tokens_limit = kTokens;
  VersionGates gates;
  gates.step_delay_us = 2000;  // 1000 tokens take >= 2 s: still running at the swap
  gates.Install(&o);
  auto server = StartServer(o);
  ASSERT_NE(server, nullptr);
  LanguageModelClient client(absl::StrCat("127.0.0.1:", server->port()));
  ModelRegistry* registry = server->registry();
  ASSERT_EQ(registry->LoadedVersions(kM), std::vector<int64_t>{1});

  auto prompt = [](int i) { return std::string(1, static_cast<char>('A' + i % 26)) + "BA"; };
  absl::BlockingCounter started(kStreams);
  std::vector<std::unique_ptr<LiveStream>> streams;
  for (int i = 0; i < kStreams; ++i) {
    streams.push_back(
        std::make_unique<LiveStream>(&client, Greedy(kM, prompt(i), kTokens), &started));
  }
  started.Wait();
  // Hold version 1's steps: every stream is mid-generation on it.
  gates.Of(1)->Wedge();
  gates.Of(1)->AwaitWedgedStep();
  for (int i = 0; i < kStreams; ++i) ASSERT_FALSE(streams[i]->done()) << "stream " << i;

  // Version 2 appears and is swapped in while the 24 streams are live.
  repo.Publish(kM, 2);
  ASSERT_TRUE(server->repository()->RescanNow().ok());
  EXPECT_EQ(registry->LoadedVersions(kM), std::vector<int64_t>{2});
  EXPECT_EQ(registry->Resident(kM), 2) << "version 1 still finishes its streams";
  auto after = client.GenerateText(Greedy(kM, "AB", 50));
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(after->last.model_version(), 2);
  const std::string v2_text = ReferenceGreedy(VersionShape(2), "AB", 50);
  ASSERT_NE(v2_text, ReferenceGreedy(VersionShape(1), "AB", 50)) << "versions must differ";
  EXPECT_EQ(after->text, v2_text);

  gates.Of(1)->Release();
  for (int i = 0; i < kStreams; ++i) {
    streams[i]->Join();
    SCOPED_TRACE(absl::StrCat("stream ", i));
    EXPECT_TRUE(streams[i]->status().ok()) << streams[i]->status();
    EXPECT_EQ(streams[i]->versions(), std::set<int64_t>{1});
    EXPECT_EQ(streams[i]->text(), ReferenceGreedy(VersionShape(1), prompt(i), kTokens));
  }
  // Version 1 is unloaded once its last stream ended.
  EXPECT_TRUE(Eventually([&] { return registry->Resident(kM) == 1; }));
  auto models = client.ListModels();
  ASSERT_TRUE(models.ok());
  ASSERT_EQ(models->models_size(), 1);
  EXPECT_EQ(models->models(0).version(), 2);
  EXPECT_EQ(std::vector<int64_t>(models->models(0).loaded_versions().begin(),
                                 models->models(0).loaded_versions().end()),
            std::vector<int64_t>{2});
}

TEST(ModelRepositoryTest, BrokenVersionIsRefusedAndRetriedOnlyWhenItsFilesChange) {
  TestRepository repo;
  repo.Publish(kM, 1);
  ServerOptions o = RepoServerOptions(repo.path());
  o.telemetry.metrics_listen = "127.0.0.1:0";
  auto server = StartServer(o);
  ASSERT_NE(server, nullptr);
  LanguageModelClient client(absl::StrCat("127.0.0.1:", server->port()));
  const std::string v1_text = ReferenceGreedy(VersionShape(1), "AB", 40);

  repo.Publish(kM, 2);
  repo.TruncateWeights(kM, 2);
  ::testing::internal::CaptureStderr();
  ASSERT_TRUE(server->repository()->RescanNow().ok());
  ASSERT_TRUE(server->repository()->RescanNow().ok());  // unchanged: not retried
  const std::string log = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(log.find(absl::StrCat("error: model version directory '", repo.VersionDir(kM, 2),
                                  "' refused: ")),
            std::string::npos)
      << log;
  EXPECT_NE(log.find("version 1 still serves"), std::string::npos) << log;
  size_t refusals = 0;
  for (size_t at = 0; (at = log.find("refused", at)) != std::string::npos; ++at) ++refusals;
  EXPECT_EQ(refusals, 1u) << "an unchanged broken version is not retried\n" << log;

  // The serving version is untouched; readiness too.
  EXPECT_EQ(server->registry()->LoadedVersions(kM), std::vector<int64_t>{1});
  auto g = client.GenerateText(Greedy(kM, "AB", 40));
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_EQ(g->text, v1_text);
  EXPECT_EQ(g->last.model_version(), 1);
  auto health = client.Health();
  ASSERT_TRUE(health.ok());
  EXPECT_EQ(*health, "SERVING");

  // A mismatched config (another hidden size than the weights): refused too.
  repo.Publish(kM, 3);
  {
    auto spec = SpecFromPackage(RandomPackage(VersionShape(3)));
    spec.config["hidden_size"] = 41;
    WriteFileOrDie(absl::StrCat(repo.VersionDir(kM, 3), "/", kConfigFileName),
                   spec.config.dump());
  }
  ASSERT_TRUE(server->repository()->RescanNow().ok());
  EXPECT_EQ(server->registry()->LoadedVersions(kM), std::vector<int64_t>{1});

  // The counter, by model: versions 2 and 3, once each.
  EXPECT_EQ(ScrapeValue(server->metrics_port(), "lstmserve_model_load_failures_total{model=\"m\"}"),
            "2");
  EXPECT_EQ(ScrapeValue(server->metrics_port(),
                        "lstmserve_model_info{engine=\"reference\",hidden_size=\"40\","
                        "layers=\"2\",model=\"m\",precision=\"f32\",version=\"1\","
                        "vocab_size=\"37\"}"),
            "1");
  // Fixing version 3 (its files change) makes the next scan load it.
  WritePackage(SpecFromPackage(RandomPackage(VersionShape(3))), repo.VersionDir(kM, 3));
  ASSERT_TRUE(server->repository()->RescanNow().ok());
  EXPECT_EQ(server->registry()->LoadedVersions(kM), std::vector<int64_t>{3});
  g = client.GenerateText(Greedy(kM, "AB", 40));
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_EQ(g->text, ReferenceGreedy(VersionShape(3), "AB", 40));
}

TEST(ModelRepositoryTest, RemovedModelFinishesItsStreamsThenIsNotFound) {
  TestRepository repo;
  repo.Publish("a", 1);
  repo.Publish("b", 1);
  ServerOptions o = RepoServerOptions(repo.path());
  VersionGates gates;  // (both models' version 1: a's stream is held)
  gates.Install(&o);
  auto server = StartServer(o);
  ASSERT_NE(server, nullptr);
  LanguageModelClient client(absl::StrCat("127.0.0.1:", server->port()));

  gates.Of(1)->Wedge();
  absl::BlockingCounter started(1);
  LiveStream stream(&client, Greedy("a", "AB", 300), &started);
  started.Wait();  // its first token comes from the prefill
  gates.Of(1)->AwaitWedgedStep();
  std::filesystem::remove_all(absl::StrCat(repo.path(), "/a"));
  ASSERT_TRUE(server->repository()->RescanNow().ok());

  auto g = client.GenerateText(Greedy("a", "AB", 5));
  EXPECT_EQ(g.status().code(), absl::StatusCode::kNotFound) << g.status();
  EXPECT_NE(g.status().message().find("model 'a' is not loaded; loaded models: b"),
            std::string::npos)
      << g.status();
  EXPECT_EQ(server->registry()->Resident("a"), 1) << "still finishing its stream";
  auto models = client.ListModels();
  ASSERT_TRUE(models.ok());
  ASSERT_EQ(models->models_size(), 1);
  EXPECT_EQ(models->models(0).name(), "b");

  gates.Of(1)->Release();
  stream.Join();
  EXPECT_TRUE(stream.status().ok()) << stream.status();
  EXPECT_EQ(stream.text(), ReferenceGreedy(VersionShape(1), "AB", 300));
  EXPECT_TRUE(Eventually([&] { return server->registry()->Resident("a") == 0; }));
  g = client.GenerateText(Greedy("b", "AB", 5));
  EXPECT_TRUE(g.ok()) << g.status();
}

TEST(ModelRepositoryTest, KeepVersionsMakesThemPinnable) {
  TestRepository repo;
  repo.Publish(kM, 1);
  repo.Publish(kM, 2);
  ServerOptions o = RepoServerOptions(repo.path());
  o.repository.keep_versions = 2;
  auto server = StartServer(o);
  ASSERT_NE(server, nullptr);
  LanguageModelClient client(absl::StrCat("127.0.0.1:", server->port()));

  auto models = client.ListModels();
  ASSERT_TRUE(models.ok());
  ASSERT_EQ(models->models_size(), 1);
  EXPECT_EQ(models->models(0).version(), 2);
  EXPECT_EQ(std::vector<int64_t>(models->models(0).loaded_versions().begin(),
                                 models->models(0).loaded_versions().end()),
            (std::vector<int64_t>{2, 1}));

  for (int64_t pin : {0, 1, 2}) {
    SCOPED_TRACE(absl::StrCat("model_version ", pin));
    const int64_t ran = pin == 0 ? 2 : pin;
    auto g = client.GenerateText(Greedy(kM, "BA", 30, pin));
    ASSERT_TRUE(g.ok()) << g.status();
    EXPECT_EQ(g->text, ReferenceGreedy(VersionShape(ran), "BA", 30));
    EXPECT_EQ(g->last.model_version(), ran);
    v1::ScoreRequest score;
    score.set_model(kM);
    score.set_text("ABAB");
    score.set_model_version(pin);
    auto s = client.Score(score);
    ASSERT_TRUE(s.ok()) << s.status();
    EXPECT_EQ(s->model_version(), ran);
    v1::EmbedRequest embed;
    embed.set_model(kM);
    embed.set_text("ABAB");
    embed.set_model_version(pin);
    auto e = client.Embed(embed);
    ASSERT_TRUE(e.ok()) << e.status();
    EXPECT_EQ(e->model_version(), ran);
  }
  auto missing = client.GenerateText(Greedy(kM, "BA", 3, 7));
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find(
                "model_version 7 of model 'm' is not loaded; loaded versions: 2, 1"),
            std::string::npos)
      << missing.status();
  auto negative = client.GenerateText(Greedy(kM, "BA", 3, -1));
  EXPECT_EQ(negative.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(negative.status().message().find("model_version -1"), std::string::npos);

  // Version 3: the two newest stay pinnable, version 1 no longer.
  repo.Publish(kM, 3);
  ASSERT_TRUE(server->repository()->RescanNow().ok());
  EXPECT_EQ(server->registry()->LoadedVersions(kM), (std::vector<int64_t>{3, 2}));
  auto gone = client.GenerateText(Greedy(kM, "BA", 3, 1));
  EXPECT_EQ(gone.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(gone.status().message().find("loaded versions: 3, 2"), std::string::npos)
      << gone.status();
}

TEST(ModelRepositoryTest, AStateContinuesOnlyOnTheVersionThatMadeIt) {
  TestRepository repo;
  repo.Publish(kM, 1);
  repo.Publish(kM, 2);
  ServerOptions o = RepoServerOptions(repo.path());
  o.repository.keep_versions = 2;
  auto server = StartServer(o);
  ASSERT_NE(server, nullptr);
  LanguageModelClient client(absl::StrCat("127.0.0.1:", server->port()));

  v1::GenerateRequest first = Greedy(kM, "AB", 5, 1);
  first.set_return_state(true);
  auto made = client.GenerateText(first);
  ASSERT_TRUE(made.ok()) << made.status();
  ASSERT_FALSE(made->last.state().empty());
  for (int64_t pin : {int64_t{0}, int64_t{2}}) {  // the serving version is 2
    v1::GenerateRequest next = Greedy(kM, "", 5, pin);
    next.set_state(made->last.state());
    auto refused = client.GenerateText(next);
    EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument) << refused.status();
    EXPECT_NE(refused.status().message().find("state"), std::string::npos) << refused.status();
  }
  v1::GenerateRequest next = Greedy(kM, "", 5, 1);
  next.set_state(made->last.state());
  auto continued = client.GenerateText(next);
  ASSERT_TRUE(continued.ok()) << continued.status();
  EXPECT_EQ(made->text + continued->text, ReferenceGreedy(VersionShape(1), "AB", 10));
}

TEST(ModelRepositoryTest, AThirdVersionWaitsUntilTheOldOneIsUnloaded) {
  TestRepository repo;
  repo.Publish(kM, 1);
  ServerOptions o = RepoServerOptions(repo.path());
  VersionGates gates;
  gates.Install(&o);
  auto server = StartServer(o);
  ASSERT_NE(server, nullptr);
  LanguageModelClient client(absl::StrCat("127.0.0.1:", server->port()));

  gates.Of(1)->Wedge();
  absl::BlockingCounter started(1);
  LiveStream on_v1(&client, Greedy(kM, "AB", 200), &started);
  started.Wait();
  gates.Of(1)->AwaitWedgedStep();
  repo.Publish(kM, 2);
  ASSERT_TRUE(server->repository()->RescanNow().ok());
  EXPECT_EQ(server->registry()->LoadedVersions(kM), std::vector<int64_t>{2});
  repo.Publish(kM, 3);
  ASSERT_TRUE(server->repository()->RescanNow().ok());
  // Versions 1 (finishing its stream) and 2 are resident: 3 waits.
  EXPECT_EQ(server->registry()->LoadedVersions(kM), std::vector<int64_t>{2});
  EXPECT_EQ(server->registry()->Resident(kM), 2);

  gates.Of(1)->Release();
  on_v1.Join();
  EXPECT_TRUE(on_v1.status().ok()) << on_v1.status();
  EXPECT_EQ(on_v1.text(), ReferenceGreedy(VersionShape(1), "AB", 200));
  // Unloading version 1 lets version 3 in (no further signal needed).
  EXPECT_TRUE(Eventually([&] {
    return server->registry()->LoadedVersions(kM) == std::vector<int64_t>{3};
  }));
  EXPECT_TRUE(Eventually([&] { return server->registry()->Resident(kM) == 1; }));
}

TEST(ModelRepositoryTest, StormOfRescansWhileFilesChange) {
  TestRepository repo;
  repo.Publish(kM, 1);
  ServerOptions o = RepoServerOptions(repo.path());
  o.repository.poll_interval = absl::Milliseconds(1);  // the thread scans all the time too
  auto server = StartServer(o);
  ASSERT_NE(server, nullptr);
  LanguageModelClient client(absl::StrCat("127.0.0.1:", server->port()));
  constexpr int kLast = 6;
  std::map<int64_t, std::string> expected;
  for (int64_t v = 1; v <= kLast; ++v) expected[v] = ReferenceGreedy(VersionShape(v), "AB", 40);

  std::atomic<bool> done{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; ++t) {
    threads.emplace_back([&] {
      while (!done.load()) {
        server->RequestRescan();
        absl::SleepFor(absl::Microseconds(200));  // pacing, not synchronization
      }
    });
  }
  threads.emplace_back([&] {
    while (!done.load()) EXPECT_TRUE(server->repository()->RescanNow().ok());
  });
  std::atomic<int> requests{0};
  std::set<int64_t> seen;
  std::thread checker([&] {
    while (!done.load()) {
      auto g = client.GenerateText(Greedy(kM, "AB", 40));
      EXPECT_TRUE(g.ok()) << g.status();
      if (!g.ok()) continue;
      const int64_t v = g->last.model_version();
      EXPECT_TRUE(expected.count(v)) << v;
      EXPECT_EQ(g->text, expected[v]) << "version " << v;
      seen.insert(v);
      ++requests;
    }
  });
  // Versions written in place, file by file (scans see them half written),
  // one removed again, one broken.
  for (int64_t v = 2; v < kLast; ++v) {
    if (v == 3) {
      repo.PublishBroken(kM, v);
    } else {
      repo.WriteInPlace(kM, v);
    }
    if (v == 4) std::filesystem::remove_all(repo.VersionDir(kM, v));
    const int before = requests.load();
    EXPECT_TRUE(Eventually([&] { return requests.load() >= before + 3; }));
  }
  repo.Publish(kM, kLast);
  EXPECT_TRUE(server->repository()->RescanNow().ok());
  // (It may wait for an older version to finish a request first.)
  EXPECT_TRUE(Eventually([&] {
    return server->registry()->LoadedVersions(kM) == std::vector<int64_t>{kLast};
  }));
  const int before = requests.load();
  EXPECT_TRUE(Eventually([&] { return requests.load() >= before + 3; }));
  done = true;
  for (auto& t : threads) t.join();
  checker.join();
  EXPECT_EQ(seen.count(kLast), 1u);
  EXPECT_EQ(seen.count(3), 0u) << "the broken version never served";
  auto g = client.GenerateText(Greedy(kM, "AB", 40));
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_EQ(g->text, expected[kLast]);
  EXPECT_TRUE(Eventually([&] { return server->registry()->Resident(kM) == 1; }));
}

TEST(ModelRepositoryTest, MemoryReturnsToOneVersionAfterTheSwap) {
  // ~50 MB of f32 weights per version, so a version shows in RSS.
  RandomPackageShape big = TinyShape();
  big.hidden_size = 1024;
  auto shape = [&](int64_t v) {
    RandomPackageShape s = big;
    s.seed = 1000 + v;
    return s;
  };
  const int64_t weights_bytes = RandomPackage(big).ParameterCount() * 4;
  TestRepository repo;
  repo.Publish(kM, 1, shape(1));
  ServerOptions o = RepoServerOptions(repo.path());
  VersionGates gates;
  gates.Install(&o);
  auto server = StartServer(o);
  ASSERT_NE(server, nullptr);
  LanguageModelClient client(absl::StrCat("127.0.0.1:", server->port()));
  ASSERT_TRUE(client.GenerateText(Greedy(kM, "AB", 5)).ok());
  const int64_t one_version = ResidentBytes();

  gates.Of(1)->Wedge();
  absl::BlockingCounter started(1);
  LiveStream on_v1(&client, Greedy(kM, "AB", 20), &started);
  started.Wait();
  gates.Of(1)->AwaitWedgedStep();
  repo.Publish(kM, 2, shape(2));
  ASSERT_TRUE(server->repository()->RescanNow().ok());
  ASSERT_EQ(server->registry()->Resident(kM), 2);
  const int64_t two_versions = ResidentBytes();
  gates.Of(1)->Release();
  on_v1.Join();
  EXPECT_TRUE(on_v1.status().ok());
  ASSERT_TRUE(Eventually([&] { return server->registry()->Resident(kM) == 1; }));
  auto g = client.GenerateText(Greedy(kM, "AB", 5));
  ASSERT_TRUE(g.ok());
  EXPECT_EQ(g->last.model_version(), 2);
  const int64_t after = ResidentBytes();
  std::printf("weights %.1f MiB; RSS one version %.1f MiB, two %.1f MiB, after the swap %.1f MiB\n",
              weights_bytes / 1048576.0, one_version / 1048576.0, two_versions / 1048576.0,
              after / 1048576.0);
  if (kRssMeaningful) {
    EXPECT_GT(two_versions - one_version, weights_bytes / 2) << "the second version shows";
    EXPECT_LT(after - one_version, weights_bytes / 2) << "the first version was freed";
  }
}

// The share of the cores ThreadsPerModel gives each of `models` models when
// lstmserve runs with --threads 0: all of them (0) for one model.
int Share(int models) {
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  return models == 1 ? 0 : std::max(1, cores / models);
}

TEST(ModelRepositoryTest, TheCoresAreSplitAgainWhenModelsComeAndGo) {
  TestRepository repo;
  repo.Publish("a", 1);
  ServerOptions o = RepoServerOptions(repo.path());
  o.loading.engine.threads = 0;  // all cores, split over the models
  auto server = StartServer(o);
  ASSERT_NE(server, nullptr);
  ModelRepository* r = server->repository();
  EXPECT_EQ(r->ThreadsOf("a"), Share(1));

  // A model added later: the one already loaded shrinks to the new share.
  repo.Publish("b", 1);
  ASSERT_TRUE(r->RescanNow().ok());
  EXPECT_EQ(r->ThreadsOf("a"), Share(2));
  EXPECT_EQ(r->ThreadsOf("b"), Share(2));

  // A new version of a takes a's share too.
  repo.Publish("a", 2);
  ASSERT_TRUE(r->RescanNow().ok());
  EXPECT_EQ(r->ThreadsOf("a"), Share(2));

  // b leaves: a gets the whole machine back.
  std::filesystem::remove_all(absl::StrCat(repo.path(), "/b"));
  ASSERT_TRUE(r->RescanNow().ok());
  EXPECT_EQ(r->ThreadsOf("a"), Share(1));

  LanguageModelClient client(absl::StrCat("127.0.0.1:", server->port()));
  auto g = client.GenerateText(Greedy("a", "AB", 3));
  EXPECT_TRUE(g.ok()) << g.status();
}

TEST(ModelRepositoryTest, ModelsGivenDirectlyShareTheCoresWithTheRepository) {
  TestRepository repo;
  repo.Publish("a", 1);
  ServerOptions o = RepoServerOptions(repo.path());
  o.loading.engine.threads = 0;
  // --model f=DIR beside the repository.
  auto fixed = LoadEngines({{"f", repo.VersionDir("a", 1)}}, EngineKind::kReference,
                           EngineOptions());
  ASSERT_TRUE(fixed.ok()) << fixed.status();
  auto started = LanguageModelServer::Start(o, *std::move(fixed));
  ASSERT_TRUE(started.ok()) << started.status();
  auto server = *std::move(started);
  EXPECT_EQ(server->repository()->ThreadsOf("f"), Share(2));
  EXPECT_EQ(server->repository()->ThreadsOf("a"), Share(2));
  LanguageModelClient client(absl::StrCat("127.0.0.1:", server->port()));
  auto g = client.GenerateText(Greedy("f", "AB", 3));
  EXPECT_TRUE(g.ok()) << g.status();
}

TEST(ModelRepositoryTest, StartFailsWithoutAnyServableModel) {
  TestRepository repo;
  repo.Publish(kM, 1);
  repo.TruncateWeights(kM, 1);
  auto server = LanguageModelServer::Start(RepoServerOptions(repo.path()), {});
  EXPECT_EQ(server.status().code(), absl::StatusCode::kInvalidArgument);
  auto missing = LanguageModelServer::Start(RepoServerOptions(repo.path() + "/nope"), {});
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound) << missing.status();
}

TEST(ModelRepositoryTest, ListingSkipsStagingAndNonVersionEntries) {
  TestRepository repo;
  repo.Publish(kM, 1);
  std::filesystem::create_directories(repo.path() + "/m/.staging-2");
  std::filesystem::create_directories(repo.path() + "/m/0");
  std::filesystem::create_directories(repo.path() + "/m/v3");
  std::filesystem::create_directories(repo.path() + "/.hidden/1");
  WriteFileOrDie(repo.path() + "/m/4", "a file, not a directory");
  auto listing = ListRepository(repo.path());
  ASSERT_TRUE(listing.ok()) << listing.status();
  ASSERT_EQ(listing->size(), 1u);
  ASSERT_EQ(listing->at(kM).size(), 1u);
  EXPECT_EQ(listing->at(kM).begin()->first, 1);
}

}  // namespace
}  // namespace lstmserve::testing
