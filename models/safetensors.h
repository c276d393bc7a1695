// SafetensorsFile: a read-only, memory-mapped safetensors file whose header
// has been fully validated (sizes, dtypes, shapes, offsets in bounds and not
// overlapping). Thread-safe after Open (immutable).
//
// Layout: u64 little-endian header length N; N bytes of JSON
// {name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__"?};
// then the tensor data, offsets relative to its start.
#ifndef LSTMSERVE_MODELS_SAFETENSORS_H_
#define LSTMSERVE_MODELS_SAFETENSORS_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace lstmserve {

enum class DType { kF32, kBF16, kF16 };

struct TensorView {
  DType dtype;
  std::vector<int64_t> shape;
  const uint8_t* data;  // points into the mapping; valid while the file lives
  size_t num_bytes;
  int64_t num_elements() const;
};

// Largest header accepted (the format's reference implementation uses 100 MB).
inline constexpr uint64_t kMaxSafetensorsHeaderBytes = 100u << 20;

class SafetensorsFile {
 public:
  static absl::StatusOr<std::unique_ptr<SafetensorsFile>> Open(const std::string& path);
  // Parses an in-memory image (used by Open and by fuzzing); `bytes` must
  // outlive the returned object.
  static absl::StatusOr<std::unique_ptr<SafetensorsFile>> FromBytes(const uint8_t* bytes,
                                                                    size_t size,
                                                                    std::string source);
  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::map<std::string, TensorView>& tensors() const { return tensors_; }
  const std::string& source() const { return source_; }

  // Converts a tensor to f32 (BF16/F16 widened exactly) into `out`, which
  // holds num_elements() floats (and may be null when that is 0).
  static void ToFloat32(const TensorView& view, float* out);

 private:
  SafetensorsFile() = default;
  std::string source_;
  void* mapping_ = nullptr;
  size_t mapping_size_ = 0;
  std::map<std::string, TensorView> tensors_;
};

const char* DTypeName(DType dtype);

}  // namespace lstmserve

#endif  // LSTMSERVE_MODELS_SAFETENSORS_H_
