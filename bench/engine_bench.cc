// engine_bench: decode and prefill speed of the oneDNN engine, next to the
// bare oneDNN LSTM primitive (same shapes, no embedding, head or state
// copies), the reference engine (small batches) and, when given its JSON,
// PyTorch (bench/pytorch_decode.py). Prints markdown tables with ratios.
// bench/run_engine_bench.sh runs everything. Shape proj2x512p128 (a
// projected LSTM, proj_size 128; not in the default list) runs the engines
// alone: the bare primitive has no projection.
//
// Timing: each figure is the median over --reps runs of a loop that lasts at
// least --min_time seconds (after one untimed warm-up call, which also
// creates the primitives). Weights are random: speed does not depend on them.
#include <malloc.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "bench/bare_lstm.h"
#include "models/engine_factory.h"
#include "models/model_package.h"
#include "testing/random_package.h"
#include "nlohmann/json.hpp"

ABSL_FLAG(std::string, shapes, "demo,char3x512,word2x650,big4x1024", "shapes to run");
ABSL_FLAG(std::string, precisions, "f32,bf16,int8", "engine precisions");
ABSL_FLAG(std::string, batches, "1,8,32,64,256", "decode batch sizes");
ABSL_FLAG(int, threads, 0, "compute threads (0 = all cores)");
ABSL_FLAG(double, min_time, 0.3, "seconds per timed run (large shapes: at least 2 calls)");
ABSL_FLAG(int, reps, 3, "timed runs per figure (median reported)");
ABSL_FLAG(int, prompt, 512, "prefill prompt length");
ABSL_FLAG(int, reference_max_batch, 8, "largest batch for the (slow) reference engine");
ABSL_FLAG(std::string, demo_model, "", "demo package dir (default <repo>/models/shakespeare)");
ABSL_FLAG(std::string, pytorch_json, "", "output of bench/pytorch_decode.py, to compare");
ABSL_FLAG(std::string, markdown, "", "also write the tables to this file");
ABSL_FLAG(std::string, clock, "wall", "what TimePerCall measures: wall (elapsed time) or cpu "
          "(the process's CPU time: robust on a machine shared with busy processes, exact "
          "with --threads=1; counts all threads' time otherwise)");
ABSL_FLAG(std::string, json, "", "also write the figures as JSON to this file (shape -> system -> "
          "step_us_b1, decode_tok_s by batch, prefill_tok_s, rss_mb)");

