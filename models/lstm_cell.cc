#include "models/lstm_cell.h"

#include <immintrin.h>

#include <Eigen/Core>

// GCC 12's AVX-512 intrinsics start masked ops from _mm512_undefined_ps(),
// which -Wmaybe-uninitialized reports once inlined here: a false positive.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace lstmserve::onednn {
namespace {

void PortableCell(const float* x, float* r, int64_t H, float* c, float* h) {
  using Array = Eigen::Map<Eigen::ArrayXf>;
  using ConstArray = Eigen::Map<const Eigen::ArrayXf>;
  const int64_t G = 4 * H;
  Array(r, G) += ConstArray(x, G);
  Array cell(c, H), out(h, H);
  const Array i(r, H), f(r + H, H), g(r + 2 * H, H), o(r + 3 * H, H);
  cell = f.logistic() * cell + i.logistic() * g.tanh();
  out = o.logistic() * cell.tanh();
}

// exp(x) for x in float range: x = n ln2 + t, |t| <= ln2 / 2,
// exp(t) by Cephes' expf polynomial, times 2^n by scalef. Inputs are clamped
// to [-88, 88] (sigmoid and tanh saturate long before).
__attribute__((target("avx512f"))) inline __m512 Exp(__m512 x) {
  x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(-88.0f)), _mm512_set1_ps(88.0f));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 t = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
  t = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), t);
  __m512 p = _mm512_set1_ps(1.9875691500e-4f);
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(1.3981999507e-3f));
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(8.3334519073e-3f));
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(4.1665795894e-2f));
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(1.6666665459e-1f));
  p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(5.0000001201e-1f));
  const __m512 t2 = _mm512_mul_ps(t, t);
  const __m512 y = _mm512_add_ps(_mm512_fmadd_ps(p, t2, t), _mm512_set1_ps(1.0f));
  return _mm512_scalef_ps(y, n);
}

__attribute__((target("avx512f"))) inline __m512 Sigmoid(__m512 x) {
  const __m512 one = _mm512_set1_ps(1.0f);
  return _mm512_div_ps(one, _mm512_add_ps(one, Exp(_mm512_sub_ps(_mm512_setzero_ps(), x))));
}

// tanh(x) = 1 - 2 / (exp(2x) + 1): absolute error ~1e-7 near 0.
__attribute__((target("avx512f"))) inline __m512 Tanh(__m512 x) {
  const __m512 one = _mm512_set1_ps(1.0f);
  const __m512 e = Exp(_mm512_add_ps(x, x));
  return _mm512_sub_ps(one, _mm512_div_ps(_mm512_set1_ps(2.0f), _mm512_add_ps(e, one)));
}

// x + r for gate k, elements [j, j + 16) under mask m.
__attribute__((target("avx512f"))) inline __m512 Gate(const float* x, const float* r, int64_t H,
                                                      int64_t k, int64_t j, __mmask16 m) {
  return _mm512_add_ps(_mm512_maskz_loadu_ps(m, x + k * H + j),
                       _mm512_maskz_loadu_ps(m, r + k * H + j));
}

__attribute__((target("avx512f"))) void Avx512Cell(const float* x, const float* r, int64_t H,
                                                   float* c, float* h) {
  for (int64_t j = 0; j < H; j += 16) {
    const __mmask16 m = H - j >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << (H - j)) - 1);
    const __m512 i = Sigmoid(Gate(x, r, H, 0, j, m)), f = Sigmoid(Gate(x, r, H, 1, j, m)),
                 g = Tanh(Gate(x, r, H, 2, j, m)), o = Sigmoid(Gate(x, r, H, 3, j, m));
    const __m512 cell = _mm512_fmadd_ps(f, _mm512_maskz_loadu_ps(m, c + j), _mm512_mul_ps(i, g));
    _mm512_mask_storeu_ps(c + j, m, cell);
    _mm512_mask_storeu_ps(h + j, m, _mm512_mul_ps(o, Tanh(cell)));
  }
}

}  // namespace

CellKernel BestCellKernel() {
  static const CellKernel best =
      __builtin_cpu_supports("avx512f") ? CellKernel::kAvx512 : CellKernel::kPortable;
  return best;
}

void LstmCell(const float* x, float* r, int64_t H, float* c, float* h, CellKernel kernel) {
  if (kernel == CellKernel::kAuto) kernel = BestCellKernel();
  if (kernel == CellKernel::kAvx512) {
    Avx512Cell(x, r, H, c, h);
  } else {
    PortableCell(x, r, H, c, h);
  }
}

}  // namespace lstmserve::onednn
