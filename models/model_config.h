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

enum class TokenizerType { kChar, kByte, kWord, kSentencePiece };

// "char", "byte", "word" or "sentencepiece".
const char* TokenizerTypeName(TokenizerType type);

struct TokenizerConfig {
  TokenizerType type = TokenizerType::kChar;
  // kChar only: token id -> Unicode code point. Unique entries.
  std::vector<char32_t> vocab;
  // kWord only: token id -> word (unique, non-empty; no whitespace except in
  // the eos token), the end-of-line token (in `words`) and, when
  // `has_unk`, the token unknown words become (in `words`).
  std::vector<std::string> words;
  std::string eos_token;
  bool has_unk = false;
  std::string unk_token;
  // kSentencePiece only: the model file's name inside the package directory
  // (from config.json), and its bytes (a serialized ModelProto; filled by
  // LoadModelPackage, which validates them — ParseModelConfig leaves it empty).
  std::string model_file;
  std::string sentencepiece_model;
};

struct ModelConfig {
  int format_version = 1;
  std::string name;
  TokenizerConfig tokenizer;
  // V: vocab.size() for char, 256 for byte, words.size() for word; for
  // sentencepiece the model's piece count, set by LoadModelPackage (0 after
  // ParseModelConfig alone).
  int vocab_size = 0;
  int embedding_dim = 0;  // E
  int hidden_size = 0;  // H: the cell state c
  int num_layers = 0;  // L
  int proj_size = 0;  // P: 0 = no projection; else h = W_hr·h_full has P floats
  // Everything else in config.json (corpus, validation loss, ...), as JSON text.
  std::string metadata_json = "{}";

  // The width of h (what each layer passes up, the head reads and Embed
  // returns): P when projected, else H.
  int output_size() const { return proj_size > 0 ? proj_size : hidden_size; }
};

// Limits the loader enforces on config.json (sane caps against hostile files).
inline constexpr int kMaxVocabSize = 1 << 20;
inline constexpr int kMaxWidth = 1 << 16;  // embedding_dim, hidden_size, proj_size
inline constexpr int kMaxLayers = 64;
inline constexpr int64_t kMaxConfigBytes = 16 << 20;
inline constexpr int64_t kMaxSentencePieceModelBytes = 64 << 20;
inline constexpr int kMaxWordBytes = 1024;  // one entry of a word vocabulary

// Scalar parameters of a model of this shape: embedding [V, E], per layer
// w_ih [4H, In] + w_hh [4H, H] + two biases [4H], head [V, H] + [V].
int64_t ParameterCount(const ModelConfig& config);

// Parses and validates config.json text. `source` names the file in errors.
absl::StatusOr<ModelConfig> ParseModelConfig(absl::string_view json_text,
                                             absl::string_view source);

}  // namespace lstmserve

#endif  // LSTMSERVE_MODELS_MODEL_CONFIG_H_
