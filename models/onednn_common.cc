#include "models/onednn_common.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace lstmserve::onednn {

NumericFormat FormatFor(Precision precision) {
  switch (precision) {
    case Precision::kBF16:
      return {dt::bf16, dt::bf16, 2};
    case Precision::kInt8: {
      const int isa = static_cast<int>(dnnl::get_effective_cpu_isa());
      const auto has = [isa](dnnl::cpu_isa need) {
        return (isa & static_cast<int>(need)) == static_cast<int>(need);
      };
      const bool vnni = has(dnnl::cpu_isa::avx512_core_vnni);
      // Zero point must be an integer: 128 with VNNI, 64 without.
      return vnni ? NumericFormat{dt::u8, dt::s8, 1, 127.0f, 128.0f}
                  : NumericFormat{dt::u8, dt::s8, 1, 63.0f, 64.0f};
    }
    case Precision::kF32:
      break;
  }
  return {dt::f32, dt::f32, 4};
}

std::vector<float> QuantizeRows(const float* w, int64_t rows, int64_t K, int8_t* out) {
  std::vector<float> scales(rows);
  for (int64_t r = 0; r < rows; ++r) {
    float mx = 0.0f;
    for (int64_t k = 0; k < K; ++k) mx = std::max(mx, std::fabs(w[r * K + k]));
    scales[r] = mx > 0.0f ? kWeightQuantMax / mx : 1.0f;
    for (int64_t k = 0; k < K; ++k) {
      out[r * K + k] = static_cast<int8_t>(std::nearbyint(w[r * K + k] * scales[r]));
    }
  }
  return scales;
}

void EncodeActivations(const NumericFormat& format, const float* src, int64_t n, void* dst) {
  const dt type = format.data;
  if (type == dt::f32) {
    std::memcpy(dst, src, n * sizeof(float));
  } else if (type == dt::bf16) {
    uint16_t* out = static_cast<uint16_t*>(dst);
    for (int64_t i = 0; i < n; ++i) {
      uint32_t bits;
      std::memcpy(&bits, &src[i], sizeof(bits));
      bits += 0x7FFFu + ((bits >> 16) & 1u);  // round to nearest even
      out[i] = static_cast<uint16_t>(bits >> 16);
    }
  } else {
    // Clamp, then round half up by truncating q + 0.5 (q >= 0): written so
    // the compiler vectorizes it (std::nearbyint would not be).
    uint8_t* out = static_cast<uint8_t*>(dst);
    const float scale = format.data_scale, shift = format.data_shift + 0.5f;
    for (int64_t i = 0; i < n; ++i) {
      float q = scale * src[i] + shift;
      q = q < 0.0f ? 0.0f : (q > 255.0f ? 255.0f : q);
      out[i] = static_cast<uint8_t>(static_cast<int32_t>(q));
    }
  }
}

void DecodeActivations(const NumericFormat& format, const void* src, int64_t n, float* dst) {
  const dt type = format.data;
  if (type == dt::f32) {
    std::memcpy(dst, src, n * sizeof(float));
  } else if (type == dt::bf16) {
    const uint16_t* in = static_cast<const uint16_t*>(src);
    for (int64_t i = 0; i < n; ++i) {
      const uint32_t bits = static_cast<uint32_t>(in[i]) << 16;
      std::memcpy(&dst[i], &bits, sizeof(float));
    }
  } else {
    const uint8_t* in = static_cast<const uint8_t*>(src);
    const float inv_scale = 1.0f / format.data_scale, shift = format.data_shift;
    for (int64_t i = 0; i < n; ++i) dst[i] = (static_cast<float>(in[i]) - shift) * inv_scale;
  }
}

