// Fuzz target: a model.safetensors image -> SafetensorsFile::FromBytes (the
// header and offsets) -> ReadModelWeights (tensor set, shapes, dtype
// conversion, finiteness), the path LoadModelPackage takes after config.json.
// The config is inferred from the tensors present, so mutated valid files
// reach the success path. Beyond "no crash": every accepted tensor lies inside
// the data section, its byte count matches shape and dtype, non-empty tensors
// do not overlap, and accepted weights have the shapes the config implies.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "models/model_package.h"
#include "models/safetensors.h"
#include "tests/fuzz/fuzz_support.h"

namespace lstmserve {
namespace {

constexpr int kMaxFuzzVocab = 1 << 12;

void CheckTensors(const SafetensorsFile& file, const uint8_t* data, size_t size) {
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | data[i];
  const uint8_t* section = data + 8 + header_len;
  std::vector<std::pair<const uint8_t*, const uint8_t*>> ranges;
  for (const auto& [name, view] : file.tensors()) {
    FUZZ_CHECK(name != "__metadata__");
    FUZZ_CHECK(view.shape.size() <= 8);
    for (int64_t d : view.shape) FUZZ_CHECK(d >= 0);
    const size_t element = view.dtype == DType::kF32 ? 4 : 2;
    FUZZ_CHECK(view.num_bytes == static_cast<size_t>(view.num_elements()) * element);
    FUZZ_CHECK(view.data >= section && view.data + view.num_bytes <= data + size);
    if (view.num_bytes > 0) ranges.emplace_back(view.data, view.data + view.num_bytes);
    std::vector<float> values(static_cast<size_t>(view.num_elements()));
    SafetensorsFile::ToFloat32(view, values.data());
  }
  std::sort(ranges.begin(), ranges.end());
  for (size_t i = 1; i < ranges.size(); ++i) FUZZ_CHECK(ranges[i - 1].second <= ranges[i].first);
}

// The dimension `index` of tensor `name` when it has `rank` dims, else 1,
// clamped to [1, limit].
int64_t Dim(const SafetensorsFile& file, const std::string& name, size_t rank, size_t index,
            int64_t limit) {
  auto it = file.tensors().find(name);
  if (it == file.tensors().end() || it->second.shape.size() != rank) return 1;
  return std::clamp<int64_t>(it->second.shape[index], 1, limit);
}

void CheckWeights(const SafetensorsFile& file) {
  ModelConfig config;  // ReadModelWeights reads only the dimensions
  config.vocab_size = static_cast<int>(Dim(file, "embedding.weight", 2, 0, kMaxFuzzVocab));
  config.embedding_dim = static_cast<int>(Dim(file, "embedding.weight", 2, 1, kMaxWidth));
  config.hidden_size = static_cast<int>(Dim(file, "lstm.weight_hh_l0", 2, 1, kMaxWidth));
  config.num_layers = 1;
  while (config.num_layers < kMaxLayers &&
         file.tensors().count(absl::StrCat("lstm.weight_hh_l", config.num_layers)) > 0) {
    ++config.num_layers;
  }
  auto weights = ReadModelWeights(config, file);
  if (!weights.ok()) {
    FUZZ_CHECK_INVALID(weights.status(), file.source() + ": ");
    return;
  }
  const int64_t V = config.vocab_size, E = config.embedding_dim, H = config.hidden_size;
  FUZZ_CHECK(file.tensors().size() == 3 + 4 * static_cast<size_t>(config.num_layers));
  FUZZ_CHECK(weights->layers.size() == static_cast<size_t>(config.num_layers));
  FUZZ_CHECK((weights->embedding.shape == std::vector<int64_t>{V, E}));
  FUZZ_CHECK((weights->head_w.shape == std::vector<int64_t>{V, H}));
  FUZZ_CHECK((weights->head_b.shape == std::vector<int64_t>{V}));
  int64_t expected_count = V * E + V * H + V;
  for (size_t k = 0; k < weights->layers.size(); ++k) {
    const LstmLayerWeights& l = weights->layers[k];
    const int64_t in = k == 0 ? E : H;
    FUZZ_CHECK((l.w_ih.shape == std::vector<int64_t>{4 * H, in}));
    FUZZ_CHECK((l.w_hh.shape == std::vector<int64_t>{4 * H, H}));
    FUZZ_CHECK((l.b_ih.shape == std::vector<int64_t>{4 * H}));
    FUZZ_CHECK((l.b_hh.shape == std::vector<int64_t>{4 * H}));
    expected_count += 4 * H * in + 4 * H * H + 8 * H;
  }
  ModelPackage package;
  package.config = config;
  package.weights = *std::move(weights);
  FUZZ_CHECK(package.ParameterCount() == expected_count);
  for (float v : package.weights.embedding.data) FUZZ_CHECK(std::isfinite(v));
  for (float v : package.weights.head_w.data) FUZZ_CHECK(std::isfinite(v));
}

}  // namespace
}  // namespace lstmserve

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace lstmserve;
  auto file = SafetensorsFile::FromBytes(data, size, "fuzz.safetensors");
  if (!file.ok()) {
    FUZZ_CHECK_INVALID(file.status(), "fuzz.safetensors: ");
    return 0;
  }
  CheckTensors(**file, data, size);
  CheckWeights(**file);
  return 0;
}
