#include "models/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "models/bounded_json.h"
#include "nlohmann/json.hpp"

namespace lstmserve {
namespace {

using json = nlohmann::json;

absl::Status Invalid(absl::string_view source, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(source, ": ", what));
}

int ElementSize(DType d) { return d == DType::kF32 ? 4 : 2; }

float HalfToFloat(uint16_t h) {
  const uint32_t sign = (h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1F;
  uint32_t mant = h & 0x3FF;
  uint32_t bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {  // subnormal: normalize
      exp = 127 - 15 + 1;
      while ((mant & 0x400) == 0) {
        mant <<= 1;
        --exp;
      }
      mant &= 0x3FF;
      bits = sign | (exp << 23) | (mant << 13);
    }
  } else if (exp == 0x1F) {
    bits = sign | 0x7F800000u | (mant << 13);
  } else {
    bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

}  // namespace

const char* DTypeName(DType dtype) {
  switch (dtype) {
    case DType::kF32:
      return "F32";
    case DType::kBF16:
      return "BF16";
    case DType::kF16:
      return "F16";
  }
  return "?";
}

int64_t TensorView::num_elements() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

absl::StatusOr<std::unique_ptr<SafetensorsFile>> SafetensorsFile::Open(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    const std::string msg = absl::StrCat(path, ": cannot open: ", std::strerror(err));
    return err == ENOENT ? absl::NotFoundError(msg) : absl::FailedPreconditionError(msg);
  }
  struct stat st;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return absl::FailedPreconditionError(absl::StrCat(path, ": not a regular file"));
  }
  const size_t size = static_cast<size_t>(st.st_size);
  void* map = nullptr;
  if (size > 0) {
    map = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (map == MAP_FAILED) {
      const int err = errno;
      ::close(fd);
      return absl::FailedPreconditionError(
          absl::StrCat(path, ": mmap failed: ", std::strerror(err)));
    }
  }
  ::close(fd);
  auto file = FromBytes(static_cast<const uint8_t*>(map), size, path);
  if (!file.ok()) {
    if (map != nullptr) ::munmap(map, size);
    return file.status();
  }
  (*file)->mapping_ = map;
  (*file)->mapping_size_ = size;
  return file;
}

SafetensorsFile::~SafetensorsFile() {
  if (mapping_ != nullptr) ::munmap(mapping_, mapping_size_);
}

