// ModelConfig: the parsed and validated `config.json` of a model package.
// See models/FORMAT.md for the format. Plain value types; thread-compatible.
#ifndef LSTMSERVE_MODELS_MODEL_CONFIG_H_
#define LSTMSERVE_MODELS_MODEL_CONFIG_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace lstmserve {

enum class TokenizerType { kChar, kByte };

// "char" or "byte".
const char* TokenizerTypeName(TokenizerType type);

struct TokenizerConfig {
  TokenizerType type = TokenizerType::kChar;
  // kChar only: token id -> Unicode code point. Unique entries.
  std::vector<char32_t> vocab;
};

struct ModelConfig {
  std::string name;
  TokenizerConfig tokenizer;
  int vocab_size = 0;  // V: vocab.size() for char, 256 for byte.
  int embedding_dim = 0;  // E
  int hidden_size = 0;  // H
  int num_layers = 0;  // L
  // Everything else in config.json (corpus, validation loss, ...), as JSON text.
  std::string metadata_json = "{}";
};

// Limits the loader enforces on config.json (sane caps against hostile files).
inline constexpr int kMaxVocabSize = 1 << 20;
inline constexpr int kMaxWidth = 1 << 16;  // embedding_dim, hidden_size
inline constexpr int kMaxLayers = 64;
inline constexpr int64_t kMaxConfigBytes = 16 << 20;

// Scalar parameters of a model of this shape: embedding [V, E], per layer
// w_ih [4H, In] + w_hh [4H, H] + two biases [4H], head [V, H] + [V].
int64_t ParameterCount(const ModelConfig& config);

// Parses and validates config.json text. `source` names the file in errors.
absl::StatusOr<ModelConfig> ParseModelConfig(absl::string_view json_text,
                                             absl::string_view source);

}  // namespace lstmserve

#endif  // LSTMSERVE_MODELS_MODEL_CONFIG_H_
