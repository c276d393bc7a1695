// MatmulLayer: one LSTM layer run as oneDNN matmuls plus a vectorized cell
// (models/lstm_cell.h), instead of oneDNN's LSTM primitive. Part of the oneDNN
// engine (models/onednn_lstm_stack.h).
//
// A timestep of N sequences is
//   gates [N, 4H] = x [N, In] · W_ih^T + b_ih + b_hh  +  h [N, H] · W_hh^T
//   c' = sigmoid(f) * c + sigmoid(i) * tanh(g);  h' = sigmoid(o) * tanh(c')
// (gate order i, f, g, o: PyTorch's). The input part of all T timesteps is
// one matmul with M = T * N (it does not depend on h); each timestep is then
// one [N, H] x [H, 4H] matmul and the cell. Why not the LSTM primitive: on
// the Zen 4 machine (bench/engine_bench), oneDNN 2.6's brgemm matmul with
// K = 512 runs at 92-98% of the f32 peak at M = 8..256, 93-96% of the bf16
// peak and ~90% of the int8 (VNNI) peak, where its LSTM primitive reaches
// ~80%; a layer of its own needs no equal-width rule, and prompts run faster
// too (the input GEMM of all timesteps at once, then M = N steps).
//
// A projected LSTM (proj_size P > 0) adds one matmul per timestep after the
// cell: h [N, P] = h_full [N, H] · W_hr^T [H, P]; then h (P wide) is the
// recurrent matmul's input, the layer's output and the state's h. Below, R
// is the width of h: P when projected, else H.
//
// Layer 0 of a small-vocabulary (char-level) model reads a per-token table
// instead of the input matmul: layer 0's input is always one of V embedding
// rows, so table[v] = W_ih · embedding[v] + b_ih + b_hh ([V, 4H], computed
// once at load in double precision) replaces the input GEMM. Used when the
// table is no bigger than twice W_ih (V <= 2E).
//
// Precision: f32; bf16 (weights and the matmuls' inputs x, h in bf16;
// accumulation, gates, table, biases, c and the h state handed back in f32);
// int8 (x and h as u8 = data_scale * v + data_shift, see NumericFormat; s8
// weights with one scale per gate row of each matrix; s32 accumulation with
// the zero point compensated by oneDNN, then f32 gates; the h state handed
// back is the f32 cell output).
//
// int8 with a projection: the projection matmul itself runs in bf16 (f32
// where oneDNN has no bf16, i.e. without AVX-512): at int8 (u8 input, s8
// W_hr) the golden fixtures' log-probs missed the int8 bounds against
// PyTorch (tests/models/onednn_engine_test.cc), bf16 meets them, and W_hr is
// P x H, small next to the gate matrices. The projected h = W_hr (o ⊙ tanh(c'))
// is only bounded by W_hr's row L1 norms, which are far larger than typical
// values (u8 steps of that bound / 127 lose most of h's precision). So every
// projected h row (one sequence, one timestep) is encoded divided by its own
// largest magnitude (EncodeRowsByMax: exact range, never clipped) and that
// row scale travels with it ([T, N] f32): the recurrent matmul's output row
// n is multiplied by its h row's scale before the cell, the next layer's
// input matmul (packed without bias) gets scale * row + bias, and the head
// does the same (models/onednn_head.h). The row scales are per call data, so
// no static calibration is involved.
//
// Each weight matrix is packed once into the layout oneDNN prefers for
// matmul (format_tag::any), checked at creation to be the same for M = 1,
// the largest batch and long prompts, so one copy serves every shape.
// Matmul primitives are created per M on first use and cached.
//
// Not thread-safe; may throw dnnl::error (the engine catches it).
#ifndef LSTMSERVE_MODELS_ONEDNN_MATMUL_LAYER_H_
#define LSTMSERVE_MODELS_ONEDNN_MATMUL_LAYER_H_

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

class MatmulLayer {
 public:
  // Whether layer 0 of `config` reads a per-token table.
  static bool UsesTable(const ModelConfig& config);

  // Layer `layer` of `weights` (and, for a table layer 0, the embedding).
  // The caller releases the originals afterwards. `max_batch` and
  // `max_rows` (the largest T * N of one call) steer the layout check.
  // `input_column_scale` (int8 layer 0 without a table; else empty): the
  // inputs arrive divided by it column-wise, so W_ih's columns are
  // multiplied by it.
  static std::unique_ptr<MatmulLayer> Create(const ModelConfig& config,
                                             const ModelWeights& weights, int layer,
                                             Precision precision, int max_batch, int max_rows,
                                             absl::Span<const float> input_column_scale,
                                             const dnnl::engine& engine, dnnl::stream* stream);