absl::StatusOr<std::unique_ptr<SafetensorsFile>> SafetensorsFile::FromBytes(const uint8_t* bytes,
                                                                            size_t size,
                                                                            std::string source) {
  if (size < 8) {
    return Invalid(source, absl::StrCat("file is ", size,
                                        " bytes, shorter than the 8-byte header length"));
  }
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | bytes[i];
  if (header_len > kMaxSafetensorsHeaderBytes) {
    return Invalid(source, absl::StrCat("header length ", header_len, " exceeds the cap of ",
                                        kMaxSafetensorsHeaderBytes, " bytes"));
  }
  if (header_len > size - 8) {
    return Invalid(source, absl::StrCat("header length ", header_len,
                                        " runs past the end of the file (", size, " bytes)"));
  }
  auto parsed = ParseBoundedJson(
      absl::string_view(reinterpret_cast<const char*>(bytes + 8), header_len));
  if (!parsed.ok()) {
    return Invalid(source, absl::StrCat("header is not valid JSON: ", parsed.status().message()));
  }
  const json& header = *parsed;
  if (!header.is_object()) return Invalid(source, "header must be a JSON object");

  std::unique_ptr<SafetensorsFile> file(new SafetensorsFile());
  file->source_ = std::move(source);
  const uint8_t* data = bytes + 8 + header_len;
  const uint64_t data_size = size - 8 - header_len;
  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  std::vector<std::string> range_names;
  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string& name = it.key();
    if (name == "__metadata__") continue;
    const json& info = it.value();
    const std::string where = absl::StrCat("tensor \"", name, "\"");
    if (!info.is_object() || !info.contains("dtype") || !info.contains("shape") ||
        !info.contains("data_offsets")) {
      return Invalid(file->source_,
                     absl::StrCat(where, " needs \"dtype\", \"shape\" and \"data_offsets\""));
    }
    TensorView view;
    const json& dt = info.at("dtype");
    const std::string dtype = dt.is_string() ? dt.get<std::string>() : dt.dump();
    if (dtype == "F32") {
      view.dtype = DType::kF32;
    } else if (dtype == "BF16") {
      view.dtype = DType::kBF16;
    } else if (dtype == "F16") {
      view.dtype = DType::kF16;
    } else {
      return Invalid(file->source_, absl::StrCat(where, " has unsupported dtype ", dtype,
                                                 " (supported: F32, BF16, F16)"));
    }
    const json& shape = info.at("shape");
    if (!shape.is_array() || shape.size() > 8) {
      return Invalid(file->source_, absl::StrCat(where, " shape must be an array of <= 8 dims"));
    }
    uint64_t numel = 1;
    for (const json& d : shape) {
      if (!d.is_number_unsigned() || d.get<uint64_t>() > (1ull << 40)) {
        return Invalid(file->source_, absl::StrCat(where, " has a bad dimension ", d.dump()));
      }
      // Checked before multiplying: [2^32, 2^32] would wrap to 0 elements.
      const uint64_t dim = d.get<uint64_t>();
      if (dim != 0 && numel > (1ull << 40) / dim) {
        return Invalid(file->source_, absl::StrCat(where, " is impossibly large"));
      }
      numel *= dim;
      view.shape.push_back(static_cast<int64_t>(d.get<uint64_t>()));
    }
    const json& off = info.at("data_offsets");
    if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() ||
        !off[1].is_number_unsigned()) {
      return Invalid(file->source_,
                     absl::StrCat(where, " data_offsets must be [begin, end], found ", off.dump()));
    }
    const uint64_t begin = off[0].get<uint64_t>();
    const uint64_t end = off[1].get<uint64_t>();
    if (begin > end) {
      return Invalid(file->source_, absl::StrCat(where, " data_offsets [", begin, ", ", end,
                                                 "] end before they begin"));
    }
    if (end > data_size) {
      return Invalid(file->source_,
                     absl::StrCat(where, " data_offsets [", begin, ", ", end,
                                  "] lie outside the data section of ", data_size, " bytes"));
    }
    const uint64_t expected = numel * ElementSize(view.dtype);
    if (end - begin != expected) {
      return Invalid(file->source_,
                     absl::StrCat(where, " holds ", end - begin, " bytes but its shape [",
                                  absl::StrJoin(view.shape, ", "), "] of ", dtype, " needs ",
                                  expected));
    }
    view.data = data + begin;
    view.num_bytes = expected;
    ranges.emplace_back(begin, end);
    range_names.push_back(name);
    file->tensors_.emplace(name, std::move(view));
  }
  std::vector<size_t> order(ranges.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return ranges[a] < ranges[b]; });
  // Compare each range with the furthest-reaching earlier one (not just its
  // sorted neighbour, which may be an empty tensor inside a larger one).
  size_t reach = order.empty() ? 0 : order[0];
  for (size_t k = 1; k < order.size(); ++k) {
    const auto& cur = ranges[order[k]];
    if (cur.first < ranges[reach].second && cur.second > cur.first) {
      return Invalid(file->source_,
                     absl::StrCat("tensors \"", range_names[reach], "\" and \"",
                                  range_names[order[k]], "\" overlap in the data section"));
    }
    if (cur.second > ranges[reach].second) reach = order[k];
  }
  return file;
}

void SafetensorsFile::ToFloat32(const TensorView& view, float* out) {
  const int64_t n = view.num_elements();
  if (n == 0) return;  // `out` may be null then (an empty vector's data())
  switch (view.dtype) {
    case DType::kF32:
      std::memcpy(out, view.data, n * 4);  // the format is little-endian, as is x86-64
      return;
    case DType::kBF16:
      for (int64_t i = 0; i < n; ++i) {
        const uint32_t bits = static_cast<uint32_t>(view.data[2 * i]) |
                              (static_cast<uint32_t>(view.data[2 * i + 1]) << 8);
        const uint32_t f = bits << 16;
        std::memcpy(&out[i], &f, 4);
      }
      return;
    case DType::kF16:
      for (int64_t i = 0; i < n; ++i) {
        out[i] = HalfToFloat(static_cast<uint16_t>(view.data[2 * i] | (view.data[2 * i + 1] << 8)));
      }
      return;
  }
}

}  // namespace lstmserve
