// LstmCell: the elementwise part of one LSTM timestep for one sequence, used
// by the oneDNN engine's matmul layers (models/onednn_matmul_layer.h).
//
//   gates = x + r            (both [4H], gate order i, f, g, o: PyTorch's)
//   c' = sigmoid(f) * c + sigmoid(i) * tanh(g)
//   h' = sigmoid(o) * tanh(c')
//
// Two implementations, chosen once per process by CPUID: AVX-512F
// intrinsics (exp by range reduction and a degree-6 polynomial, as Cephes'
// expf; sigmoid and tanh from it), and portable Eigen for CPUs without
// AVX-512 (the shipped build targets plain x86-64, where Eigen would only use
// SSE2). Both are within 1e-6 of the exact cell (tests/models/lstm_cell_test.cc).
//
// `r` may be overwritten (scratch). Pure function of its arguments;
// thread-safe for disjoint outputs.
#ifndef LSTMSERVE_MODELS_LSTM_CELL_H_
#define LSTMSERVE_MODELS_LSTM_CELL_H_

#include <cstdint>

namespace lstmserve::onednn {

enum class CellKernel { kAuto, kPortable, kAvx512 };

// The kernel kAuto picks on this CPU.
CellKernel BestCellKernel();

void LstmCell(const float* x, float* r, int64_t H, float* c, float* h,
              CellKernel kernel = CellKernel::kAuto);

}  // namespace lstmserve::onednn

#endif  // LSTMSERVE_MODELS_LSTM_CELL_H_
