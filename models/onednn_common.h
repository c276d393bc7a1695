// Small pieces shared by the oneDNN engine's parts (models/onednn_engine.h):
// the data types each Precision maps to, the int8 quantization constants,
// activation encoding, an aligned growable buffer and the engine's single
// user-mode scratchpad. Internal to the models layer.
//
// Functions here may throw dnnl::error; the engine catches it at its boundary.
// Nothing here is thread-safe: one engine, one calling thread at a time.
#ifndef LSTMSERVE_MODELS_ONEDNN_COMMON_H_
#define LSTMSERVE_MODELS_ONEDNN_COMMON_H_

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "models/engine.h"
#include "oneapi/dnnl/dnnl.hpp"

namespace lstmserve::onednn {

using dt = dnnl::memory::data_type;
using tag = dnnl::memory::format_tag;

// How a Precision is stored. Activations (LSTM inputs/outputs and h where it
// enters a matmul) use `data`; weights use `weights`. Cell states, biases
// and log-probs are always f32.
//
// int8 activations are u8 = data_scale * x + data_shift, x in [-1, 1]; the
// matmuls take data_shift as the source zero point and undo data_scale in
// their output scales (models/onednn_matmul_layer.cc). With AVX512-VNNI (vpdpbusd sums u8*s8
// pairs straight into int32) most of the range is used: 127 * x + 128 ->
// [1, 255]. Without it, oneDNN's int8 kernels add u8*s8 pairs in saturating int16,
// so activations stay in [1, 127] (63 * x + 64, oneDNN's own example).
// Weights are s8 with one scale per output column: round(w * 127 / max|w|).
struct NumericFormat {
  dt data;
  dt weights;
  size_t data_bytes;        // sizeof one activation element
  float data_scale = 1.0f;  // int8 only
  float data_shift = 0.0f;  // int8 only; an integer (the u8 zero point)
};
NumericFormat FormatFor(Precision precision);

inline constexpr float kWeightQuantMax = 127.0f;

// Quantizes the weights of a matmul that computes one output per row of
// `w` ([rows, K] row-major, PyTorch's layout) to s8 with one scale per row:
// out[r, k] = round(w[r, k] * scale[r]), scale[r] = 127 / max_k |w[r, k]|
// (1 for an all-zero row). Returns the scales.
std::vector<float> QuantizeRows(const float* w, int64_t rows, int64_t K, int8_t* out);

// Converts n f32 activations to format.data (f32 copy, bf16
// round-to-nearest-even, u8 quantized as above and clamped) and back.
void EncodeActivations(const NumericFormat& format, const float* src, int64_t n, void* dst);
void DecodeActivations(const NumericFormat& format, const void* src, int64_t n, float* dst);

// int8 only: encodes `rows` rows of `width` f32 values, each divided by its
// own scale scales[r] = max_j |src[r, j]| (1 for an all-zero row), so every
// encoded value lies in [-1, 1] whatever the row's magnitude. A projected
// LSTM's h is unbounded (models/onednn_matmul_layer.h); a matmul reading such
// rows multiplies its output row r by scales[r].
void EncodeRowsByMax(const NumericFormat& format, const float* src, int64_t rows, int64_t width,
                     void* dst, float* scales);

// A 64-byte-aligned byte buffer that only grows. Growing discards contents.
class AlignedBuffer {
 public:
  uint8_t* data() { return data_.get(); }
  size_t size() const { return size_; }
  // Makes size() >= bytes; returns true if the storage moved.
  bool Reserve(size_t bytes);

 private:
  struct Free {
    void operator()(uint8_t* p) const { std::free(p); }
  };
  std::unique_ptr<uint8_t, Free> data_;
  size_t size_ = 0;
};

// The one scratchpad all of an engine's primitives use
// (scratchpad_mode::user): primitives run one after another on the calling
// thread, so they can share it. Binds it to a primitive's scratchpad memory
// right before execution, growing it if needed.
class Scratchpad {
 public:
  void Bind(dnnl::memory* scratchpad_memory);
  size_t size() const { return buffer_.size(); }

 private:
  AlignedBuffer buffer_;
};

// Reorders `src` into `dst` (with `attr`) on the calling thread alone and
// waits. Load-time packing uses it so that the thread creating an engine (in
// the server, main) starts no OpenMP team: libgomp counts every pool's
// threads, and once they outnumber the cores it stops spinning at barriers,
// which made each Prefill/Step on the scheduler thread ~1.7x slower.
void ReorderSingleThreaded(dnnl::memory& src, dnnl::memory& dst, const dnnl::primitive_attr& attr,
                           dnnl::stream* stream);

// Primitive attributes every engine primitive starts from.
dnnl::primitive_attr UserScratchpadAttr();

// "avx512_core_bf16" etc. for error messages.
std::string IsaName(dnnl::cpu_isa isa);

// OK if this CPU (as oneDNN sees it) can run `precision`, else
// FAILED_PRECONDITION naming the precision, the ISA and the alternative.
absl::Status CheckCpuSupports(Precision precision);

}  // namespace lstmserve::onednn

#endif  // LSTMSERVE_MODELS_ONEDNN_COMMON_H_
