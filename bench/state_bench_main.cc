// state_bench: what portable states and the prefix-state cache save, measured
// side by side in one run and one process on a random char model (default
// 2x512, oneDNN f32), each figure the median of --repeats:
//   1. time to first token of a prompt whose first --cached_chars characters
//      are in the prefix cache, versus the same-length prompt cold;
//   2. the next turn of a --cached_chars-character conversation continued
//      from the client-held state, versus resending the whole conversation
//      (to a replica whose cache does not hold it: cold);
//   3. generation throughput (--streams closed-loop streams of distinct
//      prompts, so the cache is queried and filled but never hit) with the
//      cache on versus off, alternating runs.
// Time to first token is the client's: from sending the request to
// receiving the first token.
//   state_bench --repeats 7
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <iostream>
#include <random>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/client.h"
#include "models/engine_factory.h"
#include "server/prefix_cache.h"
#include "server/server.h"
#include "testing/random_package.h"

ABSL_FLAG(std::string, engine, "onednn", "Engine: onednn or reference.");
ABSL_FLAG(int, vocab, 65, "Vocabulary size (char model).");
ABSL_FLAG(int, embedding, 64, "Embedding width.");
ABSL_FLAG(int, hidden, 512, "Hidden size.");
ABSL_FLAG(int, layers, 2, "LSTM layers.");
ABSL_FLAG(int, threads, 0, "Engine compute threads (0 = all cores).");
ABSL_FLAG(int, cached_chars, 6000, "Characters of cached prompt / conversation.");
ABSL_FLAG(int, new_chars, 40, "Characters after the cached part (the question / next turn).");
ABSL_FLAG(int, repeats, 7, "Repetitions of each time-to-first-token measurement.");
ABSL_FLAG(int, streams, 32, "Throughput: concurrent streams.");
ABSL_FLAG(int, prompt_chars, 300, "Throughput: prompt length (distinct per request).");
ABSL_FLAG(int, max_tokens, 128, "Throughput: tokens per request.");
ABSL_FLAG(absl::Duration, duration, absl::Seconds(5), "Throughput: length of each run.");
ABSL_FLAG(bool, ttft, true, "Measure 1 and 2 (false: throughput only).");
ABSL_FLAG(int, throughput_runs, 5, "Throughput: runs of each configuration (alternating).");

