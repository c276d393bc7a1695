#include "models/onednn_input_table.h"

#include <cstring>

#include <Eigen/Core>

namespace lstmserve::onednn {
namespace {

using md = dnnl::memory::desc;
// Fewer sequences than this run the cell on the calling thread.
constexpr int kParallelSequences = 8;

}  // namespace

bool InputTableLayer::Applies(const ModelConfig& config, Precision precision) {
  return (precision == Precision::kF32 || precision == Precision::kBF16) &&
         config.vocab_size <= 2 * config.embedding_dim;
}

InputTableLayer::InputTableLayer(const ModelConfig& config, Precision precision)
    : config_(config), format_(FormatFor(precision)) {}

std::unique_ptr<InputTableLayer> InputTableLayer::Create(const ModelConfig& config,
                                                         const ModelWeights& weights,
                                                         Precision precision, int max_batch,
                                                         const dnnl::engine& engine,
                                                         dnnl::stream* stream) {
  std::unique_ptr<InputTableLayer> layer(new InputTableLayer(config, precision));
  layer->engine_ = engine;
  layer->attr_ = UserScratchpadAttr();
  const int64_t V = config.vocab_size, E = config.embedding_dim, H = config.hidden_size;
  const int64_t G = 4 * H;
  const LstmLayerWeights& w = weights.layers[0];
  const std::vector<float>& emb = weights.embedding.data;

  // [V, 4H] = embedding [V, E] · W_ih^T [E, 4H] + b_ih + b_hh
  layer->table_.resize(V * G);
  for (int64_t v = 0; v < V; ++v) {
    for (int64_t r = 0; r < G; ++r) {
      double acc = static_cast<double>(w.b_ih.data[r]) + w.b_hh.data[r];
      for (int64_t e = 0; e < E; ++e) {
        acc += static_cast<double>(w.w_ih.data[r * E + e]) * emb[v * E + e];
      }
      layer->table_[v * G + r] = static_cast<float>(acc);
    }
  }

  // W_hh is [4H, H] row-major == [H, 4H] "ba". One packed copy: the layout
  // preferred at M = 1 must also be the one at M = max_batch, else plain.
  std::vector<float> w_hh = w.w_hh.data;
  dnnl::memory user(md({H, G}, dt::f32, tag::ba), engine, w_hh.data());
  const md any({H, G}, layer->format_.weights, tag::any);
  const md preferred = layer->MakeMatmul(1, any).weights_desc();
  layer->weights_md_ = layer->MakeMatmul(max_batch, any).weights_desc() == preferred
                           ? preferred
                           : md({H, G}, layer->format_.weights, tag::ba);
  layer->weights_ = dnnl::memory(layer->weights_md_, engine);
  ReorderSingleThreaded(user, layer->weights_, dnnl::primitive_attr(), stream);
  return layer;
}

dnnl::matmul::primitive_desc InputTableLayer::MakeMatmul(int M, const md& weights_md) const {
  const int64_t H = config_.hidden_size;
  const md src({M, H}, format_.data, tag::ab);
  const md dst({M, 4 * H}, dt::f32, tag::ab);
  return dnnl::matmul::primitive_desc(dnnl::matmul::desc(src, weights_md, dst), attr_, engine_);
}

InputTableLayer::Matmul& InputTableLayer::Get(int M) {
  auto it = cache_.find(M);
  if (it != cache_.end()) return it->second;
  const auto pd = MakeMatmul(M, weights_md_);
  Matmul m;
  m.prim = dnnl::matmul(pd);
  m.src = dnnl::memory(pd.src_desc(), engine_, nullptr);
  m.dst = dnnl::memory(pd.dst_desc(), engine_, nullptr);
  m.scratchpad = dnnl::memory(pd.scratchpad_desc(), engine_, nullptr);
  return cache_.emplace(M, std::move(m)).first->second;
}

void InputTableLayer::Forward(int T, absl::FunctionRef<int32_t(int t, int n)> token,
                              absl::Span<SequenceState* const> states, uint8_t* out,
                              Scratchpad* scratchpad, dnnl::stream* stream) {
  const int N = static_cast<int>(states.size());
  const int64_t H = config_.hidden_size, G = 4 * H;
  const size_t esize = format_.data_bytes;
  h_.resize(static_cast<size_t>(N) * H);
  c_.resize(static_cast<size_t>(N) * H);
  for (int n = 0; n < N; ++n) {
    const LayerState& st = states[n]->layers[0];
    std::memcpy(h_.data() + n * H, st.h.data(), H * sizeof(float));
    std::memcpy(c_.data() + n * H, st.c.data(), H * sizeof(float));
  }
  recurrent_.Reserve(static_cast<size_t>(N) * G * sizeof(float));
  float* recurrent = reinterpret_cast<float*>(recurrent_.data());
  const bool f32 = format_.data == dt::f32;
  if (!f32) h_src_.Reserve(static_cast<size_t>(N) * H * esize);
  Matmul& mm = Get(N);

  for (int t = 0; t < T; ++t) {
    // [N, 4H] = h [N, H] · W_hh^T [H, 4H]
    if (!f32) EncodeActivations(format_, h_.data(), N * H, h_src_.data());
    mm.src.set_data_handle(f32 ? static_cast<void*>(h_.data()) : h_src_.data());
    mm.dst.set_data_handle(recurrent);
    scratchpad->Bind(&mm.scratchpad);
    mm.prim.execute(*stream, {{DNNL_ARG_SRC, mm.src},
                              {DNNL_ARG_WEIGHTS, weights_},
                              {DNNL_ARG_DST, mm.dst},
                              {DNNL_ARG_SCRATCHPAD, mm.scratchpad}});
    stream->wait();
    // The cell, per sequence; gates = table[token] + recurrent.
#pragma omp parallel for schedule(static) if (N >= kParallelSequences)
    for (int n = 0; n < N; ++n) {
      using Array = Eigen::Map<Eigen::ArrayXf>;
      using ConstArray = Eigen::Map<const Eigen::ArrayXf>;
      const float* x = table_.data() + static_cast<size_t>(token(t, n)) * G;
      float* r = recurrent + n * G;
      Array(r, G) += ConstArray(x, G);
      Array c(c_.data() + n * H, H), h(h_.data() + n * H, H);
      const Array i(r, H), f(r + H, H), g(r + 2 * H, H), o(r + 3 * H, H);
      c = f.logistic() * c + i.logistic() * g.tanh();
      h = o.logistic() * c.tanh();
      EncodeActivations(format_, h_.data() + n * H, H,
                        out + (static_cast<size_t>(t) * N + n) * H * esize);
    }
  }

  for (int n = 0; n < N; ++n) {
    LayerState& st = states[n]->layers[0];
    std::memcpy(st.h.data(), h_.data() + n * H, H * sizeof(float));
    std::memcpy(st.c.data(), c_.data() + n * H, H * sizeof(float));
  }
}

size_t InputTableLayer::weight_bytes() const {
  return table_.size() * sizeof(float) + weights_.get_desc().get_size();
}

}  // namespace lstmserve::onednn