void EncodeRowsByMax(const NumericFormat& format, const float* src, int64_t rows, int64_t width,
                     void* dst, float* scales) {
  uint8_t* out = static_cast<uint8_t*>(dst);
  for (int64_t r = 0; r < rows; ++r) {
    const float* x = src + r * width;
    float mx = 0.0f;
    for (int64_t j = 0; j < width; ++j) mx = std::max(mx, std::fabs(x[j]));
    scales[r] = mx > 0.0f ? mx : 1.0f;
    // As EncodeActivations, with data_scale / scales[r]; |x / mx| <= 1, so
    // the clamp only guards rounding.
    const float scale = format.data_scale / scales[r], shift = format.data_shift + 0.5f;
    uint8_t* o = out + r * width;
    for (int64_t j = 0; j < width; ++j) {
      float q = scale * x[j] + shift;
      q = q < 0.0f ? 0.0f : (q > 255.0f ? 255.0f : q);
      o[j] = static_cast<uint8_t>(static_cast<int32_t>(q));
    }
  }
}

bool AlignedBuffer::Reserve(size_t bytes) {
  if (bytes <= size_) return false;
  const size_t rounded = (bytes + 63) / 64 * 64;
  void* p = std::aligned_alloc(64, rounded);
  if (p == nullptr) throw std::bad_alloc();
  data_.reset(static_cast<uint8_t*>(p));
  size_ = rounded;
  return true;
}

void Scratchpad::Bind(dnnl::memory* scratchpad_memory) {
  buffer_.Reserve(std::max<size_t>(scratchpad_memory->get_desc().get_size(), 64));
  if (scratchpad_memory->get_data_handle() != buffer_.data()) {
    scratchpad_memory->set_data_handle(buffer_.data());
  }
}

void ReorderSingleThreaded(dnnl::memory& src, dnnl::memory& dst, const dnnl::primitive_attr& attr,
                           dnnl::stream* stream) {
  const int threads = omp_get_max_threads();
  omp_set_num_threads(1);
  try {
    dnnl::reorder(dnnl::reorder::primitive_desc(src, dst, attr)).execute(*stream, src, dst);
    stream->wait();
  } catch (...) {
    omp_set_num_threads(threads);
    throw;
  }
  omp_set_num_threads(threads);
}

dnnl::primitive_attr UserScratchpadAttr() {
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  return attr;
}

std::string IsaName(dnnl::cpu_isa isa) {
  switch (isa) {
    case dnnl::cpu_isa::sse41:
      return "sse41";
    case dnnl::cpu_isa::avx:
      return "avx";
    case dnnl::cpu_isa::avx2:
      return "avx2";
    case dnnl::cpu_isa::avx2_vnni:
      return "avx2_vnni";
    case dnnl::cpu_isa::avx512_core:
      return "avx512_core";
    case dnnl::cpu_isa::avx512_core_vnni:
      return "avx512_core_vnni";
    case dnnl::cpu_isa::avx512_core_bf16:
      return "avx512_core_bf16";
    case dnnl::cpu_isa::avx512_core_amx:
      return "avx512_core_amx";
    default:
      return absl::StrCat("isa 0x", absl::Hex(static_cast<int>(isa)));
  }
}

absl::Status CheckCpuSupports(Precision precision) {
  const dnnl::cpu_isa isa = dnnl::get_effective_cpu_isa();
  auto has = [isa](dnnl::cpu_isa need) {
    return (static_cast<int>(isa) & static_cast<int>(need)) == static_cast<int>(need);
  };
  // oneDNN runs bf16 only from AVX-512 (natively with AVX512_BF16, emulated
  // on plain avx512_core). int8 has reference paths everywhere; creation
  // failures are still caught and reported by the engine factory.
  if (precision == Precision::kBF16 && !has(dnnl::cpu_isa::avx512_core)) {
    return absl::FailedPreconditionError(
        absl::StrCat("precision bf16 needs a CPU with AVX-512 (avx512_core or newer); oneDNN "
                     "reports ",
                     IsaName(isa), " here. Use precision f32 (or int8)."));
  }
  return absl::OkStatus();
}

}  // namespace lstmserve::onednn
