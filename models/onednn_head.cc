#include "models/onednn_head.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "models/onednn_matmul_layer.h"

namespace lstmserve::onednn {
namespace {
using md = dnnl::memory::desc;
}  // namespace

std::unique_ptr<OutputHead> OutputHead::Create(const ModelConfig& config, ModelWeights* weights,
                                               Precision precision, int max_rows,
                                               const dnnl::engine& engine, dnnl::stream* stream) {
  std::unique_ptr<OutputHead> head(new OutputHead(config, precision, max_rows));
  head->engine_ = engine;
  // H here is the width of h the head reads (proj_size when projected).
  const int64_t V = config.vocab_size, H = config.output_size();
  std::vector<float>& w = weights->head_w.data;  // [V, H] row-major == [H, V] "ba"
  std::vector<float> bias = weights->head_b.data;
  // The user-side weights the packed copy is reordered from.
  dnnl::memory user(md({H, V}, dt::f32, tag::ba), engine, w.data());

  head->attr_ = UserScratchpadAttr();
  if (MatmulLayer::RowScaled(config, precision)) head->row_bias_ = bias;
  std::vector<int8_t> quantized;
  if (precision == Precision::kInt8) {
    // s8 weights, one scale per vocabulary column; h arrives as u8 with zero
    // point data_shift. oneDNN computes dst = oscale * (acc + bias), with
    // acc = data_scale * wscale * (h · w), so oscale undoes both scales and
    // the bias is pre-multiplied by them. The weights are quantized here: a
    // reorder cannot apply scales into the zero-point-compensated layout.
    quantized.resize(V * H);
    std::vector<float> oscale = QuantizeRows(w.data(), V, H, quantized.data());
    for (int64_t v = 0; v < V; ++v) {
      oscale[v] = 1.0f / (head->format_.data_scale * oscale[v]);
      bias[v] /= oscale[v];
    }
    user = dnnl::memory(md({H, V}, dt::s8, tag::ba), engine, quantized.data());
    head->attr_.set_zero_points(DNNL_ARG_SRC, 0, {static_cast<int>(head->format_.data_shift)});
    head->attr_.set_output_scales(1 << 1, oscale);
  }

  // One packed copy: the layout chosen for M = 1 must also be the one for
  // M = max_rows, else use the plain one.
  const md any({H, V}, head->format_.weights, tag::any);
  const md preferred = head->MakeMatmul(1, any).weights_desc();
  head->weights_md_ = head->MakeMatmul(max_rows, any).weights_desc() == preferred
                          ? preferred
                          : md({H, V}, head->format_.weights, tag::ba);
  head->weights_ = dnnl::memory(head->weights_md_, engine);
  ReorderSingleThreaded(user, head->weights_, dnnl::primitive_attr(), stream);
  head->bias_ = dnnl::memory(md({1, V}, dt::f32, tag::ab), engine);
  std::memcpy(head->bias_.get_data_handle(), bias.data(), V * sizeof(float));
  weights->head_w = Tensor();
  weights->head_b = Tensor();
  return head;
}

dnnl::matmul::primitive_desc OutputHead::MakeMatmul(int M, const md& weights_md) const {
  const int64_t V = config_.vocab_size, H = config_.output_size();
  const md src({M, H}, format_.data, tag::ab);
  const md bias({1, V}, dt::f32, tag::ab);
  const md dst({M, V}, dt::f32, tag::ab);
  if (row_scaled()) {
    return dnnl::matmul::primitive_desc(dnnl::matmul::desc(src, weights_md, dst), attr_, engine_);
  }
  return dnnl::matmul::primitive_desc(dnnl::matmul::desc(src, weights_md, bias, dst), attr_,
                                      engine_);
}

OutputHead::Primitives& OutputHead::Get(int M) {
  auto it = cache_.find(M);
  if (it != cache_.end()) return it->second;
  const auto mm_pd = MakeMatmul(M, weights_md_);
  const md logits({M, config_.vocab_size}, dt::f32, tag::ab);
  const auto ls_pd = dnnl::logsoftmax_forward::primitive_desc(
      dnnl::logsoftmax_forward::desc(dnnl::prop_kind::forward_inference, logits, 1),
      UserScratchpadAttr(), engine_);
  Primitives p;
  p.matmul = dnnl::matmul(mm_pd);
  p.logsoftmax = dnnl::logsoftmax_forward(ls_pd);
  p.src = dnnl::memory(mm_pd.src_desc(), engine_, nullptr);
  p.dst = dnnl::memory(mm_pd.dst_desc(), engine_, nullptr);
  p.matmul_scratchpad = dnnl::memory(mm_pd.scratchpad_desc(), engine_, nullptr);
  p.logsoftmax_scratchpad = dnnl::memory(ls_pd.scratchpad_desc(), engine_, nullptr);
  return cache_.emplace(M, std::move(p)).first->second;
}

void OutputHead::Run(const void* h, const float* row_scales, int M, float* logprobs,
                     Scratchpad* scratchpad, dnnl::stream* stream) {
  Primitives& p = Get(M);
  p.src.set_data_handle(const_cast<void*>(h));
  p.dst.set_data_handle(logprobs);
  scratchpad->Bind(&p.matmul_scratchpad);
  // [M, V] = [M, H]·[H, V] + [1, V]
  if (!row_scaled()) {
    p.matmul.execute(*stream, {{DNNL_ARG_SRC, p.src},
                               {DNNL_ARG_WEIGHTS, weights_},
                               {DNNL_ARG_BIAS, bias_},
                               {DNNL_ARG_DST, p.dst},
                               {DNNL_ARG_SCRATCHPAD, p.matmul_scratchpad}});
  } else {
    p.matmul.execute(*stream, {{DNNL_ARG_SRC, p.src},
                               {DNNL_ARG_WEIGHTS, weights_},
                               {DNNL_ARG_DST, p.dst},
                               {DNNL_ARG_SCRATCHPAD, p.matmul_scratchpad}});
    // [M, V] = row_scales [M, 1] * [M, V] + head_b [1, V]
    stream->wait();
    const int64_t V = config_.vocab_size;
    const float* b = row_bias_.data();
#pragma omp parallel for schedule(static) if (M >= 8)
    for (int m = 0; m < M; ++m) {
      float* row = logprobs + static_cast<size_t>(m) * V;
      const float s = row_scales[m];
      for (int64_t v = 0; v < V; ++v) row[v] = s * row[v] + b[v];
    }
  }
  scratchpad->Bind(&p.logsoftmax_scratchpad);
  // In place, row by row over V.
  p.logsoftmax.execute(*stream, {{DNNL_ARG_SRC, p.dst},
                                 {DNNL_ARG_DST, p.dst},
                                 {DNNL_ARG_SCRATCHPAD, p.logsoftmax_scratchpad}});
  stream->wait();
}

size_t OutputHead::weight_bytes() const {
  return weights_.get_desc().get_size() + bias_.get_desc().get_size();
}

}  // namespace lstmserve::onednn
