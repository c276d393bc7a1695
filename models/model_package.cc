#include "models/model_package.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/status_macros.h"
#include "models/safetensors.h"
#include "models/tokenizer_impls.h"

namespace lstmserve {
namespace {

absl::StatusOr<std::string> ReadSmallFile(const std::string& path, int64_t limit) {
  std::error_code ec;
  const auto status = std::filesystem::status(path, ec);
  if (!std::filesystem::exists(status)) {
    return absl::NotFoundError(absl::StrCat(path, ": cannot open (missing file?)"));
  }
  // A directory opens as a stream but reports a bogus size; reject it by kind.
  if (!std::filesystem::is_regular_file(status)) {
    return absl::FailedPreconditionError(absl::StrCat(path, ": not a regular file"));
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::FailedPreconditionError(absl::StrCat(path, ": cannot open"));
  in.seekg(0, std::ios::end);
  const int64_t size = in.tellg();
  if (size < 0) return absl::FailedPreconditionError(absl::StrCat(path, ": cannot read size"));
  if (size > limit) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": ", size, " bytes exceeds the limit of ", limit));
  }
  in.seekg(0);
  std::string text(static_cast<size_t>(size), '\0');
  in.read(text.data(), size);
  if (!in) return absl::FailedPreconditionError(absl::StrCat(path, ": read failed"));
  return text;
}

std::string ShapeString(const std::vector<int64_t>& shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ", "), "]");
}

// Copies tensor `name` out of `file` as f32 after checking its shape and values.
absl::Status TakeTensor(const SafetensorsFile& file, const std::string& name,
                        const std::vector<int64_t>& expected, Tensor* out) {
  auto it = file.tensors().find(name);
  if (it == file.tensors().end()) {
    return absl::InvalidArgumentError(
        absl::StrCat(file.source(), ": missing tensor \"", name, "\" (expected shape ",
                     ShapeString(expected), ")"));
  }
  const TensorView& view = it->second;
  if (view.shape != expected) {
    return absl::InvalidArgumentError(absl::StrCat(file.source(), ": tensor \"", name,
                                                   "\" has shape ", ShapeString(view.shape),
                                                   ", expected ", ShapeString(expected)));
  }
  out->shape = expected;
  out->data.resize(static_cast<size_t>(view.num_elements()));
  SafetensorsFile::ToFloat32(view, out->data.data());
  for (size_t i = 0; i < out->data.size(); ++i) {
    if (!std::isfinite(out->data[i])) {
      return absl::InvalidArgumentError(absl::StrCat(file.source(), ": tensor \"", name,
                                                     "\" holds a non-finite value (",
                                                     out->data[i], ") at flat index ", i));
    }
  }
  return absl::OkStatus();
}

}  // namespace

int64_t ModelPackage::ParameterCount() const {
  int64_t n = weights.embedding.data.size() + weights.head_w.data.size() +
              weights.head_b.data.size();
  for (const auto& l : weights.layers) {
    n += l.w_ih.data.size() + l.w_hh.data.size() + l.b_ih.data.size() + l.b_hh.data.size() +
         l.w_hr.data.size();
  }
  return n;
}

absl::StatusOr<ModelPackage> LoadModelPackage(const std::string& directory) {
  std::error_code ec;
  if (!std::filesystem::is_directory(directory, ec)) {
    return std::filesystem::exists(directory, ec)
               ? absl::FailedPreconditionError(absl::StrCat(directory, ": not a directory"))
               : absl::NotFoundError(
                     absl::StrCat(directory, ": model package directory not found"));
  }
  ModelPackage pkg;
  pkg.directory = directory;
  const std::string config_path = absl::StrCat(directory, "/", kConfigFileName);
  ASSIGN_OR_RETURN(std::string config_text, ReadSmallFile(config_path, kMaxConfigBytes));
  ASSIGN_OR_RETURN(pkg.config, ParseModelConfig(config_text, config_path));
  if (pkg.config.tokenizer.type == TokenizerType::kSentencePiece) {
    const std::string sp_path = absl::StrCat(directory, "/", pkg.config.tokenizer.model_file);
    ASSIGN_OR_RETURN(pkg.config.tokenizer.sentencepiece_model,
                     ReadSmallFile(sp_path, kMaxSentencePieceModelBytes));
    ASSIGN_OR_RETURN(pkg.config.vocab_size,
                     SentencePieceVocabSize(pkg.config.tokenizer.sentencepiece_model, sp_path));
  }
  ASSIGN_OR_RETURN(auto file,
                   SafetensorsFile::Open(absl::StrCat(directory, "/", kWeightsFileName)));
  ASSIGN_OR_RETURN(pkg.weights, ReadModelWeights(pkg.config, *file));
  return pkg;
}

absl::StatusOr<ModelWeights> ReadModelWeights(const ModelConfig& c, const SafetensorsFile& file) {
  ModelWeights weights;
  const int64_t V = c.vocab_size, E = c.embedding_dim, H = c.hidden_size;
  const int64_t R = c.output_size(), P = c.proj_size;
  std::set<std::string> expected_names;
  auto take = [&](const std::string& name, std::vector<int64_t> shape, Tensor* out) {
    expected_names.insert(name);
    return TakeTensor(file, name, shape, out);
  };
  RETURN_IF_ERROR(take("embedding.weight", {V, E}, &weights.embedding));
  weights.layers.resize(c.num_layers);
  for (int k = 0; k < c.num_layers; ++k) {
    LstmLayerWeights& l = weights.layers[k];
    const int64_t in = k == 0 ? E : R;
    RETURN_IF_ERROR(take(absl::StrCat("lstm.weight_ih_l", k), {4 * H, in}, &l.w_ih));
    RETURN_IF_ERROR(take(absl::StrCat("lstm.weight_hh_l", k), {4 * H, R}, &l.w_hh));
    RETURN_IF_ERROR(take(absl::StrCat("lstm.bias_ih_l", k), {4 * H}, &l.b_ih));
    RETURN_IF_ERROR(take(absl::StrCat("lstm.bias_hh_l", k), {4 * H}, &l.b_hh));
    if (P > 0) RETURN_IF_ERROR(take(absl::StrCat("lstm.weight_hr_l", k), {P, H}, &l.w_hr));
  }
  RETURN_IF_ERROR(take("head.weight", {V, R}, &weights.head_w));
  RETURN_IF_ERROR(take("head.bias", {V}, &weights.head_b));
  for (const auto& [name, view] : file.tensors()) {
    if (expected_names.count(name) == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(file.source(), ": unexpected tensor \"", name, "\" with shape ",
                       ShapeString(view.shape), " (a model with num_layers=", c.num_layers,
                       " has ", expected_names.size(), " tensors; see models/FORMAT.md)"));
    }
  }
  return weights;
}

}  // namespace lstmserve
