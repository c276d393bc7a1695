// serving_bench: the server's overhead over its engine, measured in one run
// and one process on the same random model:
//   1. the engine alone: batch-N Step throughput (tokens/s) and the prefill
//      time of the benchmark prompt;
//   2. an in-process lstmserve with that engine (fresh copy) on 127.0.0.1,
//      driven by N closed-loop client streams (the client shares the CPU),
//      and one request on the idle server for time to first token.
//   serving_bench --engine onednn --layers 3 --hidden 512 --streams 64
// --package DIR measures a model package instead of a random model (its
// vocabulary must contain 'A'..'Z' for the prompt, as the demo model's does);
// --engine_only stops after step 1. Step 1 also reports the engine's CPU time
// per token (its thread's CPU clock: with --threads 1 that is all of it), to
// compare with the server's (bench/serving_cpu.sh).
#include <time.h>

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
#include "client/latency_stats.h"
#include "models/engine_factory.h"
#include "models/model_package.h"
#include "server/server.h"
#include "testing/random_package.h"

ABSL_FLAG(std::string, engine, "onednn", "Engine: onednn or reference.");
ABSL_FLAG(int, vocab, 65, "Vocabulary size.");
ABSL_FLAG(bool, word, false,
          "A word-level model (words \"<eos>\", \"<unk>\", \"w2\", ...) instead of a char model.");
ABSL_FLAG(int, embedding, 64, "Embedding width.");
ABSL_FLAG(int, hidden, 512, "Hidden size.");
ABSL_FLAG(int, layers, 3, "LSTM layers.");
ABSL_FLAG(int, streams, 64, "Concurrent client streams (and the engine batch measured).");
ABSL_FLAG(int, max_tokens, 256, "Tokens per request.");
ABSL_FLAG(int, prompt_tokens, 32, "Prompt length.");
ABSL_FLAG(int, threads, 0, "Engine compute threads (0 = all cores).");
ABSL_FLAG(int, step_join_max_prompt, lstmserve::SchedulerOptions().step_join_max_prompt,
          "Server option: longest prompt joining a busy batch through steps (0: always prefill).");
ABSL_FLAG(std::string, package, "", "Model package directory (default: a random model of "
          "--vocab/--embedding/--hidden/--layers).");
ABSL_FLAG(bool, engine_only, false, "Measure the engine alone (step 1) and stop.");
ABSL_FLAG(absl::Duration, duration, absl::Seconds(10), "Length of each measurement.");

