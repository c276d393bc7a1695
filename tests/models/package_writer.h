// Test helper: writes model packages (config.json + model.safetensors) to
// disk from an editable description, so tests can build valid packages and
// corrupt any part of them (a config field, a tensor's dtype/shape/bytes, a
// header offset, the raw file bytes). Header-only; not thread-safe.
#ifndef LSTMSERVE_TESTS_MODELS_PACKAGE_WRITER_H_
#define LSTMSERVE_TESTS_MODELS_PACKAGE_WRITER_H_

#include <stdlib.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "models/model_package.h"
#include "models/utf8.h"
#include "nlohmann/json.hpp"

namespace lstmserve::testing {

// One tensor as it will appear in the file: dtype name as in the header
// ("F32", "BF16", "F16", or anything else to test rejection) and raw bytes.
struct RawTensor {
  std::string name;
  std::string dtype = "F32";
  std::vector<int64_t> shape;
  std::string bytes;
};

// A package before it is written. Tests edit any field, then call Write.
struct PackageSpec {
  nlohmann::json config;            // config.json contents
  // If set, written to config.json verbatim instead of `config`.
  std::optional<std::string> config_bytes;
  std::vector<RawTensor> tensors;   // in file order
  // If set, written to model.safetensors verbatim instead of `tensors`.
  std::optional<std::string> safetensors_bytes;
  bool write_config = true;
  bool write_weights = true;
};

inline std::string F32Bytes(const std::vector<float>& values) {
  std::string out(values.size() * 4, '\0');
  std::memcpy(out.data(), values.data(), out.size());  // little-endian host
  return out;
}

inline std::string U16Bytes(const std::vector<uint16_t>& values) {
  std::string out;
  for (uint16_t v : values) {
    out.push_back(static_cast<char>(v & 0xFF));
    out.push_back(static_cast<char>(v >> 8));
  }
  return out;
}

inline nlohmann::json ConfigJson(const ModelConfig& c) {
  nlohmann::json tok;
  if (c.tokenizer.type == TokenizerType::kByte) {
    tok = {{"type", "byte"}};
  } else if (c.tokenizer.type == TokenizerType::kWord) {
    tok = {{"type", "word"}, {"vocab", c.tokenizer.words}, {"eos_token", c.tokenizer.eos_token}};
    if (c.tokenizer.has_unk) tok["unk_token"] = c.tokenizer.unk_token;
  } else if (c.tokenizer.type == TokenizerType::kSentencePiece) {
    tok = {{"type", "sentencepiece"}, {"model_file", c.tokenizer.model_file}};
  } else {
    std::vector<std::string> vocab;
    for (char32_t cp : c.tokenizer.vocab) {
      std::string s;
      AppendUtf8(cp, &s);
      vocab.push_back(s);
    }
    tok = {{"type", "char"}, {"vocab", vocab}};
  }
  nlohmann::json j = {{"format", "lstmserve-lm"}, {"format_version", c.format_version},
                      {"name", c.name},           {"tokenizer", tok},
                      {"embedding_dim", c.embedding_dim}, {"hidden_size", c.hidden_size},
                      {"num_layers", c.num_layers}};
  if (c.proj_size > 0) j["proj_size"] = c.proj_size;
  return j;
}

// The package's tensors as F32, with their format names.
inline std::vector<RawTensor> PackageTensors(const ModelWeights& w) {
  std::vector<RawTensor> out;
  auto add = [&](std::string name, const Tensor& t) {
    out.push_back({std::move(name), "F32", t.shape, F32Bytes(t.data)});
  };
  add("embedding.weight", w.embedding);
  for (size_t k = 0; k < w.layers.size(); ++k) {
    add(absl::StrCat("lstm.weight_ih_l", k), w.layers[k].w_ih);
    add(absl::StrCat("lstm.weight_hh_l", k), w.layers[k].w_hh);
    add(absl::StrCat("lstm.bias_ih_l", k), w.layers[k].b_ih);
    add(absl::StrCat("lstm.bias_hh_l", k), w.layers[k].b_hh);
    if (!w.layers[k].w_hr.data.empty()) add(absl::StrCat("lstm.weight_hr_l", k), w.layers[k].w_hr);
  }
  add("head.weight", w.head_w);
  add("head.bias", w.head_b);
  return out;
}

inline PackageSpec SpecFromPackage(const ModelPackage& p) {
  PackageSpec spec;
  spec.config = ConfigJson(p.config);
  spec.tensors = PackageTensors(p.weights);
  return spec;
}

inline RawTensor* FindTensor(PackageSpec* spec, const std::string& name) {
  for (RawTensor& t : spec->tensors) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

// The JSON header for `tensors` laid out back to back; appends their bytes to *data.
inline nlohmann::json SafetensorsHeader(const std::vector<RawTensor>& tensors, std::string* data) {
  nlohmann::json header = nlohmann::json::object();
  for (const RawTensor& t : tensors) {
    const size_t begin = data->size();
    data->append(t.bytes);
    header[t.name] = {{"dtype", t.dtype}, {"shape", t.shape}, {"data_offsets", {begin, data->size()}}};
  }
  return header;
}

// 8-byte little-endian `header_len` (default: the header's size), header, data.
inline std::string SafetensorsImage(const std::string& header, const std::string& data,
                                    std::optional<uint64_t> header_len = std::nullopt) {
  const uint64_t n = header_len.value_or(header.size());
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xFF);
  return out + header + data;
}

inline std::string SafetensorsImage(const std::vector<RawTensor>& tensors) {
  std::string data;
  const nlohmann::json header = SafetensorsHeader(tensors, &data);
  return SafetensorsImage(header.dump(), data);
}

inline void WriteFileOrDie(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) abort();
}

inline std::string ReadFileOrDie(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) abort();
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// Writes `spec` into `dir` (created if needed).
inline void WritePackage(const PackageSpec& spec, const std::string& dir) {
  std::filesystem::create_directories(dir);
  if (spec.write_config) {
    WriteFileOrDie(absl::StrCat(dir, "/", kConfigFileName),
                   spec.config_bytes ? *spec.config_bytes : spec.config.dump(1));
  }
  if (spec.write_weights) {
    WriteFileOrDie(absl::StrCat(dir, "/", kWeightsFileName),
                   spec.safetensors_bytes ? *spec.safetensors_bytes
                                          : SafetensorsImage(spec.tensors));
  }
}

// A fresh directory under $TEST_TMPDIR (or /tmp), removed with its contents
// when the object goes out of scope.
class ScopedTempDir {
 public:
  ScopedTempDir() {
    const char* base = getenv("TEST_TMPDIR");
    std::string pattern = absl::StrCat(base != nullptr ? base : "/tmp", "/lstmserve_test_XXXXXX");
    if (mkdtemp(pattern.data()) == nullptr) abort();
    path_ = pattern;
  }
  ~ScopedTempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  ScopedTempDir(const ScopedTempDir&) = delete;
  ScopedTempDir& operator=(const ScopedTempDir&) = delete;

  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Absolute path of a committed golden fixture package.
inline std::string GoldenDir(const std::string& name) {
  return absl::StrCat(LSTMSERVE_SOURCE_DIR, "/tests/models/golden/", name);
}

}  // namespace lstmserve::testing

#endif  // LSTMSERVE_TESTS_MODELS_PACKAGE_WRITER_H_
