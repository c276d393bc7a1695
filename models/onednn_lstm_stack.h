// LstmStack: the embedding and the L stacked LSTM layers of a model over
// weights packed once. Part of the oneDNN engine (models/onednn_engine.h);
// the output head is models/onednn_head.h.
//
// f32 and bf16: every layer is a MatmulLayer (models/onednn_matmul_layer.h:
// oneDNN matmuls + a vectorized cell, faster than the LSTM primitive on the
// machines measured; layer 0 of a small-vocabulary model reads a per-token
// table instead of an input matmul).
//
// int8: oneDNN LSTM primitives, layers grouped into segments, each one
// multi-layer primitive: one segment for all layers when E == H; when E != H
// layer 0 gets its own (oneDNN needs equal widths for layers above 0). int8 weight scales are per
// gate row and shared by the layers of a segment (oneDNN's rule), so they are
// taken over all of its layers. One primitive per layer instead measured no
// more accurate on the tests' models and ~5-10% slower (bench/engine_bench).
// Each segment's weights are reordered once into the layout oneDNN prefers
// (format_tag::any); at creation the layout is checked to be the same for
// small and large batches and long prompts, so one copy serves every (T, N).
// Where it is not (CPUs without the brgemm kernels), the plain ldigo layout is
// used instead: still one copy. The f32 originals are released.
//
// Primitives are created lazily per (T, N) and cached (~0.2-0.5 ms to create,
// a cache hit is a hash lookup). Buffers grow to the largest call seen.
//
// Not thread-safe; may throw dnnl::error (the engine catches it).
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
  ~LstmStack();

  // Runs T timesteps of N = states.size() sequences: sequence n reads token
  // token(t, n) at step t; states[n] is read, then replaced by the state
  // after step T-1. Tokens must be valid ids.
  void Forward(int T, absl::FunctionRef<int32_t(int t, int n)> token,
               absl::Span<SequenceState* const> states, Scratchpad* scratchpad,
               dnnl::stream* stream);

  // The top layer's outputs of the last Forward, in the activation data
  // type: [T, N, H], the row of (t, n) at element (t * N + n) * H.
  const uint8_t* output() const;

  // Bytes held by packed weights, biases and the embedding table.
  size_t weight_bytes() const;
  // True when layer 0 runs from its lookup table.
  bool layer0_table() const { return !layers_.empty() && layers_[0]->table(); }
  // True when the layers are MatmulLayers (f32, bf16), false for LSTM
  // primitive segments (int8).
  bool matmul_layers() const { return !layers_.empty(); }
  // Number of segments (oneDNN LSTM primitives per timestep chunk; 0 with
  // matmul layers).
  int num_segments() const { return static_cast<int>(segments_.size()); }
  // Primitives created so far (all segments).
  int primitives_created() const;
  // True when the packed (preferred) layout is used, false for plain ldigo.
  bool packed_layout() const { return packed_layout_; }

 private:
  struct Segment;
  LstmStack(const ModelConfig& config, Precision precision);
  void BuildEmbeddingTable(const Tensor& embedding, const std::vector<float>& column_scale);
  void PackSegment(Segment* seg, const ModelWeights& weights,
                   const std::vector<float>& layer0_column_scale, int max_batch,
                   int max_prompt_chunk, const dnnl::engine& engine, dnnl::stream* stream);
  dnnl::lstm_forward::desc MakeDesc(const Segment& seg, int T, int N, bool any_weights) const;
  struct Primitive;
  Primitive& GetPrimitive(Segment* seg, int T, int N);

  const ModelConfig config_;
  const NumericFormat format_;
  dnnl::engine engine_;
  std::vector<uint8_t> embedding_table_;  // [V, E] in the activation data type
  std::vector<std::unique_ptr<MatmulLayer>> layers_;  // f32/bf16: one per layer
  std::vector<std::unique_ptr<Segment>> segments_;
  AlignedBuffer input_;           // [T, N, E] layer-0 inputs
  AlignedBuffer activations_[2];  // segment outputs, ping-pong: [T, N, H]
  const uint8_t* output_ = nullptr;
  bool packed_layout_ = true;
  int primitives_created_ = 0;
};

}  // namespace lstmserve::onednn

#endif  // LSTMSERVE_MODELS_ONEDNN_LSTM_STACK_H_