namespace lstmserve {
namespace {

ModelPackage BenchPackage() {
  if (const std::string dir = absl::GetFlag(FLAGS_package); !dir.empty()) {
    auto package = LoadModelPackage(dir);
    if (!package.ok()) {
      std::cerr << "serving_bench: " << package.status() << "\n";
      std::exit(1);
    }
    return *std::move(package);
  }
  RandomPackageShape r;
  r.name = "bench";
  r.vocab_size = absl::GetFlag(FLAGS_vocab);
  r.word_vocab = absl::GetFlag(FLAGS_word);
  r.embedding_dim = absl::GetFlag(FLAGS_embedding);
  r.hidden_size = absl::GetFlag(FLAGS_hidden);
  r.num_layers = absl::GetFlag(FLAGS_layers);
  r.scale = 0;  // PyTorch's init range
  r.seed = 1;
  return RandomPackage(r);
}

std::unique_ptr<InferenceEngine> Engine(int max_batch) {
  EngineKind kind;
  if (!ParseEngineKind(absl::GetFlag(FLAGS_engine), &kind)) std::exit(2);
  EngineOptions options;
  options.threads = absl::GetFlag(FLAGS_threads);
  options.max_batch = max_batch;
  auto engine = CreateEngine(kind, BenchPackage(), options);
  if (!engine.ok()) {
    std::cerr << "serving_bench: " << engine.status() << "\n";
    std::exit(1);
  }
  return *std::move(engine);
}

// The benchmark prompt's token ids and text: 'A' + i % 26 for a char
// model, words "w2" ... "w27" for a word model.
std::vector<int32_t> PromptIds() {
  std::vector<int32_t> ids;
  for (int i = 0; i < absl::GetFlag(FLAGS_prompt_tokens); ++i) {
    ids.push_back(absl::GetFlag(FLAGS_word) ? 2 + i % 26 : i % 26);
  }
  return ids;
}

// CPU time of the calling thread, seconds.
double ThreadCpuSeconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

std::string Prompt() {
  std::string p;
  for (int32_t id : PromptIds()) {
    if (absl::GetFlag(FLAGS_word)) {
      absl::StrAppend(&p, p.empty() ? "" : " ", "w", id);
    } else {
      p += static_cast<char>('A' + id);
    }
  }
  return p;
}

int Run() {
  const int n = absl::GetFlag(FLAGS_streams);
  const absl::Duration duration = absl::GetFlag(FLAGS_duration);
  // 1. The engine alone.
  double engine_tok_s = 0, prefill_ms = 0, engine_cpu_us = 0;
  // On its own thread, as the server runs engines: OpenMP keeps a thread pool
  // per thread that starts a team until that thread exits, and a pool left on
  // main would slow the server's engine below (see ReorderSingleThreaded).
  std::thread([&] {
    auto engine = Engine(n);
    const ModelConfig& c = engine->config();
    std::vector<SequenceState> states(
        n, SequenceState::Zeros(c.num_layers, c.hidden_size, c.proj_size));
    std::vector<SequenceState*> ptrs;
    for (auto& s : states) ptrs.push_back(&s);
    std::vector<int32_t> tokens(n, 1);
    std::vector<float> logprobs(static_cast<size_t>(n) * c.vocab_size);
    (void)engine->Step(tokens, ptrs, logprobs.data());
    int64_t steps = 0;
    const absl::Time start = absl::Now();
    const double cpu_start = ThreadCpuSeconds();
    // Varied input tokens, as in generation (a constant input drives the
    // states to a fixed point, which is not what serving computes).
    std::mt19937 rng(1);
    while (absl::Now() - start < duration) {
      for (int32_t& t : tokens) t = static_cast<int32_t>(rng() % c.vocab_size);
      (void)engine->Step(tokens, ptrs, logprobs.data());
      ++steps;
    }
    engine_tok_s = steps * n / absl::ToDoubleSeconds(absl::Now() - start);
    engine_cpu_us = (ThreadCpuSeconds() - cpu_start) * 1e6 / (steps * n);
    const std::vector<int32_t> prompt = PromptIds();  // the server's prompt
    LatencyStats prefill;
    for (int i = 0; i < 20; ++i) {
      SequenceState s = SequenceState::Zeros(c.num_layers, c.hidden_size, c.proj_size);
      const absl::Time t = absl::Now();
      (void)engine->Prefill({PrefillItem{prompt, &s, logprobs.data(), nullptr}});
      prefill.Add(absl::ToDoubleSeconds(absl::Now() - t));
    }
    prefill_ms = prefill.Percentile(50) * 1e3;
  }).join();
  if (absl::GetFlag(FLAGS_engine_only)) {
    std::cout << absl::StrFormat(
        "engine alone, batch-%d Step:   %10.1f tokens/s, %.2f us CPU per token (engine thread)\n",
        n, engine_tok_s, engine_cpu_us);
    return 0;
  }
  // 2. The server with a fresh engine.
  ServerOptions options;
  options.listen = "127.0.0.1:0";
  options.scheduler.max_batch = n;
  options.scheduler.step_join_max_prompt = absl::GetFlag(FLAGS_step_join_max_prompt);
  std::vector<NamedEngine> engines;
  engines.push_back({"bench", Engine(n)});
  auto server = LanguageModelServer::Start(options, std::move(engines));
  if (!server.ok()) {
    std::cerr << "serving_bench: " << server.status() << "\n";
    return 1;
  }
  LanguageModelClient client(absl::StrCat("127.0.0.1:", (*server)->port()));
  v1::GenerateRequest request;
  request.set_model("bench");
  request.set_prompt(Prompt());
  request.set_max_tokens(absl::GetFlag(FLAGS_max_tokens));
  // Idle time to first token (server-side, from usage), median of 20.
  LatencyStats idle_ttft;
  for (int i = 0; i < 20; ++i) {
    v1::GenerateRequest one = request;
    one.set_max_tokens(1);
    auto g = client.GenerateText(one);
    if (!g.ok()) {
      std::cerr << "serving_bench: " << g.status() << "\n";
      return 1;
    }
    const auto& d = g->last.usage().time_to_first_token();
    idle_ttft.Add(d.seconds() + d.nanos() * 1e-9);
  }
  std::atomic<int64_t> tokens{0}, errors{0};
  std::vector<std::thread> threads;
  const absl::Time start = absl::Now();
  for (int i = 0; i < n; ++i) {
    threads.emplace_back([&] {
      while (absl::Now() - start < duration) {
        auto g = client.GenerateText(request);
        if (g.ok()) {
          tokens += g->last.usage().generated_tokens();
        } else {
          ++errors;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  const double served_tok_s = tokens.load() / absl::ToDoubleSeconds(absl::Now() - start);
  (*server)->Shutdown(absl::ZeroDuration());
  std::cout << absl::StrFormat(
      "model %s V=%d E=%d %dx%d, engine %s, %d streams, %d tokens/request\n"
      "engine alone, batch-%d Step:   %10.1f tokens/s, %.2f us CPU per token (engine thread)\n"
      "served, %d streams:            %10.1f tokens/s (%.1f%% of the engine; %d errors)\n"
      "engine prefill of %d tokens:  %10.3f ms\n"
      "idle server time to 1st token: %10.3f ms (server-measured, median of 20)\n",
      absl::GetFlag(FLAGS_word) ? "word" : "char", absl::GetFlag(FLAGS_vocab),
      absl::GetFlag(FLAGS_embedding), absl::GetFlag(FLAGS_layers),
      absl::GetFlag(FLAGS_hidden), absl::GetFlag(FLAGS_engine), n,
      absl::GetFlag(FLAGS_max_tokens), n, engine_tok_s, engine_cpu_us, n, served_tok_s,
      100.0 * served_tok_s / engine_tok_s, errors.load(), absl::GetFlag(FLAGS_prompt_tokens),
      prefill_ms, idle_ttft.Percentile(50) * 1e3);
  return 0;
}

}  // namespace
}  // namespace lstmserve

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage("Measures lstmserve's throughput against its engine's.");
  absl::ParseCommandLine(argc, argv);
  return lstmserve::Run();
}
