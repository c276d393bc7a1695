// OutputHead: the linear output layer and log-softmax of the oneDNN engine
// (models/onednn_engine.h) as a oneDNN matmul plus a logsoftmax primitive.
//
//   logprobs[M, V] = log_softmax(h[M, H] · head_wᵀ[H, V] + head_b[V])
//
// h arrives in the activation data type of the precision (f32, bf16, or u8
// quantized as in models/onednn_common.h); head weights are f32, bf16 or s8
// with one scale per vocabulary column, packed once into the layout oneDNN
// prefers (checked to be the same for M = 1 and M = max_rows, else plain).
// Primitives are cached per M. Not thread-safe; may throw dnnl::error.
//
// int8 with a projection: h rows arrive with row scales (each row was
// encoded divided by its largest magnitude, models/onednn_matmul_layer.h), so
// the matmul runs without its bias and logits row m = scale[m] * (matmul row
// m) + head_b before the log-softmax.
#ifndef LSTMSERVE_MODELS_ONEDNN_HEAD_H_
#define LSTMSERVE_MODELS_ONEDNN_HEAD_H_

#include <memory>
#include <unordered_map>
#include <vector>

#include "models/engine.h"
#include "models/model_package.h"
#include "models/onednn_common.h"
#include "oneapi/dnnl/dnnl.hpp"

namespace lstmserve::onednn {

class OutputHead {
 public:
  // Packs weights->head_w and head_b (and releases them).
  static std::unique_ptr<OutputHead> Create(const ModelConfig& config, ModelWeights* weights,
                                            Precision precision, int max_rows,
                                            const dnnl::engine& engine, dnnl::stream* stream);

  // Writes log-probs for M rows of h (1 <= M <= max_rows()); `h` is [M, H]
  // row-major in the activation data type, `logprobs` [M, V] f32.
  // `row_scales` [M]: h's row scales, required iff row_scaled(), else null.
  void Run(const void* h, const float* row_scales, int M, float* logprobs, Scratchpad* scratchpad,
           dnnl::stream* stream);

  bool row_scaled() const { return !row_bias_.empty(); }
  int max_rows() const { return max_rows_; }
  size_t weight_bytes() const;

 private:
  struct Primitives {
    dnnl::matmul matmul;
    dnnl::logsoftmax_forward logsoftmax;
    dnnl::memory src, dst, matmul_scratchpad, logsoftmax_scratchpad;
  };
  OutputHead(const ModelConfig& config, Precision precision, int max_rows)
      : config_(config), format_(FormatFor(precision)), max_rows_(max_rows) {}
  dnnl::matmul::primitive_desc MakeMatmul(int M, const dnnl::memory::desc& weights_md) const;
  Primitives& Get(int M);

  const ModelConfig config_;
  const NumericFormat format_;
  const int max_rows_;
  dnnl::engine engine_;
  dnnl::primitive_attr attr_;  // user scratchpad (+ int8 zero point, scales)
  dnnl::memory::desc weights_md_;
  dnnl::memory weights_, bias_;   // bias_ unused when row_scaled()
  std::vector<float> row_bias_;   // [V] head_b, added after the row scales (row_scaled())
  std::unordered_map<int, Primitives> cache_;  // by M
};

}  // namespace lstmserve::onednn

#endif  // LSTMSERVE_MODELS_ONEDNN_HEAD_H_
