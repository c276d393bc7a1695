// bf16 and int8 quality on the demo model (models/shakespeare/, a trained
// char 2x384 LSTM): perplexity over held-out Shakespeare must stay within 1%
// (bf16) and 3% (int8) of f32. LSTMSERVE_DEMO_MODEL=<dir> points it at another
// package (e.g. one exported from an intermediate checkpoint).
//
// Held-out text: tests/models/data/tinyshakespeare_heldout_20k.txt, the first
// 20,000 characters of the split tools/train.py holds out (the last 10% of
// tinyshakespeare.txt; tests/models/data/README.md), scored with the state
// carried from the zero state, via one Prefill with all_logprobs.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "models/model_package.h"
#include "models/onednn_engine.h"
#include "models/tokenizer.h"

namespace lstmserve {
namespace {


std::string DemoModelDir() {
  if (const char* dir = std::getenv("LSTMSERVE_DEMO_MODEL")) return dir;
  return std::string(LSTMSERVE_SOURCE_DIR) + "/models/shakespeare";
}

std::string HeldOutPath() {
  return std::string(LSTMSERVE_SOURCE_DIR) + "/tests/models/data/tinyshakespeare_heldout_20k.txt";
}

struct Scored {
  double perplexity = 0.0;
  std::vector<float> all;  // [T, V] log-probs
};

TEST(OneDnnPrecisionTest, Bf16AndInt8PerplexityStayCloseToF32OnHeldOutShakespeare) {
  const std::string model_dir = DemoModelDir();
  std::ifstream in(HeldOutPath(), std::ios::binary);
  ASSERT_TRUE(in) << "cannot read " << HeldOutPath();
  std::stringstream text;
  text << in.rdbuf();
  ASSERT_EQ(text.str().size(), 20000u) << HeldOutPath();

  auto pkg = LoadModelPackage(model_dir);
  ASSERT_TRUE(pkg.ok()) << pkg.status();
  auto tokenizer = Tokenizer::Create(pkg->config.tokenizer);
  ASSERT_TRUE(tokenizer.ok()) << tokenizer.status();
  auto ids = (*tokenizer)->Encode(text.str(), "held-out text");
  ASSERT_TRUE(ids.ok()) << ids.status();
  const std::vector<int32_t>& eval = *ids;
  ASSERT_GT(eval.size(), 2u);
  const ModelConfig config = pkg->config;
  const int V = config.vocab_size;
  // Feed eval[0..T-2], score eval[1..T-1].
  const absl::Span<const int32_t> inputs(eval.data(), eval.size() - 1);

  auto score = [&](Precision precision, Scored* out) -> absl::Status {
    EngineOptions options;
    options.precision = precision;
    // One thread: numerics do not depend on it, and OpenMP teams on a busy
    // machine can be many times slower.
    options.threads = 1;
    auto package = LoadModelPackage(model_dir);
    if (!package.ok()) return package.status();
    auto engine = CreateOneDnnEngine(*std::move(package), options);
    if (!engine.ok()) return engine.status();
    SequenceState state = SequenceState::Zeros(config.num_layers, config.hidden_size);
    out->all.assign(inputs.size() * V, 0.0f);
    PrefillItem item{inputs, &state, nullptr, out->all.data()};
    absl::Status s = (*engine)->Prefill(absl::MakeConstSpan(&item, 1));
    if (!s.ok()) return s;
    double nll = 0.0;
    for (size_t t = 0; t < inputs.size(); ++t) nll -= out->all[t * V + eval[t + 1]];
    out->perplexity = std::exp(nll / inputs.size());
    return absl::OkStatus();
  };

  Scored f32;
  ASSERT_TRUE(score(Precision::kF32, &f32).ok());
  std::printf("[ ppl      ] %s, %zu held-out chars: f32 perplexity %.4f\n", model_dir.c_str(),
              inputs.size(), f32.perplexity);
  struct Gate {
    Precision precision;
    double max_relative;
  };
  for (const Gate gate : {Gate{Precision::kBF16, 0.01}, Gate{Precision::kInt8, 0.03}}) {
    Scored low;
    const absl::Status s = score(gate.precision, &low);
    if (s.code() == absl::StatusCode::kFailedPrecondition) {
      std::printf("[ ppl      ] %s not runnable on this CPU: %s\n", PrecisionName(gate.precision),
                  std::string(s.message()).c_str());
      continue;
    }
    ASSERT_TRUE(s.ok()) << s;
    double sum = 0.0, max = 0.0;
    for (size_t i = 0; i < low.all.size(); ++i) {
      const double d = std::abs(double{low.all[i]} - f32.all[i]);
      sum += d;
      max = std::max(max, d);
    }
    const double relative = low.perplexity / f32.perplexity - 1.0;
    std::printf(
        "[ ppl      ] %-4s perplexity %.4f (%+.3f%% vs f32, limit %.0f%%); |d logprob| mean %.4g, "
        "max %.4g\n",
        PrecisionName(gate.precision), low.perplexity, 100.0 * relative, 100.0 * gate.max_relative,
        sum / low.all.size(), max);
    EXPECT_LE(std::abs(relative), gate.max_relative) << PrecisionName(gate.precision);
  }
}

}  // namespace
}  // namespace lstmserve
