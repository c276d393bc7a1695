#include "models/onednn_matmul_layer.h"

#include <cstring>

#include "models/lstm_cell.h"

namespace lstmserve::onednn {
namespace {

using md = dnnl::memory::desc;
// Fewer sequences than these run the cell (with the encoding of h, ~1.3 µs
// per sequence at H = 512), and the state copies (memcpy), on the calling
// thread: waking the OpenMP team costs a few µs per region. Measured on
// char 3x512 int8 at batch 8: a 32 threshold cost 8% of the step.
constexpr int kParallelCells = 8;
constexpr int kParallelCopies = 64;
// Beyond this many cached primitives per matmul the cache is cleared (a
// server sees at most max_batch step shapes plus a few prompt shapes).
constexpr size_t kMaxCachedPrimitives = 512;

}  // namespace

bool MatmulLayer::UsesTable(const ModelConfig& config) {
  return config.vocab_size <= 2 * config.embedding_dim;
}

NumericFormat MatmulLayer::ProjectionFormat(Precision precision) {
  if (precision != Precision::kInt8) return FormatFor(precision);
  return FormatFor(CheckCpuSupports(Precision::kBF16).ok() ? Precision::kBF16 : Precision::kF32);
}

bool MatmulLayer::RowScaled(const ModelConfig& config, Precision precision) {
  return config.proj_size > 0 && precision == Precision::kInt8;
}

MatmulLayer::MatmulLayer(const ModelConfig& config, int layer, Precision precision)
    : config_(config),
      layer_(layer),
      format_(FormatFor(precision)),
      row_scaled_(RowScaled(config, precision)) {}

std::unique_ptr<MatmulLayer> MatmulLayer::Create(const ModelConfig& config,
                                                 const ModelWeights& weights, int layer,
                                                 Precision precision, int max_batch, int max_rows,
                                                 absl::Span<const float> input_column_scale,
                                                 const dnnl::engine& engine,
                                                 dnnl::stream* stream) {
  std::unique_ptr<MatmulLayer> self(new MatmulLayer(config, layer, precision));
  self->engine_ = engine;
  const int64_t H = config.hidden_size, G = 4 * H, R = config.output_size();
  const int64_t In = layer == 0 ? config.embedding_dim : R;
  const LstmLayerWeights& w = weights.layers[layer];

  self->input_.format = self->format_;
  self->recurrent_.format = self->format_;
  std::vector<float> bias(G);
  for (int64_t r = 0; r < G; ++r) bias[r] = w.b_ih.data[r] + w.b_hh.data[r];

  if (layer == 0 && UsesTable(config)) {
    // [V, 4H] = embedding [V, E] · W_ih^T [E, 4H] + b_ih + b_hh
    const int64_t V = config.vocab_size;
    const std::vector<float>& emb = weights.embedding.data;
    self->table_.resize(V * G);
    for (int64_t v = 0; v < V; ++v) {
      for (int64_t r = 0; r < G; ++r) {
        double acc = static_cast<double>(w.b_ih.data[r]) + w.b_hh.data[r];
        for (int64_t e = 0; e < In; ++e) {
          acc += static_cast<double>(w.w_ih.data[r * In + e]) * emb[v * In + e];
        }
        self->table_[v * G + r] = static_cast<float>(acc);
      }
    }
  } else {
    self->input_.K = In;
    self->input_.cols = G;
    // Row-scaled inputs: the bias is added after the row scale (Forward).
    const bool bias_after = self->in_row_scaled();
    if (bias_after) self->input_bias_ = bias;
    self->Pack(&self->input_, w.w_ih.data, input_column_scale, bias_after ? nullptr : &bias,
               max_batch, max_rows, stream);
  }
  self->recurrent_.K = R;
  self->recurrent_.cols = G;
  self->Pack(&self->recurrent_, w.w_hh.data, {}, nullptr, max_batch, max_rows, stream);
  if (config.proj_size > 0) {
    self->projection_.format = ProjectionFormat(precision);
    self->projection_.K = H;
    self->projection_.cols = R;
    self->Pack(&self->projection_, w.w_hr.data, {}, nullptr, max_batch, max_batch, stream);
  }
  return self;
}

dnnl::matmul::primitive_desc MatmulLayer::MakeMatmul(const Gemm& gemm, int M,
                                                     const md& weights_md) const {
  const int64_t G = gemm.cols;
  const md src({M, gemm.K}, gemm.format.data, tag::ab);
  const md dst({M, G}, dt::f32, tag::ab);
  if (gemm.with_bias) {
    const md bias({1, G}, dt::f32, tag::ab);
    return dnnl::matmul::primitive_desc(dnnl::matmul::desc(src, weights_md, bias, dst),
                                        gemm.attr, engine_);
  }
  return dnnl::matmul::primitive_desc(dnnl::matmul::desc(src, weights_md, dst), gemm.attr,
                                      engine_);
}

void MatmulLayer::Pack(Gemm* gemm, const std::vector<float>& w_rows,
                       absl::Span<const float> column_scale, const std::vector<float>* bias,
                       int max_batch, int max_rows, dnnl::stream* stream) {
  const int64_t K = gemm->K, G = gemm->cols;
  std::vector<float> w = w_rows;  // [G, K] == W^T [K, G] in "ba"
  if (!column_scale.empty()) {
    for (int64_t r = 0; r < G; ++r) {
      for (int64_t k = 0; k < K; ++k) w[r * K + k] *= column_scale[k];
    }
  }
  std::vector<float> b = bias != nullptr ? *bias : std::vector<float>();
  gemm->with_bias = bias != nullptr;
  gemm->attr = UserScratchpadAttr();
  std::vector<int8_t> quantized;
  dnnl::memory user(md({K, G}, dt::f32, tag::ba), engine_, w.data());
  const NumericFormat& format = gemm->format;
  if (format.data == dt::u8) {
    // As in the int8 head (models/onednn_head.cc): oneDNN computes
    // dst = oscale * (acc + bias) with acc = data_scale * wscale * (x · w)
    // once the zero point is compensated, so oscale undoes both scales and
    // the bias is divided by it. Quantized here: a reorder cannot apply
    // scales into the zero-point-compensated layout.
    quantized.resize(G * K);
    std::vector<float> oscale = QuantizeRows(w.data(), G, K, quantized.data());
    for (int64_t r = 0; r < G; ++r) {
      oscale[r] = 1.0f / (format.data_scale * oscale[r]);
      if (!b.empty()) b[r] /= oscale[r];
    }
    user = dnnl::memory(md({K, G}, dt::s8, tag::ba), engine_, quantized.data());
    gemm->attr.set_zero_points(DNNL_ARG_SRC, 0, {static_cast<int>(format.data_shift)});
    gemm->attr.set_output_scales(1 << 1, oscale);
  }
  // One packed copy: the layout preferred at M = 1 must also be the one at
  // the largest batch and the largest prompt rows, else the plain layout
  // serves all.
  const md any({K, G}, format.weights, tag::any);
  const md preferred = MakeMatmul(*gemm, 1, any).weights_desc();
  bool same = true;
  for (int M : {max_batch, max_rows}) {
    if (MakeMatmul(*gemm, M, any).weights_desc() != preferred) same = false;
  }
  gemm->weights_md = same ? preferred : md({K, G}, format.weights, tag::ba);
  gemm->weights = dnnl::memory(gemm->weights_md, engine_);
  ReorderSingleThreaded(user, gemm->weights, dnnl::primitive_attr(), stream);
  if (gemm->with_bias) {
    gemm->bias = dnnl::memory(md({1, G}, dt::f32, tag::ab), engine_);
    std::memcpy(gemm->bias.get_data_handle(), b.data(), G * sizeof(float));
  }
}

MatmulLayer::Matmul& MatmulLayer::Get(Gemm* gemm, int M) {
  auto it = gemm->cache.find(M);
  if (it != gemm->cache.end()) return it->second;
  if (gemm->cache.size() >= kMaxCachedPrimitives) gemm->cache.clear();
  const auto pd = MakeMatmul(*gemm, M, gemm->weights_md);
  Matmul m;
  m.prim = dnnl::matmul(pd);
  m.src = dnnl::memory(pd.src_desc(), engine_, nullptr);
  m.dst = dnnl::memory(pd.dst_desc(), engine_, nullptr);
  m.scratchpad = dnnl::memory(pd.scratchpad_desc(), engine_, nullptr);
  m.args = {{DNNL_ARG_SRC, m.src},
            {DNNL_ARG_WEIGHTS, gemm->weights},
            {DNNL_ARG_DST, m.dst},
            {DNNL_ARG_SCRATCHPAD, m.scratchpad}};
  if (gemm->with_bias) m.args.emplace(DNNL_ARG_BIAS, gemm->bias);
  ++primitives_created_;
  return gemm->cache.emplace(M, std::move(m)).first->second;
}

void MatmulLayer::Run(Gemm* gemm, int M, const void* src, float* dst, Scratchpad* scratchpad,
                      dnnl::stream* stream) {
  Matmul& mm = Get(gemm, M);
  mm.src.set_data_handle(const_cast<void*>(src));
  mm.dst.set_data_handle(dst);
  scratchpad->Bind(&mm.scratchpad);
  mm.prim.execute(*stream, mm.args);
  stream->wait();
}

void MatmulLayer::Forward(int T, absl::FunctionRef<int32_t(int t, int n)> token,
                          const uint8_t* in, const float* in_scales,
                          absl::Span<SequenceState* const> states, uint8_t* out,
                          float* out_scales, Scratchpad* scratchpad, dnnl::stream* stream) {
  const int N = static_cast<int>(states.size());
  const int64_t H = config_.hidden_size, G = 4 * H, R = config_.output_size();
  const bool projected = config_.proj_size > 0;
  const size_t esize = format_.data_bytes;
  const bool f32 = format_.data == dt::f32;  // h_ itself can be the matmul's input
  const NumericFormat& proj_format = projection_.format;
  const bool proj_f32 = proj_format.data == dt::f32;  // h_full_ is the projection's input
  h_.resize(static_cast<size_t>(N) * R);
  c_.resize(static_cast<size_t>(N) * H);
  if (projected) {
    h_full_.resize(static_cast<size_t>(N) * H);
    if (!proj_f32) h_full_src_.Reserve(static_cast<size_t>(N) * H * proj_format.data_bytes);
  }
#pragma omp parallel for schedule(static) if (N >= kParallelCopies)
  for (int n = 0; n < N; ++n) {
    const LayerState& st = states[n]->layers[layer_];
    std::memcpy(h_.data() + n * R, st.h.data(), R * sizeof(float));
    std::memcpy(c_.data() + n * H, st.c.data(), H * sizeof(float));
  }

  // The input part of every timestep's gates at once (bias included).
  const float* x_gates = nullptr;
  if (!table()) {
    x_gates_.Reserve(static_cast<size_t>(T) * N * G * sizeof(float));
    float* gates = reinterpret_cast<float*>(x_gates_.data());
    Run(&input_, T * N, in, gates, scratchpad, stream);
    if (in_row_scaled()) {
      // [T * N, 4H]: row * its input row's scale + b_ih + b_hh
      const float* b = input_bias_.data();
      const int rows = T * N;
#pragma omp parallel for schedule(static) if (rows >= kParallelCells)
      for (int r = 0; r < rows; ++r) {
        float* g = gates + static_cast<size_t>(r) * G;
        const float s = in_scales[r];
        for (int64_t k = 0; k < G; ++k) g[k] = s * g[k] + b[k];
      }
    }
    x_gates = gates;
  }
  h_gates_.Reserve(static_cast<size_t>(N) * G * sizeof(float));
  float* h_gates = reinterpret_cast<float*>(h_gates_.data());
  if (!f32) h_src_.Reserve(static_cast<size_t>(N) * R * esize);
  if (row_scaled_) h_src_scales_.resize(N);

  for (int t = 0; t < T; ++t) {
    // [N, 4H] = h [N, R] · W_hh^T [R, 4H]
    const void* h_src = h_.data();
    const float* h_scales = nullptr;  // [N] row scales of h_src (row_scaled_)
    if (!f32) {
      // bf16/int8: the matmul reads h in the activation type -- the last
      // step's output rows, [N, R] in `out`; before the first step, encoded.
      if (t == 0) {
        if (row_scaled_) {
          EncodeRowsByMax(format_, h_.data(), N, R, h_src_.data(), h_src_scales_.data());
          h_scales = h_src_scales_.data();
        } else {
          EncodeActivations(format_, h_.data(), N * R, h_src_.data());
        }
        h_src = h_src_.data();
      } else {
        h_src = out + static_cast<size_t>(t - 1) * N * R * esize;
        if (row_scaled_) h_scales = out_scales + static_cast<size_t>(t - 1) * N;
      }
    }
    Run(&recurrent_, N, h_src, h_gates, scratchpad, stream);
    uint8_t* out_t = out + static_cast<size_t>(t) * N * R * esize;
#pragma omp parallel for schedule(static) if (N >= kParallelCells)
    for (int n = 0; n < N; ++n) {
      const float* x = table() ? table_.data() + static_cast<size_t>(token(t, n)) * G
                               : x_gates + (static_cast<size_t>(t) * N + n) * G;
      if (h_scales != nullptr) {
        float* r = h_gates + n * G;
        const float s = h_scales[n];
        for (int64_t k = 0; k < G; ++k) r[k] *= s;
      }
      if (projected) {
        // The cell's output o ⊙ tanh(c') is the projection's input.
        float* h_full = h_full_.data() + n * H;
        LstmCell(x, h_gates + n * G, H, c_.data() + n * H, h_full);
        if (!proj_f32) {
          EncodeActivations(proj_format, h_full, H,
                            h_full_src_.data() + n * H * proj_format.data_bytes);
        }
        continue;
      }
      float* h = h_.data() + n * H;
      LstmCell(x, h_gates + n * G, H, c_.data() + n * H, h);
      uint8_t* out_row = out_t + n * H * esize;
      EncodeActivations(format_, h, H, out_row);
    }
    if (projected) {
      // [N, P] = h_full [N, H] · W_hr^T [H, P]
      Run(&projection_, N,
          proj_f32 ? static_cast<const void*>(h_full_.data()) : h_full_src_.data(), h_.data(),
          scratchpad, stream);
      if (row_scaled_) {
        EncodeRowsByMax(format_, h_.data(), N, R, out_t, out_scales + static_cast<size_t>(t) * N);
      } else {
        EncodeActivations(format_, h_.data(), N * R, out_t);
      }
    }
  }

#pragma omp parallel for schedule(static) if (N >= kParallelCopies)
  for (int n = 0; n < N; ++n) {
    LayerState& st = states[n]->layers[layer_];
    std::memcpy(st.h.data(), h_.data() + n * R, R * sizeof(float));
    std::memcpy(st.c.data(), c_.data() + n * H, H * sizeof(float));
  }
}

size_t MatmulLayer::weight_bytes() const {
  size_t bytes = table_.size() * sizeof(float) + recurrent_.weights.get_desc().get_size();
  if (config_.proj_size > 0) bytes += projection_.weights.get_desc().get_size();
  if (!table()) bytes += input_.weights.get_desc().get_size() + input_.bias.get_desc().get_size();
  return bytes;
}

}  // namespace lstmserve::onednn
