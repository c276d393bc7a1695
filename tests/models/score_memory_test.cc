// Score's memory bound (PrefillItem::next_token_logprobs): scoring 4,096
// tokens of a 32k-vocabulary model raises the process's peak RSS by a few
// MB, where the [T, V] log-prob matrix Score used to ask for is 0.5 GB. The
// same measurement then sees the 0.5 GB when all_logprobs is used, so the
// ruler is shown to work. Alone in its binary: ru_maxrss is a per-process
// high-water mark, which another test's peak would hide.
#include <sys/resource.h>

#include <cstdint>
#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "models/onednn_engine.h"
#include "testing/random_package.h"

namespace lstmserve {
namespace {

int64_t PeakRssBytes() {
  struct rusage usage {};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<int64_t>(usage.ru_maxrss) * 1024;  // KB on Linux
}

TEST(ScoreMemory, NextTokenLogprobsStayFarBelowATokensByVocabularyMatrix) {
  RandomPackageShape shape;
  shape.vocab_size = 32000;
  shape.embedding_dim = 16;
  shape.hidden_size = 32;
  shape.num_layers = 1;
  EngineOptions options;
  options.threads = 1;
  auto engine = CreateOneDnnEngine(RandomPackage(shape), options);
  ASSERT_TRUE(engine.ok()) << engine.status();
  const int V = shape.vocab_size;
  const int T = 4096;
  std::vector<int32_t> tokens(T);
  std::mt19937 rng(3);
  for (int32_t& t : tokens) t = static_cast<int32_t>(rng() % V);
  const int64_t matrix_bytes = int64_t{T} * V * static_cast<int64_t>(sizeof(float));  // 524 MB

  const int64_t before = PeakRssBytes();
  SequenceState state = SequenceState::Zeros(1, shape.hidden_size);
  std::vector<float> next(T - 1);
  PrefillItem item{tokens, &state, nullptr, nullptr, next.data()};
  ASSERT_TRUE((*engine)->Prefill({item}).ok());
  const int64_t scored = PeakRssBytes();
  std::printf("[ memory   ] T=%d V=%d: next_token_logprobs raised peak RSS by %.1f MB\n", T, V,
              (scored - before) / 1e6);
  EXPECT_LT(scored - before, int64_t{64} << 20);
  for (float lp : next) ASSERT_LE(lp, 0.0f);

  // The ruler: the [T, V] matrix shows up in the same measurement.
  std::vector<float> all(static_cast<size_t>(T) * V);
  SequenceState state2 = SequenceState::Zeros(1, shape.hidden_size);
  PrefillItem full{tokens, &state2, nullptr, all.data()};
  ASSERT_TRUE((*engine)->Prefill({full}).ok());
  const int64_t with_matrix = PeakRssBytes();
  std::printf("[ memory   ] all_logprobs raised it by %.1f MB more\n",
              (with_matrix - scored) / 1e6);
  EXPECT_GT(with_matrix - scored, matrix_bytes * 3 / 4);
  for (int t = 0; t + 1 < T; ++t) {
    ASSERT_NEAR(next[t], all[static_cast<size_t>(t) * V + tokens[t + 1]], 1e-5) << t;
  }
}

}  // namespace
}  // namespace lstmserve
