// The matmul layers' LSTM cell (models/lstm_cell.h): both kernels against the
// cell computed in double precision, over random and saturating inputs and
// widths that are not multiples of the 16-float vector.
#include "models/lstm_cell.h"

#include <cmath>
#include <random>
#include <vector>

#include "gtest/gtest.h"

namespace lstmserve::onednn {
namespace {

double Sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }

struct Case {
  std::vector<float> x, r, c;
};

Case MakeCase(int64_t H, float range, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-range, range);
  Case k;
  for (int64_t i = 0; i < 4 * H; ++i) k.x.push_back(u(rng));
  for (int64_t i = 0; i < 4 * H; ++i) k.r.push_back(u(rng));
  for (int64_t i = 0; i < H; ++i) k.c.push_back(u(rng));
  return k;
}

void ExpectCellExact(CellKernel kernel, int64_t H, float range, uint32_t seed) {
  const Case k = MakeCase(H, range, seed);
  std::vector<float> r = k.r, c = k.c, h(H, 0.0f);
  LstmCell(k.x.data(), r.data(), H, c.data(), h.data(), kernel);
  for (int64_t j = 0; j < H; ++j) {
    // The gate sum is rounded to float as the kernels do; the rest is exact.
    auto gate = [&](int g) { return double{k.x[g * H + j] + k.r[g * H + j]}; };
    const double cell = Sigmoid(gate(1)) * k.c[j] + Sigmoid(gate(0)) * std::tanh(gate(2));
    const double out = Sigmoid(gate(3)) * std::tanh(cell);
    // Float rounding of sigmoid(f) (~1 ulp) is scaled by the old cell state.
    const double tolerance = 1e-6 * (1.0 + std::fabs(k.c[j]));
    ASSERT_NEAR(c[j], cell, tolerance) << "c[" << j << "] H=" << H << " range=" << range;
    ASSERT_NEAR(h[j], out, tolerance) << "h[" << j << "] H=" << H << " range=" << range;
  }
}

TEST(LstmCellTest, PortableKernelMatchesDoublePrecision) {
  for (int64_t H : {1, 7, 16, 37, 512}) {
    for (float range : {0.5f, 4.0f, 60.0f, 200.0f}) {
      ExpectCellExact(CellKernel::kPortable, H, range, static_cast<uint32_t>(H * 31 + range));
    }
  }
}

TEST(LstmCellTest, Avx512KernelMatchesDoublePrecision) {
  if (!__builtin_cpu_supports("avx512f")) GTEST_SKIP() << "this CPU has no AVX-512F";
  for (int64_t H : {1, 7, 16, 37, 512}) {
    for (float range : {0.5f, 4.0f, 60.0f, 200.0f}) {
      ExpectCellExact(CellKernel::kAvx512, H, range, static_cast<uint32_t>(H * 31 + range));
    }
  }
}

TEST(LstmCellTest, AutoPicksAvx512WhereTheCpuHasIt) {
  EXPECT_EQ(BestCellKernel(), __builtin_cpu_supports("avx512f") ? CellKernel::kAvx512
                                                                 : CellKernel::kPortable);
}

}  // namespace
}  // namespace lstmserve::onednn
