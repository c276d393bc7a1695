// InputTableLayer: layer 0 of a small-vocabulary (char-level) model run as a
// per-token lookup table plus the recurrent matmul, instead of an LSTM
// primitive. Part of the oneDNN engine (models/onednn_lstm_stack.h).
//
// Layer 0's input is always one of V embedding rows, so its input
// projection takes only V values: table[v] = W_ih · embedding[v] + b_ih +
// b_hh, [V, 4H], computed once at load in double precision. A step then
// costs one [N, H] x [H, 4H] matmul (oneDNN, W_hh packed once) and the cell
// — layer 0's input GEMM (a sixth of a 3x512 char model's work, and of its
// weight traffic at batch 1) disappears. Used when the table is no bigger
// than twice W_ih (V <= 2E) and the precision is f32 or bf16 (bf16: W_hh
// and h in bf16, accumulation, table and cell in f32).
//
// Gate order i, f, g, o (PyTorch's), in the table's and W_hh's columns:
//   c' = sigmoid(f) * c + sigmoid(i) * tanh(g);  h' = sigmoid(o) * tanh(c').
//
// Not thread-safe; may throw dnnl::error (the engine catches it).
#ifndef LSTMSERVE_MODELS_ONEDNN_INPUT_TABLE_H_
#define LSTMSERVE_MODELS_ONEDNN_INPUT_TABLE_H_

#include <cstdint>
#include <memory>
#include <unordered_map>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/types/span.h"
#include "models/lstm_state.h"
#include "models/model_package.h"
#include "models/onednn_common.h"
#include "oneapi/dnnl/dnnl.hpp"

namespace lstmserve::onednn {

class InputTableLayer {
 public:
  // Whether layer 0 of `config` runs this way at `precision`.
  static bool Applies(const ModelConfig& config, Precision precision);
  // Builds the table from weights.embedding and weights.layers[0] and packs
  // layer 0's W_hh (the caller releases the originals). `max_batch` steers
  // the packed layout, as in LstmStack.
  static std::unique_ptr<InputTableLayer> Create(const ModelConfig& config,
                                                 const ModelWeights& weights, Precision precision,
                                                 int max_batch, const dnnl::engine& engine,
                                                 dnnl::stream* stream);

  // Runs T timesteps of N = states.size() sequences: sequence n reads token
  // token(t, n) at step t; layer 0 of states[n] is read, then replaced by
  // its state after step T-1. Writes layer 0's output h of every step to
  // `out`, [T, N, H] in the activation data type.
  void Forward(int T, absl::FunctionRef<int32_t(int t, int n)> token,
               absl::Span<SequenceState* const> states, uint8_t* out, Scratchpad* scratchpad,
               dnnl::stream* stream);

  size_t weight_bytes() const;

 private:
  struct Matmul {
    dnnl::matmul prim;
    dnnl::memory src, dst, scratchpad;
  };
  InputTableLayer(const ModelConfig& config, Precision precision);
  dnnl::matmul::primitive_desc MakeMatmul(int M, const dnnl::memory::desc& weights_md) const;
  Matmul& Get(int M);

  const ModelConfig config_;
  const NumericFormat format_;
  dnnl::engine engine_;
  dnnl::primitive_attr attr_;
  std::vector<float> table_;  // [V, 4H]
  dnnl::memory::desc weights_md_;
  dnnl::memory weights_;  // W_hh^T: [H, 4H], packed
  std::unordered_map<int, Matmul> cache_;
  AlignedBuffer h_src_;            // [N, H] h in the activation type (bf16 only)
  std::vector<float> h_, c_;       // [N, H] layer-0 state while stepping
  AlignedBuffer recurrent_;        // [N, 4H] f32: h · W_hh^T
};

}  // namespace lstmserve::onednn

#endif  // LSTMSERVE_MODELS_ONEDNN_INPUT_TABLE_H_
