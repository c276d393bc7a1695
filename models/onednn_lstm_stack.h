// LstmStack: the embedding and the L stacked LSTM layers of a model over
// weights packed once. Part of the oneDNN engine (models/onednn_engine.h);
// the output head is models/onednn_head.h.
//
// Every layer is a MatmulLayer (models/onednn_matmul_layer.h: packed oneDNN
// matmuls + a vectorized cell), at f32, bf16 and int8. Layer 0 of a
// small-vocabulary model reads a per-token table instead of an input
// matmul; otherwise layer 0's inputs are rows of an embedding table kept in
// the activation data type. oneDNN's LSTM primitive is not used: on the
// machines measured the matmul layers were faster at every batch size and
// for prompts (bench/engine_bench.cc compares them with the bare primitive).
//
// int8 activations must lie in [-1, 1]. h does (it is o * tanh(c)); the
// embedding need not, so each embedding column is divided by its largest
// magnitude and layer 0's input weights are multiplied by it (exact in real
// arithmetic). A projected h need not either: its rows carry row scales
// (models/onednn_matmul_layer.h), output_scales() for the top layer's.
//
// Buffers grow to the largest call seen. Not thread-safe; may throw
// dnnl::error (the engine catches it).
#ifndef LSTMSERVE_MODELS_ONEDNN_LSTM_STACK_H_
#define LSTMSERVE_MODELS_ONEDNN_LSTM_STACK_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/types/span.h"
#include "models/engine.h"
#include "models/lstm_state.h"
#include "models/model_package.h"
#include "models/onednn_common.h"
#include "models/onednn_matmul_layer.h"
#include "oneapi/dnnl/dnnl.hpp"

namespace lstmserve::onednn {

class LstmStack {
 public:
  // Packs weights->embedding and weights->layers (and releases them).
  // `max_batch` and `max_prompt_chunk` are the largest N and T the engine
  // will use; they only steer the layout check.
  static std::unique_ptr<LstmStack> Create(const ModelConfig& config, ModelWeights* weights,
                                           Precision precision, int max_batch, int max_prompt_chunk,
                                           const dnnl::engine& engine, dnnl::stream* stream);

  // Runs T timesteps of N = states.size() sequences: sequence n reads token
  // token(t, n) at step t; states[n] is read, then replaced by the state
  // after step T-1. Tokens must be valid ids.
  void Forward(int T, absl::FunctionRef<int32_t(int t, int n)> token,
               absl::Span<SequenceState* const> states, Scratchpad* scratchpad,
               dnnl::stream* stream);

  // The top layer's outputs of the last Forward, in the activation data
  // type: [T, N, R], the row of (t, n) at element (t * N + n) * R (R = the
  // width of h: proj_size when projected, else hidden_size).
  const uint8_t* output() const { return output_; }
  // int8 with a projection: the row scales of output() rows, [T, N] (row
  // (t, n) is output() row times this); else null.
  const float* output_scales() const { return output_scales_; }

  // Bytes held by packed weights, biases and the tables.
  size_t weight_bytes() const;
  // True when layer 0 runs from its lookup table.
  bool layer0_table() const { return layers_[0]->table(); }
  // Primitives created so far (all layers).
  int primitives_created() const;

 private:
  LstmStack(const ModelConfig& config, Precision precision);
  void BuildEmbeddingTable(const Tensor& embedding, const std::vector<float>& column_scale);

  const ModelConfig config_;
  const NumericFormat format_;
  std::vector<uint8_t> embedding_table_;  // [V, E] in the activation type; empty with a table
  std::vector<std::unique_ptr<MatmulLayer>> layers_;
  AlignedBuffer input_;           // [T, N, E] layer-0 inputs
  AlignedBuffer activations_[2];  // layer outputs, ping-pong: [T, N, R]
  std::vector<float> scales_[2];  // their row scales, [T, N] (int8 with a projection)
  const uint8_t* output_ = nullptr;
  const float* output_scales_ = nullptr;
};

}  // namespace lstmserve::onednn

#endif  // LSTMSERVE_MODELS_ONEDNN_LSTM_STACK_H_
