// Tokenizer: text <-> token ids for a model's vocabulary ("char": one id per
// Unicode code point in the vocab; "byte": one id per byte). Immutable after
// Create; thread-safe.
#ifndef LSTMSERVE_MODELS_TOKENIZER_H_
#define LSTMSERVE_MODELS_TOKENIZER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "models/model_config.h"

namespace lstmserve {

class Tokenizer {
 public:
  static absl::StatusOr<std::unique_ptr<Tokenizer>> Create(const TokenizerConfig& config);

  // Encodes UTF-8 `text`. INVALID_ARGUMENT for invalid UTF-8 (byte offset) or,
  // for a char model, a character outside the vocabulary (the character and
  // its position in code points). `field` names the request field in errors.
  absl::StatusOr<std::vector<int32_t>> Encode(absl::string_view text,
                                              absl::string_view field = "text") const;

  // The bytes token `id` stands for (a whole character for char models, one
  // byte — possibly part of a character — for byte models).
  const std::string& TokenBytes(int32_t id) const { return token_bytes_[id]; }
  // Concatenated TokenBytes of `ids`.
  std::string Decode(const std::vector<int32_t>& ids) const;

  int vocab_size() const { return static_cast<int>(token_bytes_.size()); }
  TokenizerType type() const { return type_; }

 private:
  Tokenizer() = default;
  TokenizerType type_ = TokenizerType::kChar;
  std::vector<std::string> token_bytes_;
  std::unordered_map<char32_t, int32_t> char_to_id_;
};

}  // namespace lstmserve

#endif  // LSTMSERVE_MODELS_TOKENIZER_H_
