// Fidelity: the reference engine against PyTorch on the golden fixtures
// (tests/models/golden/, written by tools/make_golden.py). Every log-prob at
// every step must be within 1e-4 of PyTorch's float64 forward.
#include "models/reference_engine.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "models/model_package.h"
#include "nlohmann/json.hpp"
#include "tests/models/package_writer.h"

namespace lstmserve {
namespace {

constexpr double kTolerance = 1e-4;

struct GoldenSequence {
  int start = -1;  // -1: zeros; else index of the sequence whose final state it continues
  std::vector<int32_t> ids;
  std::vector<std::vector<double>> logprobs;  // [T][V]
};

struct Golden {
  std::string name;
  std::vector<GoldenSequence> sequences;
};

std::vector<std::string> FixtureNames() {
  std::vector<std::string> names;
  const std::filesystem::path root =
      std::filesystem::path(LSTMSERVE_SOURCE_DIR) / "tests/models/golden";
  for (const auto& entry : std::filesystem::directory_iterator(root)) {
    if (entry.is_directory()) names.push_back(entry.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

Golden LoadGolden(const std::string& name) {
  const nlohmann::json j =
      nlohmann::json::parse(testing::ReadFileOrDie(testing::GoldenDir(name) + "/golden.json"));
  Golden g;
  g.name = name;
  for (const auto& s : j.at("sequences")) {
    GoldenSequence seq;
    seq.start = s.at("start").is_string() ? -1 : s.at("start").get<int>();
    seq.ids = s.at("ids").get<std::vector<int32_t>>();
    seq.logprobs = s.at("logprobs").get<std::vector<std::vector<double>>>();
    g.sequences.push_back(std::move(seq));
  }
  return g;
}

// Max |Δ| between an engine row and the golden row (infinity for a NaN).
double RowDelta(const float* row, const std::vector<double>& golden) {
  double d = 0.0;
  for (size_t v = 0; v < golden.size(); ++v) {
    const double delta = std::abs(row[v] - golden[v]);
    d = std::isnan(delta) ? INFINITY : std::max(d, delta);
  }
  return d;
}

class GoldenTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    golden_ = LoadGolden(GetParam());
    auto pkg = LoadModelPackage(testing::GoldenDir(GetParam()));
    ASSERT_TRUE(pkg.ok()) << pkg.status();
    config_ = pkg->config;
    auto engine = CreateReferenceEngine(*std::move(pkg), EngineOptions{});
    ASSERT_TRUE(engine.ok()) << engine.status();
    engine_ = *std::move(engine);
    ASSERT_FALSE(golden_.sequences.empty());
    for (const GoldenSequence& s : golden_.sequences) {
      ASSERT_EQ(s.ids.size(), s.logprobs.size());
      for (const auto& row : s.logprobs) ASSERT_EQ(row.size(), static_cast<size_t>(V()));
      ASSERT_LT(s.start, static_cast<int>(&s - golden_.sequences.data()));
    }
  }

  int V() const { return config_.vocab_size; }
  SequenceState Zeros() const {
    return SequenceState::Zeros(config_.num_layers, config_.hidden_size, config_.proj_size);
  }
  void Report(const char* how, double delta) {
    std::printf("[ golden   ] %-20s %-16s max |d logprob| = %.3g\n", GetParam().c_str(), how,
                delta);
  }

  Golden golden_;
  ModelConfig config_;
  std::unique_ptr<InferenceEngine> engine_;
};

TEST_P(GoldenTest, StepMatchesPyTorch) {
  std::vector<SequenceState> finals;
  std::vector<float> row(V());
  double max_delta = 0.0;
  for (size_t k = 0; k < golden_.sequences.size(); ++k) {
    const GoldenSequence& seq = golden_.sequences[k];
    SequenceState state = seq.start < 0 ? Zeros() : finals[seq.start];
    SequenceState* states[] = {&state};
    for (size_t t = 0; t < seq.ids.size(); ++t) {
      ASSERT_TRUE(engine_->Step(absl::MakeConstSpan(&seq.ids[t], 1), states, row.data()).ok());
      const double d = RowDelta(row.data(), seq.logprobs[t]);
      max_delta = std::max(max_delta, d);
      ASSERT_LE(d, kTolerance) << "sequence " << k << " step " << t;
    }
    finals.push_back(state);
  }
  Report("Step", max_delta);
}

TEST_P(GoldenTest, PrefillAllLogprobsMatchesPyTorch) {
  // Sequences from zeros go in one Prefill call; continuations in a second
  // call, from the states the first left behind.
  std::vector<SequenceState> states(golden_.sequences.size(), Zeros());
  std::vector<std::vector<float>> all(golden_.sequences.size());
  std::vector<std::vector<float>> last(golden_.sequences.size(), std::vector<float>(V()));
  for (bool continuations : {false, true}) {
    std::vector<PrefillItem> items;
    for (size_t k = 0; k < golden_.sequences.size(); ++k) {
      const GoldenSequence& seq = golden_.sequences[k];
      if ((seq.start >= 0) != continuations) continue;
      if (seq.start >= 0) states[k] = states[seq.start];
      all[k].assign(seq.ids.size() * V(), NAN);
      items.push_back({seq.ids, &states[k], last[k].data(), all[k].data()});
    }
    if (items.empty()) continue;
    ASSERT_TRUE(engine_->Prefill(items).ok());
  }
  double max_delta = 0.0;
  for (size_t k = 0; k < golden_.sequences.size(); ++k) {
    const GoldenSequence& seq = golden_.sequences[k];
    for (size_t t = 0; t < seq.ids.size(); ++t) {
      const double d = RowDelta(all[k].data() + t * V(), seq.logprobs[t]);
      max_delta = std::max(max_delta, d);
      ASSERT_LE(d, kTolerance) << "sequence " << k << " step " << t;
    }
    EXPECT_LE(RowDelta(last[k].data(), seq.logprobs.back()), kTolerance) << "last_logprobs " << k;
  }
  Report("Prefill", max_delta);
}

TEST_P(GoldenTest, BatchedStepKeepsSequencesIndependent) {
  // Run every zero-start sequence twice (in forward and reverse order) in one
  // batch; the batch shrinks as shorter sequences end. Then the continuations
  // likewise, each from its own predecessor's final state.
  std::vector<SequenceState> finals(golden_.sequences.size());
  double max_delta = 0.0;
  for (bool continuations : {false, true}) {
    std::vector<size_t> lanes;  // sequence index per batch lane
    for (size_t k = 0; k < golden_.sequences.size(); ++k) {
      if ((golden_.sequences[k].start >= 0) == continuations) lanes.push_back(k);
    }
    if (lanes.empty()) continue;
    const size_t n = lanes.size();
    for (size_t i = 0; i < n; ++i) lanes.push_back(lanes[n - 1 - i]);
    std::vector<SequenceState> states;
    for (size_t k : lanes) {
      const int start = golden_.sequences[k].start;
      states.push_back(start < 0 ? Zeros() : finals[start]);
    }
    for (size_t t = 0;; ++t) {
      std::vector<int32_t> tokens;
      std::vector<SequenceState*> ptrs;
      std::vector<size_t> active;
      for (size_t i = 0; i < lanes.size(); ++i) {
        const GoldenSequence& seq = golden_.sequences[lanes[i]];
        if (t >= seq.ids.size()) continue;
        tokens.push_back(seq.ids[t]);
        ptrs.push_back(&states[i]);
        active.push_back(i);
      }
      if (tokens.empty()) break;
      std::vector<float> out(tokens.size() * V());
      ASSERT_TRUE(engine_->Step(tokens, ptrs, out.data()).ok());
      for (size_t a = 0; a < active.size(); ++a) {
        const size_t k = lanes[active[a]];
        const double d = RowDelta(out.data() + a * V(), golden_.sequences[k].logprobs[t]);
        max_delta = std::max(max_delta, d);
        ASSERT_LE(d, kTolerance) << "sequence " << k << " lane " << active[a] << " step " << t;
      }
    }
    for (size_t i = 0; i < n; ++i) finals[lanes[i]] = states[i];
  }
  Report("batched Step", max_delta);
}

INSTANTIATE_TEST_SUITE_P(Golden, GoldenTest, ::testing::ValuesIn(FixtureNames()),
                         [](const auto& info) { return info.param; });

TEST(GoldenFixtures, RowDeltaSeesSmallErrorsAndNaN) {
  const std::vector<double> golden = {-0.5, -1.5, -3.0};
  std::vector<float> row = {-0.5f, -1.5f, -3.0f};
  EXPECT_LE(RowDelta(row.data(), golden), 1e-7);
  row[2] += 2e-4f;
  EXPECT_GT(RowDelta(row.data(), golden), kTolerance);
  row[2] = NAN;
  EXPECT_GT(RowDelta(row.data(), golden), kTolerance);
}

// The fixtures can tell a wrong gate order apart: swapping the i and f
// blocks of one layer moves the log-probs far beyond the tolerance.
TEST(GoldenFixtures, DetectASwappedGateOrder) {
  for (const std::string& name : {std::string("l1_h13"), std::string("l4_e10_h21_unicode")}) {
    auto pkg = LoadModelPackage(testing::GoldenDir(name));
    ASSERT_TRUE(pkg.ok()) << pkg.status();
    const int H = pkg->config.hidden_size;
    LstmLayerWeights& l = pkg->weights.layers.back();
    for (Tensor* t : {&l.w_ih, &l.w_hh, &l.b_ih, &l.b_hh}) {
      const size_t block = t->data.size() / 4;  // rows [0, H) are i, [H, 2H) are f
      ASSERT_EQ(block % H, 0u);
      std::swap_ranges(t->data.begin(), t->data.begin() + block, t->data.begin() + block);
    }
    const ModelConfig config = pkg->config;
    auto engine = CreateReferenceEngine(*std::move(pkg), EngineOptions{});
    ASSERT_TRUE(engine.ok());
    const Golden golden = LoadGolden(name);
    const GoldenSequence& seq = golden.sequences[0];
    SequenceState state = SequenceState::Zeros(config.num_layers, H);
    SequenceState* states[] = {&state};
    std::vector<float> row(config.vocab_size);
    double max_delta = 0.0;
    for (size_t t = 0; t < seq.ids.size(); ++t) {
      ASSERT_TRUE((*engine)->Step(absl::MakeConstSpan(&seq.ids[t], 1), states, row.data()).ok());
      max_delta = std::max(max_delta, RowDelta(row.data(), seq.logprobs[t]));
    }
    EXPECT_GT(max_delta, 0.1) << name;
  }
}

TEST(GoldenFixtures, CoverTheAwkwardShapes) {
  bool l1 = false, l4 = false, e_ne_h = false, odd_h = false, non_ascii = false, bf16 = false,
       f16 = false, byte = false;
  for (const std::string& name : FixtureNames()) {
    auto pkg = LoadModelPackage(testing::GoldenDir(name));
    ASSERT_TRUE(pkg.ok()) << pkg.status();
    const ModelConfig& c = pkg->config;
    l1 |= c.num_layers == 1;
    l4 |= c.num_layers == 4;
    e_ne_h |= c.embedding_dim != c.hidden_size;
    odd_h |= c.hidden_size % 16 != 0;
    for (char32_t cp : c.tokenizer.vocab) non_ascii |= cp > 0xFFFF;  // outside the BMP
    byte |= c.tokenizer.type == TokenizerType::kByte;
    const std::string dtype = nlohmann::json::parse(testing::ReadFileOrDie(
                                  testing::GoldenDir(name) + "/golden.json"))
                                  .at("weights_dtype");
    bf16 |= dtype == "BF16";
    f16 |= dtype == "F16";
  }
  EXPECT_TRUE(l1 && l4 && e_ne_h && odd_h && non_ascii && bf16 && f16 && byte);
}

}  // namespace
}  // namespace lstmserve
