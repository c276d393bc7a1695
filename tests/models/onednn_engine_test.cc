// The oneDNN engine against the reference engine (random packages, states
// carried across many steps while sequences join and leave), against
// PyTorch's golden fixtures (tests/models/golden/), Prefill against Steps,
// argument checking, and bf16/int8 closeness. The demo-model perplexity test
// lives in onednn_precision_test.cc.
#include "models/onednn_engine.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "models/engine_factory.h"
#include "models/model_package.h"
#include "models/reference_engine.h"
#include "nlohmann/json.hpp"
#include "testing/random_package.h"

namespace lstmserve {
namespace {

constexpr double kF32Tolerance = 1e-4;

std::unique_ptr<InferenceEngine> MakeOneDnn(ModelPackage p, Precision precision = Precision::kF32,
                                            int max_batch = 16) {
  EngineOptions o;
  o.precision = precision;
  o.max_batch = max_batch;
  auto e = CreateOneDnnEngine(std::move(p), o);
  EXPECT_TRUE(e.ok()) << e.status();
  return e.ok() ? *std::move(e) : nullptr;
}

std::unique_ptr<InferenceEngine> MakeReference(ModelPackage p, int max_batch = 16) {
  EngineOptions o;
  o.max_batch = max_batch;
  auto e = CreateReferenceEngine(std::move(p), o);
  EXPECT_TRUE(e.ok()) << e.status();
  return e.ok() ? *std::move(e) : nullptr;
}

double MaxAbsDiff(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  double d = 0.0;
  for (size_t i = 0; i < a.size(); ++i) d = std::max(d, std::abs(double{a[i]} - b[i]));
  return d;
}

double StateDiff(const SequenceState& a, const SequenceState& b) {
  double d = 0.0;
  for (size_t k = 0; k < a.layers.size(); ++k) {
    for (size_t j = 0; j < a.layers[k].h.size(); ++j) {
      d = std::max(d, double{std::abs(a.layers[k].h[j] - b.layers[k].h[j])});
      d = std::max(d, double{std::abs(a.layers[k].c[j] - b.layers[k].c[j])});
    }
  }
  return d;
}

// Per-sequence state for two engines driven in lock step.
struct Pair {
  SequenceState a, b;
};

// Drives `a` and `b` with the same random decode traffic: a pool of live
// sequences; every step some leave, some join (zero state), each live one
// feeds a random token. Returns per-token |Δ log-prob| statistics.
struct DiffStats {
  double max = 0.0;
  double sum = 0.0;
  int64_t count = 0;
  double mean() const { return count ? sum / count : 0.0; }
};

DiffStats DriveInLockStep(InferenceEngine* a, InferenceEngine* b, int steps, uint64_t seed,
                          double state_tolerance) {
  const ModelConfig& c = a->config();
  const int V = c.vocab_size;
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int> token(0, V - 1);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  std::vector<Pair> live;
  DiffStats stats;
  for (int s = 0; s < steps; ++s) {
    // Leave with probability 0.15; join until at least one is live and up to
    // max_batch, sometimes several at once.
    std::vector<Pair> kept;
    for (Pair& p : live) {
      if (u(rng) > 0.15) kept.push_back(std::move(p));
    }
    live = std::move(kept);
    const int joins =
        live.empty() ? 1 + static_cast<int>(u(rng) * 4) : static_cast<int>(u(rng) * 3);
    for (int j = 0; j < joins && static_cast<int>(live.size()) < a->max_batch(); ++j) {
      live.push_back({SequenceState::Zeros(c.num_layers, c.hidden_size, c.proj_size),
                      SequenceState::Zeros(c.num_layers, c.hidden_size, c.proj_size)});
    }
    std::shuffle(live.begin(), live.end(), rng);
    const int N = static_cast<int>(live.size());
    std::vector<int32_t> tokens(N);
    std::vector<SequenceState*> sa(N), sb(N);
    for (int n = 0; n < N; ++n) {
      tokens[n] = token(rng);
      sa[n] = &live[n].a;
      sb[n] = &live[n].b;
    }
    std::vector<float> la(N * V), lb(N * V);
    EXPECT_TRUE(a->Step(tokens, sa, la.data()).ok());
    EXPECT_TRUE(b->Step(tokens, sb, lb.data()).ok());
    for (size_t i = 0; i < la.size(); ++i) {
      const double d = std::abs(double{la[i]} - lb[i]);
      stats.max = std::max(stats.max, d);
      stats.sum += d;
      ++stats.count;
    }
    if (state_tolerance > 0) {
      for (int n = 0; n < N; ++n) EXPECT_LE(StateDiff(live[n].a, live[n].b), state_tolerance);
    }
  }
  return stats;
}

// ---- f32 against the reference engine -------------------------------------

struct ShapeCase {
  const char* name;
  RandomPackageShape shape;
};

class OneDnnVsReferenceTest : public ::testing::TestWithParam<ShapeCase> {};

TEST_P(OneDnnVsReferenceTest, StepsMatchWhileSequencesJoinAndLeave) {
  const RandomPackageShape& shape = GetParam().shape;
  auto onednn = MakeOneDnn(RandomPackage(shape));
  auto reference = MakeReference(RandomPackage(shape));
  ASSERT_NE(onednn, nullptr);
  ASSERT_NE(reference, nullptr);
  const DiffStats d = DriveInLockStep(onednn.get(), reference.get(), 60, 11, kF32Tolerance);
  std::printf("[ f32      ] %-12s max |d logprob| = %.3g, mean %.3g over %lld values\n",
              GetParam().name, d.max, d.mean(), static_cast<long long>(d.count));
  EXPECT_LE(d.max, kF32Tolerance);
}

TEST_P(OneDnnVsReferenceTest, PrefillThenStepsEqualsSteps) {
  const RandomPackageShape& shape = GetParam().shape;
  auto onednn = MakeOneDnn(RandomPackage(shape));
  auto reference = MakeReference(RandomPackage(shape));
  ASSERT_NE(onednn, nullptr);
  const ModelConfig& c = onednn->config();
  const int V = c.vocab_size;
  // Lengths chosen to exercise grouping, power-of-two chunks and a prompt
  // longer than one chunk (512).
  const std::vector<int> lengths = {1, 5, 17, 64, 100, 600};
  std::mt19937_64 rng(3);
  std::uniform_int_distribution<int> token(0, V - 1);
  std::vector<std::vector<int32_t>> prompts;
  for (int len : lengths) {
    std::vector<int32_t> p(len);
    for (int32_t& t : p) t = token(rng);
    prompts.push_back(std::move(p));
  }
  const int P = static_cast<int>(prompts.size());
  const auto zeros = [&] { return SequenceState::Zeros(c.num_layers, c.hidden_size, c.proj_size); };

  // A: one Prefill call (half the prompts ask for all log-probs), then steps.
  std::vector<SequenceState> pre(P, zeros());
  std::vector<std::vector<float>> pre_all(P), pre_last(P, std::vector<float>(V, NAN));
  std::vector<PrefillItem> items;
  for (int k = 0; k < P; ++k) {
    if (k % 2 == 0) pre_all[k].assign(prompts[k].size() * V, NAN);
    items.push_back(
        {prompts[k], &pre[k], pre_last[k].data(), k % 2 == 0 ? pre_all[k].data() : nullptr});
  }
  ASSERT_TRUE(onednn->Prefill(items).ok());

  // B: the same tokens one Step at a time, on the reference engine.
  std::vector<SequenceState> ref(P, zeros());
  double max_all = 0.0, max_last = 0.0;
  std::vector<float> row(V);
  for (int k = 0; k < P; ++k) {
    SequenceState* s[] = {&ref[k]};
    for (size_t t = 0; t < prompts[k].size(); ++t) {
      ASSERT_TRUE(reference->Step(absl::MakeConstSpan(&prompts[k][t], 1), s, row.data()).ok());
      if (!pre_all[k].empty()) {
        for (int v = 0; v < V; ++v) {
          max_all = std::max(max_all, double{std::abs(pre_all[k][t * V + v] - row[v])});
        }
      }
    }
    for (int v = 0; v < V; ++v)
      max_last = std::max(max_last, double{std::abs(pre_last[k][v] - row[v])});
    EXPECT_LE(StateDiff(pre[k], ref[k]), kF32Tolerance) << "prompt " << k;
  }
  EXPECT_LE(max_all, kF32Tolerance);
  EXPECT_LE(max_last, kF32Tolerance);

  // Then decode steps continue from the prefilled states on both engines.
  std::vector<SequenceState*> sa, sb;
  for (int k = 0; k < P; ++k) {
    sa.push_back(&pre[k]);
    sb.push_back(&ref[k]);
  }
  double max_step = 0.0;
  for (int s = 0; s < 10; ++s) {
    std::vector<int32_t> tokens(P);
    for (int32_t& t : tokens) t = token(rng);
    std::vector<float> la(P * V), lb(P * V);
    ASSERT_TRUE(onednn->Step(tokens, sa, la.data()).ok());
    ASSERT_TRUE(reference->Step(tokens, sb, lb.data()).ok());
    max_step = std::max(max_step, MaxAbsDiff(la, lb));
  }
  std::printf("[ prefill  ] %-12s max |d logprob|: all %.3g, last %.3g, steps after %.3g\n",
              GetParam().name, max_all, max_last, max_step);
  EXPECT_LE(max_step, kF32Tolerance);
}

ShapeCase Case(const char* name, int V, int E, int H, int L, uint64_t seed) {
  RandomPackageShape s;
  s.vocab_size = V;
  s.embedding_dim = E;
  s.hidden_size = H;
  s.num_layers = L;
  s.seed = seed;
  return {name, s};
}

// A projected LSTM (proj_size P).
ShapeCase ProjCase(const char* name, int V, int E, int H, int P, int L, uint64_t seed) {
  ShapeCase c = Case(name, V, E, H, L, seed);
  c.shape.proj_size = P;
  return c;
}

// V <= 2E (the first four) runs layer 0 from its lookup table
// (models/onednn_matmul_layer.h); the last two (V > 2E) gather embedding rows
// and run layer 0's input matmul.
INSTANTIATE_TEST_SUITE_P(
    Shapes, OneDnnVsReferenceTest,
    ::testing::Values(Case("e24_h40_l2", 37, 24, 40, 2, 1), Case("e32_h32_l3", 29, 32, 32, 3, 2),
                      Case("e19_h13_l1", 23, 19, 13, 1, 3), Case("e40_h40_l1", 31, 40, 40, 1, 4),
                      Case("e16_h37_l4", 41, 16, 37, 4, 5), Case("e48_h20_l4", 300, 48, 20, 4, 6),
                      ProjCase("e24_h40_p16_l2", 37, 24, 40, 16, 2, 7),
                      ProjCase("e48_h32_p12_l3", 300, 48, 32, 12, 3, 8)),
    [](const auto& info) { return std::string(info.param.name); });

// ---- Golden PyTorch fixtures ------------------------------------------------

std::vector<std::string> GoldenFixtures() {
  std::vector<std::string> names;
  const std::filesystem::path root =
      std::filesystem::path(LSTMSERVE_SOURCE_DIR) / "tests/models/golden";
  if (!std::filesystem::is_directory(root)) return names;
  for (const auto& entry : std::filesystem::directory_iterator(root)) {
    if (std::filesystem::exists(entry.path() / "golden.json"))
      names.push_back(entry.path().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

TEST(OneDnnGoldenTest, F32MatchesPyTorchOnEveryFixture) {
  const std::vector<std::string> fixtures = GoldenFixtures();
  // The fixtures are committed (tests/models/golden/README.md): none is a broken checkout.
  ASSERT_FALSE(fixtures.empty()) << "no golden fixtures under tests/models/golden";
  for (const std::string& dir : fixtures) {
    SCOPED_TRACE(dir);
    std::ifstream in(dir + "/golden.json");
    std::stringstream text;
    text << in.rdbuf();
    const nlohmann::json golden = nlohmann::json::parse(text.str());
    auto pkg = LoadModelPackage(dir);
    ASSERT_TRUE(pkg.ok()) << pkg.status();
    const ModelConfig c = pkg->config;
    auto engine = MakeOneDnn(*std::move(pkg));
    ASSERT_NE(engine, nullptr);
    const int V = c.vocab_size;
    // Sequences in file order; a continuation starts from an earlier final
    // state. Run each by Prefill(all_logprobs), and again by Steps.
    std::vector<SequenceState> finals;
    double max_prefill = 0.0, max_step = 0.0;
    for (const auto& seq : golden.at("sequences")) {
      const auto ids = seq.at("ids").get<std::vector<int32_t>>();
      const auto expected = seq.at("logprobs").get<std::vector<std::vector<double>>>();
      const SequenceState start = seq.at("start").is_string()
                                      ? SequenceState::Zeros(c.num_layers, c.hidden_size, c.proj_size)
                                      : finals.at(seq.at("start").get<int>());
      SequenceState by_prefill = start, by_step = start;
      std::vector<float> all(ids.size() * V), row(V);
      PrefillItem item{ids, &by_prefill, nullptr, all.data()};
      const absl::Status prefilled = engine->Prefill(absl::MakeConstSpan(&item, 1));
      ASSERT_TRUE(prefilled.ok()) << prefilled;
      SequenceState* s[] = {&by_step};
      for (size_t t = 0; t < ids.size(); ++t) {
        const absl::Status stepped = engine->Step(absl::MakeConstSpan(&ids[t], 1), s, row.data());
        ASSERT_TRUE(stepped.ok()) << stepped;
        for (int v = 0; v < V; ++v) {
          max_prefill = std::max(max_prefill, std::abs(all[t * V + v] - expected[t][v]));
          max_step = std::max(max_step, std::abs(row[v] - expected[t][v]));
        }
      }
      finals.push_back(by_step);
    }
    std::printf("[ golden   ] %-22s max |d logprob| Step %.3g, Prefill %.3g\n",
                std::filesystem::path(dir).filename().c_str(), max_step, max_prefill);
    EXPECT_LE(max_step, kF32Tolerance);
    EXPECT_LE(max_prefill, kF32Tolerance);
  }
}

// ---- Contract ---------------------------------------------------------------

TEST(OneDnnEngineTest, FactoryBuildsIt) {
  auto e = CreateEngine(EngineKind::kOneDnn, RandomPackage({}), EngineOptions{});
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_STREQ((*e)->kind(), "onednn");
  EXPECT_EQ((*e)->precision(), Precision::kF32);
  EXPECT_EQ((*e)->max_batch(), 256);
}

TEST(OneDnnEngineTest, RejectsBadOptions) {
  EngineOptions o;
  o.max_batch = 0;
  EXPECT_EQ(CreateOneDnnEngine(RandomPackage({}), o).status().code(),
            absl::StatusCode::kInvalidArgument);
  o.max_batch = 4;
  o.threads = -1;
  EXPECT_EQ(CreateOneDnnEngine(RandomPackage({}), o).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(OneDnnEngineTest, RejectsBadArgumentsAndLeavesStatesAlone) {
  auto engine = MakeOneDnn(RandomPackage({}), Precision::kF32, 4);
  ASSERT_NE(engine, nullptr);
  const ModelConfig& c = engine->config();
  const int V = c.vocab_size;
  SequenceState s = SequenceState::Zeros(c.num_layers, c.hidden_size, c.proj_size);
  s.layers[0].h[0] = 0.5f;
  const SequenceState before = s;
  std::vector<float> out(8 * V);
  SequenceState* one[] = {&s};
  const int32_t good[] = {1};
  const int32_t bad_id[] = {V};
  const int32_t negative[] = {-1};
  auto invalid = [](const absl::Status& st) {
    return st.code() == absl::StatusCode::kInvalidArgument;
  };
  EXPECT_TRUE(invalid(engine->Step({}, {}, out.data())));
  EXPECT_TRUE(invalid(engine->Step(bad_id, one, out.data())));
  EXPECT_TRUE(invalid(engine->Step(negative, one, out.data())));
  EXPECT_TRUE(invalid(engine->Step(good, one, nullptr)));
  const int32_t five[] = {1, 1, 1, 1, 1};
  std::vector<SequenceState> many(5, before);
  std::vector<SequenceState*> five_states;
  for (auto& m : many) five_states.push_back(&m);
  EXPECT_TRUE(invalid(engine->Step(five, five_states, out.data())));  // > max_batch
  const int32_t two[] = {1, 2};
  EXPECT_TRUE(invalid(engine->Step(two, one, out.data())));  // 2 tokens, 1 state
  SequenceState wrong = SequenceState::Zeros(c.num_layers + 1, c.hidden_size);
  SequenceState* wrong_states[] = {&wrong};
  EXPECT_TRUE(invalid(engine->Step(good, wrong_states, out.data())));
  SequenceState* null_state[] = {nullptr};
  EXPECT_TRUE(invalid(engine->Step(good, null_state, out.data())));

  EXPECT_TRUE(invalid(engine->Prefill({})));
  PrefillItem empty{absl::Span<const int32_t>(), &s, out.data(), nullptr};
  EXPECT_TRUE(invalid(engine->Prefill(absl::MakeConstSpan(&empty, 1))));
  PrefillItem bad{bad_id, &s, out.data(), nullptr};
  EXPECT_TRUE(invalid(engine->Prefill(absl::MakeConstSpan(&bad, 1))));
  PrefillItem no_state{good, nullptr, out.data(), nullptr};
  EXPECT_TRUE(invalid(engine->Prefill(absl::MakeConstSpan(&no_state, 1))));
  EXPECT_EQ(StateDiff(s, before), 0.0);

  // And it still works afterwards.
  EXPECT_TRUE(engine->Step(good, one, out.data()).ok());
  EXPECT_GT(StateDiff(s, before), 0.0);
}

TEST(OneDnnEngineTest, PrefillWithoutOutputsOnlyAdvancesStates) {
  auto engine = MakeOneDnn(RandomPackage({}));
  ASSERT_NE(engine, nullptr);
  const ModelConfig& c = engine->config();
  const std::vector<int32_t> prompt = {1, 2, 3, 4, 5, 6, 7};
  SequenceState a = SequenceState::Zeros(c.num_layers, c.hidden_size, c.proj_size), b = a;
  PrefillItem item{prompt, &a, nullptr, nullptr};
  ASSERT_TRUE(engine->Prefill(absl::MakeConstSpan(&item, 1)).ok());
  std::vector<float> row(c.vocab_size);
  SequenceState* s[] = {&b};
  for (int32_t t : prompt)
    ASSERT_TRUE(engine->Step(absl::MakeConstSpan(&t, 1), s, row.data()).ok());
  EXPECT_LE(StateDiff(a, b), kF32Tolerance);
}

TEST(OneDnnEngineTest, RunsOnAThreadOtherThanItsCreator) {
  auto engine = MakeOneDnn(RandomPackage({}));
  auto reference = MakeReference(RandomPackage({}));
  ASSERT_NE(engine, nullptr);
  DiffStats d;
  // Two different threads in turn, neither the creator.
  for (int round = 0; round < 2; ++round) {
    std::thread worker(
        [&] { d = DriveInLockStep(engine.get(), reference.get(), 20, 5 + round, 0); });
    worker.join();
    EXPECT_LE(d.max, kF32Tolerance);
  }
}

TEST(OneDnnEngineTest, ExplicitThreadCountsAgree) {
  const RandomPackageShape shape{.vocab_size = 50, .embedding_dim = 64, .hidden_size = 64};
  EngineOptions one;
  one.threads = 1;
  EngineOptions two;
  two.threads = 2;
  auto a = CreateOneDnnEngine(RandomPackage(shape), one);
  auto b = CreateOneDnnEngine(RandomPackage(shape), two);
  ASSERT_TRUE(a.ok() && b.ok());
  const DiffStats d = DriveInLockStep(a->get(), b->get(), 20, 9, 0);
  EXPECT_LE(d.max, kF32Tolerance);
}

// ---- bf16 and int8 ----------------------------------------------------------

// Measured against f32 on random packages (weights U(-0.3, 0.3): larger
// than trained weights, so gates saturate and errors are pessimistic), 40
// steps of join/leave traffic, Zen 4 (AVX512-BF16, VNNI):
//   bf16: max 0.027, mean 0.0023 (worst shape, e32_h256_l2)
//   int8: max 0.10, mean 0.011 with VNNI (u8 = 127x + 128);
//         about twice that without VNNI (u8 = 63x + 64).
// The bounds leave ~2x headroom; the real quality gate is the demo-model
// perplexity test (onednn_precision_test.cc). Projected LSTMs (int8: h rows
// encoded with their own row scales, models/onednn_matmul_layer.h) are held
// to the same bounds.
struct PrecisionCase {
  Precision precision;
  double max_tolerance;
  double mean_tolerance;
};

// The int8 bounds of ReducedPrecisionTest, also used against PyTorch below.
constexpr PrecisionCase kBf16Case{Precision::kBF16, 0.05, 0.01};
constexpr PrecisionCase kInt8Case{Precision::kInt8, 0.25, 0.04};

class ReducedPrecisionTest : public ::testing::TestWithParam<PrecisionCase> {};

TEST_P(ReducedPrecisionTest, StaysCloseToF32) {
  const PrecisionCase& pc = GetParam();
  // The last two are projected: layer 0 from its table (the first of them)
  // or by gather (the second).
  for (const ShapeCase& sc :
       {Case("e24_h40_l2", 37, 24, 40, 2, 1), Case("e64_h64_l3", 65, 64, 64, 3, 2),
        Case("e32_h256_l2", 200, 32, 256, 2, 3), ProjCase("e24_h40_p16_l3", 37, 24, 40, 16, 3, 10),
        ProjCase("e32_h96_p24_l2", 200, 32, 96, 24, 2, 9)}) {
    auto f32 = MakeOneDnn(RandomPackage(sc.shape), Precision::kF32);
    auto low = MakeOneDnn(RandomPackage(sc.shape), pc.precision);
    ASSERT_NE(low, nullptr);
    EXPECT_EQ(low->precision(), pc.precision);
    const DiffStats d = DriveInLockStep(low.get(), f32.get(), 40, 21, 0);
    std::printf("[ %-8s ] %-14s vs f32: max |d logprob| = %.3g, mean %.3g\n",
                PrecisionName(pc.precision), sc.name, d.max, d.mean());
    EXPECT_LE(d.max, pc.max_tolerance) << sc.name;
    EXPECT_LE(d.mean(), pc.mean_tolerance) << sc.name;
  }
}

TEST_P(ReducedPrecisionTest, PrefillEqualsSteps) {
  const PrecisionCase& pc = GetParam();
  for (const ShapeCase& sc : {Case("e24_h40_l2", 37, 24, 40, 2, 7),
                              ProjCase("e32_h96_p24_l2", 200, 32, 96, 24, 2, 9)}) {
    auto engine = MakeOneDnn(RandomPackage(sc.shape), pc.precision);
    ASSERT_NE(engine, nullptr);
    const ModelConfig& c = engine->config();
    const int V = c.vocab_size;
    std::vector<int32_t> prompt(40);
    for (size_t i = 0; i < prompt.size(); ++i) prompt[i] = static_cast<int32_t>((i * 7) % V);
    SequenceState a = SequenceState::Zeros(c.num_layers, c.hidden_size, c.proj_size), b = a;
    std::vector<float> all(prompt.size() * V), row(V);
    PrefillItem item{prompt, &a, nullptr, all.data()};
    ASSERT_TRUE(engine->Prefill(absl::MakeConstSpan(&item, 1)).ok());
    SequenceState* s[] = {&b};
    double d = 0.0;
    for (size_t t = 0; t < prompt.size(); ++t) {
      ASSERT_TRUE(engine->Step(absl::MakeConstSpan(&prompt[t], 1), s, row.data()).ok());
      for (int v = 0; v < V; ++v) d = std::max(d, double{std::abs(all[t * V + v] - row[v])});
    }
    std::printf("[ %-8s ] %-14s prefill vs steps: max |d logprob| = %.3g\n",
                PrecisionName(pc.precision), sc.name, d);
    EXPECT_LE(d, pc.max_tolerance) << sc.name;
  }
}

INSTANTIATE_TEST_SUITE_P(Precisions, ReducedPrecisionTest,
                         ::testing::Values(kBf16Case, kInt8Case), [](const auto& info) {
                           return std::string(PrecisionName(info.param.precision));
                         });

// One sequence's log-probs against PyTorch's (from `start`), by Prefill and
// by Steps; updates the statistics with both and sets `*end` to the state
// the Steps end in.
void CompareWithPyTorch(InferenceEngine* engine, const std::vector<int32_t>& ids,
                        const std::vector<std::vector<double>>& expected,
                        const SequenceState& start, DiffStats* stats, SequenceState* end) {
  const int V = engine->config().vocab_size;
  SequenceState by_prefill = start, by_step = start;
  std::vector<float> all(ids.size() * V), row(V);
  PrefillItem item{ids, &by_prefill, nullptr, all.data()};
  const absl::Status prefilled = engine->Prefill(absl::MakeConstSpan(&item, 1));
  ASSERT_TRUE(prefilled.ok()) << prefilled;
  SequenceState* s[] = {&by_step};
  for (size_t t = 0; t < ids.size(); ++t) {
    const absl::Status stepped = engine->Step(absl::MakeConstSpan(&ids[t], 1), s, row.data());
    ASSERT_TRUE(stepped.ok()) << stepped;
    for (int v = 0; v < V; ++v) {
      for (const double d : {std::abs(all[t * V + v] - expected[t][v]),
                             std::abs(row[v] - expected[t][v])}) {
        stats->max = std::max(stats->max, d);
        stats->sum += d;
        ++stats->count;
      }
    }
  }
  *end = by_step;
}

nlohmann::json ReadJson(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return nlohmann::json::parse(text.str());
}

// Projected LSTMs at int8 against PyTorch itself, within the int8 bounds
// above: the projected golden fixtures (continuations included: they start
// from an earlier sequence's final int8 state) and the importer's proj_size
// package (tests/import/packages/proj, PyTorch's forward in expected.json).
TEST(OneDnnProjectionTest, Int8MatchesPyTorchOnProjectedFixtures) {
  const std::filesystem::path source(LSTMSERVE_SOURCE_DIR);
  int fixtures = 0;
  for (const std::string& dir : GoldenFixtures()) {
    auto pkg = LoadModelPackage(dir);
    ASSERT_TRUE(pkg.ok()) << pkg.status();
    if (pkg->config.proj_size == 0) continue;
    SCOPED_TRACE(dir);
    ++fixtures;
    const ModelConfig c = pkg->config;
    auto engine = MakeOneDnn(*std::move(pkg), Precision::kInt8);
    ASSERT_NE(engine, nullptr);
    DiffStats stats;
    std::vector<SequenceState> finals;
    const nlohmann::json golden = ReadJson(std::filesystem::path(dir) / "golden.json");
    for (const auto& seq : golden.at("sequences")) {
      const auto ids = seq.at("ids").get<std::vector<int32_t>>();
      const SequenceState start =
          seq.at("start").is_string()
              ? SequenceState::Zeros(c.num_layers, c.hidden_size, c.proj_size)
              : finals.at(seq.at("start").get<int>());
      SequenceState end;
      CompareWithPyTorch(engine.get(), ids,
                         seq.at("logprobs").get<std::vector<std::vector<double>>>(), start, &stats,
                         &end);
      finals.push_back(end);
    }
    std::printf("[ int8     ] %-22s vs PyTorch: max |d logprob| = %.3g, mean %.3g\n",
                std::filesystem::path(dir).filename().c_str(), stats.max, stats.mean());
    EXPECT_LE(stats.max, kInt8Case.max_tolerance);
    EXPECT_LE(stats.mean(), kInt8Case.mean_tolerance);
  }
  EXPECT_GE(fixtures, 2) << "the projected golden fixtures (tests/models/golden/proj_*)";

  const std::filesystem::path dir = source / "tests/import/packages/proj";
  SCOPED_TRACE(dir.string());
  const nlohmann::json expected = ReadJson(dir / "expected.json");
  auto pkg = LoadModelPackage(dir.string());
  ASSERT_TRUE(pkg.ok()) << pkg.status();
  const ModelConfig c = pkg->config;
  ASSERT_GT(c.proj_size, 0);
  auto engine = MakeOneDnn(*std::move(pkg), Precision::kInt8);
  ASSERT_NE(engine, nullptr);
  DiffStats stats;
  SequenceState end;
  CompareWithPyTorch(engine.get(), expected.at("ids").get<std::vector<int32_t>>(),
                     expected.at("logprobs").get<std::vector<std::vector<double>>>(),
                     SequenceState::Zeros(c.num_layers, c.hidden_size, c.proj_size), &stats, &end);
  std::printf("[ int8     ] import/proj            vs PyTorch: max |d logprob| = %.3g, mean %.3g\n",
              stats.max, stats.mean());
  EXPECT_LE(stats.max, kInt8Case.max_tolerance);
  EXPECT_LE(stats.mean(), kInt8Case.mean_tolerance);
}

// A projected h far outside [-1, 1] is not clipped at int8, and its
// precision does not depend on its magnitude (each h row is encoded relative
// to its own largest value): W_hr scaled up 16x and the weights that read h
// (W_hh, the next layer's W_ih, the head) scaled down as much compute the same
// function with a 16x larger h, which int8 serves within its bounds of f32
// on the unscaled package, handing back the 16x h state.
TEST(OneDnnProjectionTest, Int8KeepsLargeProjectedHUnclipped) {
  constexpr float kScale = 16.0f;
  const ShapeCase sc = ProjCase("e32_h96_p24_l2", 200, 32, 96, 24, 2, 9);
  ModelPackage scaled = RandomPackage(sc.shape);
  for (size_t l = 0; l < scaled.weights.layers.size(); ++l) {
    LstmLayerWeights& layer = scaled.weights.layers[l];
    for (float& w : layer.w_hr.data) w *= kScale;
    for (float& w : layer.w_hh.data) w /= kScale;
    if (l > 0) {
      for (float& w : layer.w_ih.data) w /= kScale;
    }
  }
  for (float& w : scaled.weights.head_w.data) w /= kScale;
  auto f32 = MakeOneDnn(RandomPackage(sc.shape), Precision::kF32);
  auto int8 = MakeOneDnn(std::move(scaled), Precision::kInt8);
  ASSERT_NE(f32, nullptr);
  ASSERT_NE(int8, nullptr);
  const ModelConfig& c = f32->config();
  SequenceState a = SequenceState::Zeros(c.num_layers, c.hidden_size, c.proj_size), b = a;
  std::vector<float> la(c.vocab_size), lb(c.vocab_size);
  double max_h = 0.0, max_dh = 0.0;
  DiffStats d;
  SequenceState* sa[] = {&a};
  SequenceState* sb[] = {&b};
  for (int t = 0; t < 40; ++t) {
    const int32_t token = (t * 13) % c.vocab_size;
    ASSERT_TRUE(int8->Step(absl::MakeConstSpan(&token, 1), sa, la.data()).ok());
    ASSERT_TRUE(f32->Step(absl::MakeConstSpan(&token, 1), sb, lb.data()).ok());
    for (int v = 0; v < c.vocab_size; ++v) {
      const double diff = std::abs(double{la[v]} - lb[v]);
      d.max = std::max(d.max, diff);
      d.sum += diff;
      ++d.count;
    }
    for (size_t k = 0; k < a.layers.size(); ++k) {
      for (size_t j = 0; j < a.layers[k].h.size(); ++j) {
        max_h = std::max(max_h, double{std::abs(a.layers[k].h[j])});
        max_dh = std::max(max_dh, double{std::abs(a.layers[k].h[j] / kScale - b.layers[k].h[j])});
      }
    }
  }
  std::printf("[ int8     ] W_hr x%.0f: max |h| %.3g, max |d h/%.0f| %.3g, max |d logprob| %.3g, "
              "mean %.3g\n",
              kScale, max_h, kScale, max_dh, d.max, d.mean());
  ASSERT_GT(max_h, 4.0) << "the test needs |h| well outside [-1, 1]";
  EXPECT_LE(d.max, kInt8Case.max_tolerance);
  EXPECT_LE(d.mean(), kInt8Case.mean_tolerance);
  EXPECT_LE(max_dh, 0.05);
}

// PrefillItem::next_token_logprobs (Score's path): each value equals the
// log-prob all_logprobs gives the next token, in both engines, for prompts
// longer than one chunk, a one-token prompt (nothing to score) and a prompt
// that also asks for last_logprobs, prefilled together.
TEST(NextTokenLogprobsTest, EqualTheAllLogprobsPicksInBothEngines) {
  for (const ShapeCase& sc : {Case("gather", 300, 48, 20, 2, 12), Case("table", 37, 24, 40, 2, 13),
                              ProjCase("proj", 300, 48, 32, 12, 2, 14)}) {
    SCOPED_TRACE(sc.name);
    auto onednn = MakeOneDnn(RandomPackage(sc.shape));
    auto reference = MakeReference(RandomPackage(sc.shape));
    ASSERT_NE(onednn, nullptr);
    ASSERT_NE(reference, nullptr);
    const ModelConfig& c = onednn->config();
    const int V = c.vocab_size;
    std::mt19937 rng(5);
    std::vector<std::vector<int32_t>> prompts = {std::vector<int32_t>(700), {7},
                                                 std::vector<int32_t>(33)};
    for (auto& p : prompts) {
      for (int32_t& t : p) t = static_cast<int32_t>(rng() % V);
    }
    for (InferenceEngine* engine : {onednn.get(), reference.get()}) {
      // Oracle: the reference engine's all_logprobs, one prompt at a time.
      std::vector<SequenceState> states(prompts.size(),
                                        SequenceState::Zeros(c.num_layers, c.hidden_size,
                                                             c.proj_size));
      std::vector<std::vector<float>> next(prompts.size());
      std::vector<float> last(V);
      std::vector<PrefillItem> items;
      for (size_t i = 0; i < prompts.size(); ++i) {
        next[i].assign(prompts[i].size() - 1, 1.0f);
        items.push_back({prompts[i], &states[i], i == 2 ? last.data() : nullptr, nullptr,
                         next[i].empty() ? nullptr : next[i].data()});
      }
      ASSERT_TRUE(engine->Prefill(items).ok());
      for (size_t i = 0; i < prompts.size(); ++i) {
        SequenceState s = SequenceState::Zeros(c.num_layers, c.hidden_size, c.proj_size);
        std::vector<float> all(prompts[i].size() * V);
        PrefillItem whole{prompts[i], &s, nullptr, all.data()};
        ASSERT_TRUE(reference->Prefill({whole}).ok());
        for (size_t t = 0; t + 1 < prompts[i].size(); ++t) {
          ASSERT_NEAR(next[i][t], all[t * V + prompts[i][t + 1]], kF32Tolerance)
              << engine->kind() << " prompt " << i << " t " << t;
        }
        if (i == 2) {
          for (int v = 0; v < V; ++v) {
            ASSERT_NEAR(last[v], all[(prompts[i].size() - 1) * V + v], kF32Tolerance);
          }
        }
      }
    }
  }
}

}  // namespace
}  // namespace lstmserve
