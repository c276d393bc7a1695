// Start here (models layer): a model package on disk -> validated config and
// f32 weights. See models/FORMAT.md for the on-disk contract.
//
// ModelPackage is a plain value; once loaded it is immutable and may be read
// from many threads. Engines take it by value (moved), so weights are held
// once: the loader copies each tensor out of the memory-mapped safetensors
// file into f32 (widening BF16/F16) and unmaps the file before returning.
#ifndef LSTMSERVE_MODELS_MODEL_PACKAGE_H_
#define LSTMSERVE_MODELS_MODEL_PACKAGE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "models/model_config.h"

namespace lstmserve {

class SafetensorsFile;

// A dense row-major f32 tensor.
struct Tensor {
  std::vector<int64_t> shape;
  std::vector<float> data;
};

// One nn.LSTM layer, PyTorch layout: rows are gates in the order i, f, g, o.
// With a projection (proj_size P > 0) h = W_hr·(o ⊙ tanh(c)) has P floats:
// H below reads "R" = P, the width of h (ModelConfig::output_size()).
struct LstmLayerWeights {
  Tensor w_ih;  // [4H, In]: In = E for layer 0, R above
  Tensor w_hh;  // [4H, R]
  Tensor b_ih;  // [4H]
  Tensor b_hh;  // [4H]
  Tensor w_hr;  // [P, H] when projected, else empty
};

struct ModelWeights {
  Tensor embedding;  // [V, E]
  std::vector<LstmLayerWeights> layers;  // L entries
  Tensor head_w;  // [V, R]
  Tensor head_b;  // [V]
};

struct ModelPackage {
  std::string directory;
  ModelConfig config;
  ModelWeights weights;
  // Number of scalar parameters (sum of all tensor sizes).
  int64_t ParameterCount() const;
};

inline constexpr char kConfigFileName[] = "config.json";
inline constexpr char kWeightsFileName[] = "model.safetensors";

// Loads and validates the package in `directory` (for a sentencepiece
// tokenizer also its model file, whose bytes land in
// config.tokenizer.sentencepiece_model and whose piece count is vocab_size). Errors name the file, the
// tensor and what was expected versus found:
//   NOT_FOUND           a missing directory or file;
//   FAILED_PRECONDITION a path of the wrong kind (a directory where a file
//                       belongs) or an I/O failure;
//   INVALID_ARGUMENT    anything malformed (JSON, header, offsets, tensor set,
//                       shapes, dtypes, NaN/Inf, vocabulary).
absl::StatusOr<ModelPackage> LoadModelPackage(const std::string& directory);

// The weight-reading half of LoadModelPackage, for an already parsed config
// and safetensors image (also the fuzzing entry point): checks that `file`
// holds exactly the tensors `config` needs with the right shapes and finite
// values, and copies them out as f32. Errors as LoadModelPackage.
absl::StatusOr<ModelWeights> ReadModelWeights(const ModelConfig& config,
                                              const SafetensorsFile& file);

}  // namespace lstmserve

#endif  // LSTMSERVE_MODELS_MODEL_PACKAGE_H_