namespace lstmserve {
namespace {

std::unique_ptr<InferenceEngine> Engine() {
  RandomPackageShape r;
  r.name = "bench";
  r.vocab_size = absl::GetFlag(FLAGS_vocab);
  r.embedding_dim = absl::GetFlag(FLAGS_embedding);
  r.hidden_size = absl::GetFlag(FLAGS_hidden);
  r.num_layers = absl::GetFlag(FLAGS_layers);
  r.scale = 0;
  r.seed = 1;
  EngineKind kind;
  if (!ParseEngineKind(absl::GetFlag(FLAGS_engine), &kind)) std::exit(2);
  EngineOptions options;
  options.threads = absl::GetFlag(FLAGS_threads);
  options.max_batch = 64;
  auto engine = CreateEngine(kind, RandomPackage(r), options);
  if (!engine.ok()) {
    std::cerr << "state_bench: " << engine.status() << "\n";
    std::exit(1);
  }
  return *std::move(engine);
}

std::unique_ptr<LanguageModelServer> Server(int64_t cache_bytes) {
  ServerOptions options;
  options.listen = "127.0.0.1:0";
  options.scheduler.prefix_cache_bytes = cache_bytes;
  options.limits.max_prompt_tokens = 1 << 16;
  std::vector<NamedEngine> engines;
  engines.push_back({"bench", Engine()});
  auto server = LanguageModelServer::Start(options, std::move(engines));
  if (!server.ok()) {
    std::cerr << "state_bench: " << server.status() << "\n";
    std::exit(1);
  }
  return *std::move(server);
}

std::string RandomText(int n, std::mt19937* rng) {
  std::string s;
  // ASCII code points only ('A' .. 'z'): the random char vocabulary starts at 'A'.
  const int v = std::min(absl::GetFlag(FLAGS_vocab), 'z' - 'A' + 1);
  for (int i = 0; i < n; ++i) s += static_cast<char>('A' + (*rng)() % v);
  return s;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

struct Result {
  double ttft_ms = 0;
  std::string state;
};

// Client-side time to the first token of a one-token generation.
Result FirstToken(LanguageModelClient& client, const std::string& prompt,
                  const std::string& state = "", bool return_state = false) {
  v1::GenerateRequest r;
  r.set_model("bench");
  r.set_prompt(prompt);
  r.set_max_tokens(1);
  r.set_temperature(0);
  r.set_state(state);
  r.set_return_state(return_state);
  Result out;
  const absl::Time start = absl::Now();
  bool first = true;
  absl::Status s = client.Generate(r, [&](const v1::GenerateResponse& m) {
    if (first && !m.text().empty()) {
      out.ttft_ms = absl::ToDoubleMilliseconds(absl::Now() - start);
      first = false;
    }
    if (!m.state().empty()) out.state = m.state();
    return true;
  });
  if (!s.ok()) {
    std::cerr << "state_bench: " << s << "\n";
    std::exit(1);
  }
  return out;
}

// CPU seconds of this process (server and client threads) so far.
double CpuSeconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_utime.tv_sec + u.ru_stime.tv_sec + (u.ru_utime.tv_usec + u.ru_stime.tv_usec) * 1e-6;
}

struct Rate {
  double tokens_per_s = 0;
  double cpu_us_per_token = 0;  // process CPU (server + client) per generated token
};

Rate Throughput(LanguageModelClient& client, std::mt19937* rng) {
  const int n = absl::GetFlag(FLAGS_streams);
  std::vector<std::vector<std::string>> prompts(n);
  for (auto& p : prompts) {
    for (int i = 0; i < 64; ++i) p.push_back(RandomText(absl::GetFlag(FLAGS_prompt_chars), rng));
  }
  std::atomic<int64_t> tokens{0};
  std::vector<std::thread> threads;
  const absl::Duration duration = absl::GetFlag(FLAGS_duration);
  const absl::Time start = absl::Now();
  const double cpu_start = CpuSeconds();
  for (int i = 0; i < n; ++i) {
    threads.emplace_back([&, i] {
      for (int k = 0; absl::Now() - start < duration; ++k) {
        v1::GenerateRequest r;
        r.set_model("bench");
        r.set_prompt(prompts[i][k % prompts[i].size()]);
        r.set_max_tokens(absl::GetFlag(FLAGS_max_tokens));
        auto g = client.GenerateText(r);
        if (g.ok()) tokens += g->last.usage().generated_tokens();
      }
    });
  }
  for (auto& t : threads) t.join();
  Rate r;
  r.tokens_per_s = tokens.load() / absl::ToDoubleSeconds(absl::Now() - start);
  r.cpu_us_per_token = (CpuSeconds() - cpu_start) * 1e6 / std::max<int64_t>(1, tokens.load());
  return r;
}

// The cache's own cost per never-hitting request: one Lookup and one Insert
// of a prompt's checkpoints (at 256 and its end), the cache full and evicting.
double CacheOpMicros() {
  const int prompt = absl::GetFlag(FLAGS_prompt_chars);
  PrefixCache cache(SchedulerOptions().prefix_cache_bytes);
  const SequenceState state =
      SequenceState::Zeros(absl::GetFlag(FLAGS_layers), absl::GetFlag(FLAGS_hidden));
  std::mt19937 rng(3);
  std::vector<int32_t> tokens(prompt);
  const int n = 20000;
  SequenceState out;
  const absl::Time start = absl::Now();
  for (int i = 0; i < n; ++i) {
    for (int32_t& t : tokens) t = static_cast<int32_t>(rng() % 58);
    cache.Lookup(tokens, prompt - 1, &out);
    const PrefixCache::Checkpoint c[] = {{std::min(256, prompt), &state}, {prompt, &state}};
    cache.Insert(tokens, c);
  }
  return absl::ToDoubleMicroseconds(absl::Now() - start) / n;
}

int Run() {
  std::mt19937 rng(1);
  const int cached = absl::GetFlag(FLAGS_cached_chars), fresh = absl::GetFlag(FLAGS_new_chars);
  const int repeats = absl::GetFlag(FLAGS_repeats);
  auto on = Server(SchedulerOptions().prefix_cache_bytes);
  auto off = Server(0);
  LanguageModelClient on_client(absl::StrCat("127.0.0.1:", on->port()));
  LanguageModelClient off_client(absl::StrCat("127.0.0.1:", off->port()));

  // 1. Cached prefix versus cold, same lengths; interleaved.
  std::vector<double> cold = {0}, warm = {1}, resend = {0}, continued = {1};
  if (absl::GetFlag(FLAGS_ttft)) {
    cold.clear();
    warm.clear();
    resend.clear();
    continued.clear();
  }
  for (int i = 0; i < (absl::GetFlag(FLAGS_ttft) ? repeats : 0); ++i) {
    const std::string document = RandomText(cached, &rng);
    cold.push_back(FirstToken(on_client, RandomText(cached, &rng) + RandomText(fresh, &rng)).ttft_ms);
    FirstToken(on_client, document);  // caches the document's states
    warm.push_back(FirstToken(on_client, document + RandomText(fresh, &rng)).ttft_ms);
  }
  // 2. Client-held state versus resending the conversation (cold replica).
  for (int i = 0; i < (absl::GetFlag(FLAGS_ttft) ? repeats : 0); ++i) {
    const std::string conversation = RandomText(cached, &rng);
    const Result r = FirstToken(off_client, conversation, "", true);
    const std::string turn = RandomText(fresh, &rng);
    continued.push_back(FirstToken(off_client, turn, r.state).ttft_ms);
    resend.push_back(FirstToken(off_client, conversation + turn).ttft_ms);
  }
  // 3. Throughput, cache on (never hit) versus off, alternating runs.
  std::vector<double> tput_on, tput_off, cpu_on, cpu_off;
  for (int i = 0; i < absl::GetFlag(FLAGS_throughput_runs); ++i) {
    Rate r = Throughput(off_client, &rng);
    tput_off.push_back(r.tokens_per_s);
    cpu_off.push_back(r.cpu_us_per_token);
    r = Throughput(on_client, &rng);
    tput_on.push_back(r.tokens_per_s);
    cpu_on.push_back(r.cpu_us_per_token);
  }
  const double cache_op_us = CacheOpMicros();
  std::cout << absl::StrFormat(
      "cache cost per never-hitting %d-token request (lookup + insert of 2 states, cache "
      "full): %.1f us\n",
      absl::GetFlag(FLAGS_prompt_chars), cache_op_us);
  std::cout << absl::StrFormat(
      "model char V=%d E=%d %dx%d, engine %s; medians of %d\n"
      "TTFT, %d cached + %d new chars:   cold %8.2f ms   cached %8.2f ms   (%.1fx)\n"
      "next turn after %d chars:       resend %8.2f ms   state %9.2f ms   (%.1fx)\n"
      "throughput, %d streams, distinct %d-char prompts, %d tokens: cache off %.0f "
      "tokens/s, on (never hit) %.0f tokens/s (on/off %.3f); CPU per token off %.1f us, on "
      "%.1f us (on/off %.3f); runs off:",
      absl::GetFlag(FLAGS_vocab), absl::GetFlag(FLAGS_embedding), absl::GetFlag(FLAGS_layers),
      absl::GetFlag(FLAGS_hidden), absl::GetFlag(FLAGS_engine), repeats, cached, fresh,
      Median(cold), Median(warm), Median(cold) / Median(warm), cached, Median(resend),
      Median(continued), Median(resend) / Median(continued), absl::GetFlag(FLAGS_streams),
      absl::GetFlag(FLAGS_prompt_chars), absl::GetFlag(FLAGS_max_tokens), Median(tput_off),
      Median(tput_on), Median(tput_on) / Median(tput_off), Median(cpu_off), Median(cpu_on),
      Median(cpu_on) / Median(cpu_off));
  for (double t : tput_off) std::cout << absl::StrFormat(" %.0f", t);
  std::cout << "; on:";
  for (double t : tput_on) std::cout << absl::StrFormat(" %.0f", t);
  std::cout << "\n";
  on->Shutdown(absl::ZeroDuration());
  off->Shutdown(absl::ZeroDuration());
  return 0;
}

}  // namespace
}  // namespace lstmserve

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage("Measures the prefix-state cache and portable states.");
  absl::ParseCommandLine(argc, argv);
  return lstmserve::Run();
}
