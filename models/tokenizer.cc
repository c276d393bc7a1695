#include "models/tokenizer.h"

#include "absl/strings/str_cat.h"
#include "models/tokenizer_impls.h"

namespace lstmserve {

absl::StatusOr<std::vector<char32_t>> DecodeClientText(absl::string_view text,
                                                       absl::string_view field) {
  std::vector<char32_t> cps;
  size_t bad = 0;
  if (!DecodeUtf8(text, &cps, &bad)) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, " is not valid UTF-8 at byte offset ", bad));
  }
  return cps;
}

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::Create(const TokenizerConfig& config) {
  switch (config.type) {
    case TokenizerType::kChar:
      return CreateCharTokenizer(config);
    case TokenizerType::kByte:
      return CreateByteTokenizer();
    case TokenizerType::kWord:
      return CreateWordTokenizer(config);
    case TokenizerType::kSentencePiece:
      return CreateSentencePieceTokenizer(config);
  }
  return absl::InvalidArgumentError("unknown tokenizer type");
}

std::string Tokenizer::Decode(const std::vector<int32_t>& ids) const {
  std::unique_ptr<TextDecoder> decoder = NewDecoder();
  std::string out;
  for (int32_t id : ids) out += decoder->Push(id);
  out += decoder->Flush();
  return out;
}

}  // namespace lstmserve