  // Runs T timesteps of N = states.size() sequences. Input: for a table
  // layer, token(t, n); otherwise `in`, [T, N, In] in the activation data
  // type (row (t, n) at element (t * N + n) * In). This layer of states[n]
  // is read, then replaced by its state after step T-1. Writes the output h
  // of every step to `out`, [T, N, R] in the activation data type.
  // Row scales (int8 with a projection, see above; else null): `in_scales`
  // [T, N] for the input rows when in_row_scaled(), `out_scales` [T, N] for
  // the output rows when out_row_scaled().
  void Forward(int T, absl::FunctionRef<int32_t(int t, int n)> token, const uint8_t* in,
               const float* in_scales, absl::Span<SequenceState* const> states, uint8_t* out,
               float* out_scales, Scratchpad* scratchpad, dnnl::stream* stream);

  // Whether the output rows (and, above layer 0, the input rows) carry row
  // scales: int8 with a projection.
  static bool RowScaled(const ModelConfig& config, Precision precision);
  // The format the projection matmul runs in at `precision`.
  static NumericFormat ProjectionFormat(Precision precision);
  bool in_row_scaled() const { return row_scaled_ && layer_ > 0; }
  bool out_row_scaled() const { return row_scaled_; }

  bool table() const { return !table_.empty(); }
  // Bytes held by packed weights, biases and the table.
  size_t weight_bytes() const;
  // Matmul primitives created so far.
  int primitives_created() const { return primitives_created_; }

 private:
  struct Matmul {
    dnnl::matmul prim;
    dnnl::memory src, dst, scratchpad;
    std::unordered_map<int, dnnl::memory> args;  // built once: execute() reads it per call
  };
  // Weights of one matmul: W^T [K, 4H] packed, its optional bias and its
  // attributes (int8: zero point and output scales), its primitives per M.
  struct Gemm {
    NumericFormat format{dt::f32, dt::f32, 4};  // of its input and weights
    int64_t K = 0;
    int64_t cols = 0;  // output width: 4H for the gate matmuls, P for the projection
    bool with_bias = false;
    dnnl::primitive_attr attr;
    dnnl::memory::desc weights_md;
    dnnl::memory weights, bias;  // bias [1, 4H] f32
    std::unordered_map<int, Matmul> cache;
  };
  MatmulLayer(const ModelConfig& config, int layer, Precision precision);
  dnnl::matmul::primitive_desc MakeMatmul(const Gemm& gemm, int M,
                                          const dnnl::memory::desc& weights_md) const;
  // Packs W ([cols, K] row-major, columns multiplied by column_scale if not
  // empty) and the bias (if not null).
  void Pack(Gemm* gemm, const std::vector<float>& w_rows, absl::Span<const float> column_scale,
            const std::vector<float>* bias, int max_batch, int max_rows, dnnl::stream* stream);
  Matmul& Get(Gemm* gemm, int M);
  void Run(Gemm* gemm, int M, const void* src, float* dst, Scratchpad* scratchpad,
           dnnl::stream* stream);

  const ModelConfig config_;
  const int layer_;
  const NumericFormat format_;
  const bool row_scaled_;
  dnnl::engine engine_;
  std::vector<float> input_bias_;  // [4H] b_ih + b_hh, added after the row scales (in_row_scaled)
  std::vector<float> table_;  // [V, 4H], layer 0 of small vocabularies only
  Gemm input_;                // W_ih (K = In), with bias; unused with a table
  Gemm recurrent_;            // W_hh (K = R)
  Gemm projection_;           // W_hr (K = H, cols = P); only when projected
  int primitives_created_ = 0;
  AlignedBuffer x_gates_;     // [T, N, 4H] f32: input part of the gates
  AlignedBuffer h_gates_;     // [N, 4H] f32: h · W_hh^T
  AlignedBuffer h_src_;       // [N, R] the start h in the activation type (bf16, int8)
  std::vector<float> h_src_scales_;  // [N] its row scales (out_row_scaled)
  std::vector<float> h_, c_;  // [N, R], [N, H]: the state while stepping
  std::vector<float> h_full_;     // [N, H] cell outputs before the projection
  AlignedBuffer h_full_src_;      // [N, H] the same in the projection's input type (bf16)
};

}  // namespace lstmserve::onednn

#endif  // LSTMSERVE_MODELS_ONEDNN_MATMUL_LAYER_H_