namespace lstmserve {
namespace {

struct Shape {
  std::string name;
  int V, E, H, L;
  int P = 0;  // proj_size; projected shapes have no bare-primitive baseline
};

// Figures for one (shape, system, precision).
struct Result {
  std::map<int, double> decode_tok_s;  // by batch
  double step_us_b1 = 0.0;
  double prefill_tok_s = 0.0;
  double rss_mb = 0.0;
  std::map<int, double> first_step_us;  // the first Step at a new batch size
};

double Seconds(std::chrono::steady_clock::time_point a, std::chrono::steady_clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// Now in seconds on the --clock chosen.
double ClockSeconds() {
  if (absl::GetFlag(FLAGS_clock) == "cpu") {
    timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
  }
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Median seconds per call of each of `fns`, timed in turn within each run
// so that they see the same machine load (see the file comment).
std::vector<double> TimePerCall(const std::vector<std::function<void()>>& fns) {
  for (const auto& fn : fns) fn();  // warm-up: creates primitives, touches buffers
  std::vector<std::vector<double>> per_call(fns.size());
  for (int r = 0; r < absl::GetFlag(FLAGS_reps); ++r) {
    for (size_t i = 0; i < fns.size(); ++i) {
      const double t0 = ClockSeconds();
      int n = 0;
      double elapsed = 0.0;
      do {
        fns[i]();
        ++n;
        elapsed = ClockSeconds() - t0;
      } while (elapsed < absl::GetFlag(FLAGS_min_time) || n < 2);
      per_call[i].push_back(elapsed / n);
    }
  }
  std::vector<double> medians;
  for (auto& v : per_call) {
    std::sort(v.begin(), v.end());
    medians.push_back(v[v.size() / 2]);
  }
  return medians;
}

double RssMb() {
  malloc_trim(0);
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;
  }
  return 0.0;
}

ModelPackage RandomPackage(const Shape& s) {
  RandomPackageShape r;
  r.name = s.name;
  r.vocab_size = s.V;
  r.embedding_dim = s.E;
  r.hidden_size = s.H;
  r.num_layers = s.L;
  r.proj_size = s.P;
  r.scale = 0;  // PyTorch's init range
  r.seed = 1;
  return ::lstmserve::RandomPackage(r);
}

std::vector<int> Batches() {
  std::vector<int> out;
  for (absl::string_view b : absl::StrSplit(absl::GetFlag(FLAGS_batches), ',')) {
    out.push_back(std::stoi(std::string(b)));
  }
  return out;
}

// An engine under test, with buffers for one decode batch and one prompt.
class EngineRunner {
 public:
  EngineRunner(const Shape& shape, EngineKind kind, Precision precision, int max_batch)
      : shape_(shape), rss0_(RssMb()) {
    EngineOptions options;
    options.precision = precision;
    options.threads = absl::GetFlag(FLAGS_threads);
    options.max_batch = std::max(1, max_batch);
    auto engine = CreateEngine(kind, RandomPackage(shape), options);
    if (!engine.ok()) {
      std::fprintf(stderr, "%s: %s\n", shape.name.c_str(), engine.status().ToString().c_str());
      return;
    }
    engine_ = *std::move(engine);
    prompt_.resize(absl::GetFlag(FLAGS_prompt));
    for (int32_t& t : prompt_) t = static_cast<int32_t>(rng_() % shape.V);
    last_.resize(shape.V);
  }
  bool ok() const { return engine_ != nullptr; }
  double rss_mb() const { return RssMb() - rss0_; }

  void SetBatch(int N) {
    states_.assign(N, SequenceState::Zeros(shape_.L, shape_.H, shape_.P));
    ptrs_.clear();
    for (auto& s : states_) ptrs_.push_back(&s);
    tokens_.resize(N);
    for (int32_t& t : tokens_) t = static_cast<int32_t>(rng_() % shape_.V);
    logprobs_.resize(static_cast<size_t>(N) * shape_.V);
  }
  void Step() {
    if (!engine_->Step(tokens_, ptrs_, logprobs_.data()).ok()) std::abort();
  }
  void Prefill() {
    SequenceState state = SequenceState::Zeros(shape_.L, shape_.H, shape_.P);
    PrefillItem item{prompt_, &state, last_.data(), nullptr};
    if (!engine_->Prefill(absl::MakeConstSpan(&item, 1)).ok()) std::abort();
  }

 private:
  const Shape shape_;
  const double rss0_;
  std::unique_ptr<InferenceEngine> engine_;
  std::mt19937 rng_{2};
  std::vector<SequenceState> states_;
  std::vector<SequenceState*> ptrs_;
  std::vector<int32_t> tokens_, prompt_;
  std::vector<float> logprobs_, last_;
};

// The engine alone (a projected shape: the bare primitive has no projection).
void MeasureEngineAlone(EngineRunner* runner, Result* engine) {
  for (int N : Batches()) {
    runner->SetBatch(N);
    const auto t0 = std::chrono::steady_clock::now();
    runner->Step();
    engine->first_step_us[N] = Seconds(t0, std::chrono::steady_clock::now()) * 1e6;
    const double sec = TimePerCall({[&] { runner->Step(); }})[0];
    engine->decode_tok_s[N] = N / sec;
    if (N == 1) engine->step_us_b1 = sec * 1e6;
  }
  const int T = absl::GetFlag(FLAGS_prompt);
  engine->prefill_tok_s = T / TimePerCall({[&] { runner->Prefill(); }})[0];
  engine->rss_mb = runner->rss_mb();
}

// The engine at `precision` and the bare primitive, timed in alternation
// (projected shapes: the engine alone).
void MeasureEngineAndBare(const Shape& shape, Precision precision, int max_batch, Result* engine,
                          Result* bare) {
  EngineRunner runner(shape, EngineKind::kOneDnn, precision, max_batch);
  if (!runner.ok()) return;
  if (shape.P > 0) {
    MeasureEngineAlone(&runner, engine);
    return;
  }
  const double rss0 = RssMb();
  bench::BareLstm lstm(shape.E, shape.H, shape.L, precision, absl::GetFlag(FLAGS_threads));
  for (int N : Batches()) {
    runner.SetBatch(N);
    // The first Step at a new N creates that N's primitives.
    const auto t0 = std::chrono::steady_clock::now();
    runner.Step();
    engine->first_step_us[N] = Seconds(t0, std::chrono::steady_clock::now()) * 1e6;
    const std::vector<double> sec = TimePerCall({[&] { runner.Step(); }, [&] { lstm.Run(1, N); }});
    engine->decode_tok_s[N] = N / sec[0];
    bare->decode_tok_s[N] = N / sec[1];
    if (N == 1) {
      engine->step_us_b1 = sec[0] * 1e6;
      bare->step_us_b1 = sec[1] * 1e6;
    }
  }
  const int T = absl::GetFlag(FLAGS_prompt);
  const std::vector<double> sec = TimePerCall({[&] { runner.Prefill(); }, [&] { lstm.Run(T, 1); }});
  engine->prefill_tok_s = T / sec[0];
  bare->prefill_tok_s = T / sec[1];
  bare->rss_mb = RssMb() - rss0;
  engine->rss_mb = runner.rss_mb() - bare->rss_mb;
}

Result MeasureReference(const Shape& shape) {
  Result r;
  const int max_batch = absl::GetFlag(FLAGS_reference_max_batch);
  EngineRunner runner(shape, EngineKind::kReference, Precision::kF32, max_batch);
  if (!runner.ok()) return r;
  for (int N : Batches()) {
    if (N > max_batch) continue;
    runner.SetBatch(N);
    const double sec = TimePerCall({[&] { runner.Step(); }})[0];
    r.decode_tok_s[N] = N / sec;
    if (N == 1) r.step_us_b1 = sec * 1e6;
  }
  r.rss_mb = runner.rss_mb();
  return r;
}

// ---- Tables ----------------------------------------------------------------

std::string Fmt(double v, const char* f = "%.0f") {
  if (v <= 0) return "–";
  char buf[32];
  std::snprintf(buf, sizeof(buf), f, v);
  return buf;
}

std::string Table(const std::vector<Shape>& shapes,
                  const std::map<std::string, std::map<std::string, Result>>& results) {
  const std::vector<int> batches = Batches();
  std::ostringstream out;
  out << "| shape | system | b1 step µs |";
  for (int N : batches) out << " tok/s b" << N << " |";
  out << " prefill tok/s (T=" << absl::GetFlag(FLAGS_prompt) << ") | RSS MB |\n|---|---|---|";
  for (size_t i = 0; i < batches.size(); ++i) out << "---|";
  out << "---|---|\n";
  for (const Shape& s : shapes) {
    auto it = results.find(s.name);
    if (it == results.end()) continue;
    for (const auto& [system, r] : it->second) {
      out << "| " << s.name << " | " << system << " | " << Fmt(r.step_us_b1) << " |";
      for (int N : batches) {
        auto d = r.decode_tok_s.find(N);
        out << " " << (d == r.decode_tok_s.end() ? "–" : Fmt(d->second)) << " |";
      }
      out << " " << Fmt(r.prefill_tok_s) << " | " << Fmt(r.rss_mb, "%.1f") << " |\n";
    }
  }
  // Ratios: engine vs bare primitive (same precision) and vs PyTorch f32.
  out << "\nRatios (decode tokens/s; prefill in the last column):\n\n| shape | ratio |";
  for (int N : batches) out << " b" << N << " |";
  out << " prefill |\n|---|---|";
  for (size_t i = 0; i < batches.size(); ++i) out << "---|";
  out << "---|\n";
  for (const Shape& s : shapes) {
    auto it = results.find(s.name);
    if (it == results.end()) continue;
    const auto& sys = it->second;
    for (const char* p : {"f32", "bf16", "int8"}) {
      const std::string engine = absl::StrCat("engine ", p);
      if (!sys.count(engine)) continue;
      const Result& e = sys.at(engine);
      for (const std::string& base :
           {absl::StrCat("bare primitive ", p), std::string("pytorch f32")}) {
        if (!sys.count(base)) continue;
        const Result& b = sys.at(base);
        out << "| " << s.name << " | " << engine << " / " << base << " |";
        for (int N : batches) {
          auto x = e.decode_tok_s.find(N);
          auto y = b.decode_tok_s.find(N);
          out << " "
              << (x == e.decode_tok_s.end() || y == b.decode_tok_s.end()
                      ? "–"
                      : Fmt(x->second / y->second, "%.2f"))
              << " |";
        }
        out << " " << (b.prefill_tok_s > 0 ? Fmt(e.prefill_tok_s / b.prefill_tok_s, "%.2f") : "–")
            << " |\n";
      }
    }
  }
  out << "\nFirst Step at a new batch size (creates its primitives), µs; compare with the "
         "steady step time (N / tok/s):\n\n";
  for (const Shape& s : shapes) {
    auto it = results.find(s.name);
    if (it == results.end()) continue;
    for (const auto& [system, r] : it->second) {
      if (r.first_step_us.empty()) continue;
      out << "- " << s.name << ", " << system << ":";
      for (const auto& [N, us] : r.first_step_us) {
        out << " b" << N << " " << Fmt(us) << " (steady " << Fmt(1e6 * N / r.decode_tok_s.at(N))
            << ")";
      }
      out << "\n";
    }
  }
  return out.str();
}

int Main() {
  std::string demo = absl::GetFlag(FLAGS_demo_model);
  if (demo.empty()) demo = std::string(LSTMSERVE_SOURCE_DIR) + "/models/shakespeare";
  std::map<std::string, Shape> known = {{"char3x512", {"char3x512", 65, 512, 512, 3}},
                                        {"word2x650", {"word2x650", 10000, 650, 650, 2}},
                                        {"big4x1024", {"big4x1024", 32000, 1024, 1024, 4}},
                                        {"proj2x512p128", {"proj2x512p128", 65, 512, 512, 2, 128}}};
  if (auto pkg = LoadModelPackage(demo); pkg.ok()) {
    const ModelConfig& c = pkg->config;
    known["demo"] = {"demo", c.vocab_size, c.embedding_dim, c.hidden_size, c.num_layers};
  }
  std::vector<Shape> shapes;
  for (absl::string_view name : absl::StrSplit(absl::GetFlag(FLAGS_shapes), ',')) {
    auto it = known.find(std::string(name));
    if (it == known.end()) {
      std::fprintf(stderr, "skipping shape %s (unknown, or demo model absent at %s)\n",
                   std::string(name).c_str(), demo.c_str());
      continue;
    }
    shapes.push_back(it->second);
  }
  nlohmann::json pytorch;
  if (const std::string path = absl::GetFlag(FLAGS_pytorch_json); !path.empty()) {
    std::ifstream in(path);
    pytorch = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
    if (pytorch.is_discarded()) {
      std::fprintf(stderr, "could not parse %s\n", path.c_str());
      pytorch = nlohmann::json();
    }
  }

  const std::vector<int> batches = Batches();
  const int max_batch = batches.empty() ? 1 : *std::max_element(batches.begin(), batches.end());
  std::map<std::string, std::map<std::string, Result>> results;
  for (const Shape& s : shapes) {
    std::fprintf(stderr, "== %s: V=%d E=%d H=%d L=%d P=%d\n", s.name.c_str(), s.V, s.E, s.H, s.L,
                 s.P);
    for (absl::string_view pname : absl::StrSplit(absl::GetFlag(FLAGS_precisions), ',')) {
      Precision p;
      if (!ParsePrecision(std::string(pname), &p)) continue;
      std::fprintf(stderr, "   engine and bare primitive, %s\n", PrecisionName(p));
      Result no_bare;  // a projected shape has no bare-primitive row
      MeasureEngineAndBare(
          s, p, max_batch, &results[s.name][absl::StrCat("engine ", PrecisionName(p))],
          s.P > 0 ? &no_bare : &results[s.name][absl::StrCat("bare primitive ", PrecisionName(p))]);
    }
    std::fprintf(stderr, "   reference\n");
    results[s.name]["reference f32"] = MeasureReference(s);
    if (pytorch.contains("shapes") && pytorch["shapes"].contains(s.name)) {
      const auto& j = pytorch["shapes"][s.name];
      Result r;
      for (auto& [n, v] : j.at("decode_tok_s").items()) r.decode_tok_s[std::stoi(n)] = v;
      r.step_us_b1 = j.value("step_us_b1", 0.0);
      r.prefill_tok_s = j.value("prefill_tok_s", 0.0);
      r.rss_mb = j.value("rss_mb", 0.0);
      results[s.name]["pytorch f32"] = r;
    }
  }
  std::string header;
  {
    std::ifstream cpu("/proc/cpuinfo");
    std::string line, model;
    int cores = 0;
    while (std::getline(cpu, line)) {
      if (line.rfind("model name", 0) == 0) {
        model = line.substr(line.find(':') + 2);
        ++cores;
      }
    }
    header = absl::StrCat(
        "Machine: ", model, ", ", cores, " logical CPUs; threads=", absl::GetFlag(FLAGS_threads),
        " (0 = all); oneDNN ISA: ", bench::EffectiveIsa(), "; median of ",
        absl::GetFlag(FLAGS_reps), " runs of >= ", absl::GetFlag(FLAGS_min_time), " s",
        absl::GetFlag(FLAGS_clock) == "cpu" ? " of process CPU time" : "", ".\n",
        pytorch.contains("torch") ? absl::StrCat("PyTorch ", pytorch["torch"].get<std::string>(),
                                                 ", ", pytorch.value("threads", 0), " threads.\n")
                                  : "",
        "\n");
  }
  const std::string table = header + Table(shapes, results);
  std::printf("%s", table.c_str());
  if (const std::string path = absl::GetFlag(FLAGS_markdown); !path.empty()) {
    std::ofstream(path) << table;
  }
  if (const std::string path = absl::GetFlag(FLAGS_json); !path.empty()) {
    nlohmann::json j;
    for (const Shape& s : shapes) {
      j[s.name]["shape"] = {{"V", s.V}, {"E", s.E}, {"H", s.H}, {"L", s.L}, {"P", s.P}};
      for (const auto& [system, r] : results[s.name]) {
        nlohmann::json& o = j[s.name]["systems"][system];
        o["step_us_b1"] = r.step_us_b1;
        for (const auto& [N, v] : r.decode_tok_s) o["decode_tok_s"][std::to_string(N)] = v;
        o["prefill_tok_s"] = r.prefill_tok_s;
        o["prompt"] = absl::GetFlag(FLAGS_prompt);
        o["rss_mb"] = r.rss_mb;
        o["clock"] = absl::GetFlag(FLAGS_clock);
      }
    }
    std::ofstream(path) << j.dump(1) << "\n";
  }
  return 0;
}

}  // namespace
}  // namespace lstmserve

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  return lstmserve::Main();
}
