// The oneDNN engine on a CPU without AVX-512, simulated: ONEDNN_MAX_CPU_ISA
// is set to AVX2 before oneDNN first runs (a static initializer; this binary
// holds only these tests, so no earlier oneDNN use can have fixed the ISA).
// bf16 must fail cleanly at creation; f32 must still match the reference
// engine (other kernels, possibly another weight layout); int8 either runs
// close to f32 (its narrow-range quantization) or fails cleanly.
#include <stdlib.h>

#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "models/onednn_engine.h"
#include "models/reference_engine.h"
#include "testing/random_package.h"

namespace {
const int kForceAvx2 = setenv("ONEDNN_MAX_CPU_ISA", "AVX2", /*overwrite=*/1);
}  // namespace

namespace lstmserve {
namespace {

// Max |Δ log-prob| between two engines over `steps` steps of a batch of 3.
double Compare(InferenceEngine* a, InferenceEngine* b, int steps) {
  const ModelConfig& c = a->config();
  const int V = c.vocab_size, N = 3;
  std::vector<SequenceState> sa(N, SequenceState::Zeros(c.num_layers, c.hidden_size)), sb = sa;
  std::vector<SequenceState*> pa, pb;
  for (int n = 0; n < N; ++n) {
    pa.push_back(&sa[n]);
    pb.push_back(&sb[n]);
  }
  std::mt19937 rng(1);
  double d = 0.0;
  for (int s = 0; s < steps; ++s) {
    std::vector<int32_t> tokens(N);
    for (int32_t& t : tokens) t = static_cast<int32_t>(rng() % V);
    std::vector<float> la(N * V), lb(N * V);
    EXPECT_TRUE(a->Step(tokens, pa, la.data()).ok());
    EXPECT_TRUE(b->Step(tokens, pb, lb.data()).ok());
    for (size_t i = 0; i < la.size(); ++i) d = std::max(d, double{std::abs(la[i] - lb[i])});
  }
  return d;
}

TEST(OneDnnIsaTest, WithoutAvx512Bf16FailsCleanlyAndF32StillMatches) {
  ASSERT_EQ(kForceAvx2, 0);
  const RandomPackageShape shape{.vocab_size = 30, .embedding_dim = 12, .hidden_size = 24};
  EngineOptions bf16;
  bf16.precision = Precision::kBF16;
  const auto failed = CreateOneDnnEngine(RandomPackage(shape), bf16);
  EXPECT_EQ(failed.status().code(), absl::StatusCode::kFailedPrecondition) << failed.status();
  std::printf("[ avx2     ] bf16: %s\n", failed.status().ToString().c_str());

  auto f32 = CreateOneDnnEngine(RandomPackage(shape), EngineOptions{});
  ASSERT_TRUE(f32.ok()) << f32.status();
  auto reference = CreateReferenceEngine(RandomPackage(shape), EngineOptions{});
  ASSERT_TRUE(reference.ok());
  const double d = Compare(f32->get(), reference->get(), 20);
  std::printf("[ avx2     ] f32 vs reference: max |d logprob| = %.3g\n", d);
  EXPECT_LE(d, 1e-4);

  EngineOptions int8;
  int8.precision = Precision::kInt8;
  auto q = CreateOneDnnEngine(RandomPackage(shape), int8);
  if (!q.ok()) {
    EXPECT_EQ(q.status().code(), absl::StatusCode::kFailedPrecondition) << q.status();
    std::printf("[ avx2     ] int8: %s\n", q.status().ToString().c_str());
  } else {
    const double dq = Compare(q->get(), f32->get(), 20);
    std::printf("[ avx2     ] int8 vs f32: max |d logprob| = %.3g\n", dq);
    EXPECT_LE(dq, 0.25);
  }
}

}  // namespace
}  // namespace lstmserve
