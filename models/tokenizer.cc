#include "models/tokenizer.h"

#include "absl/strings/str_cat.h"
#include "models/utf8.h"

namespace lstmserve {

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::Create(const TokenizerConfig& config) {
  std::unique_ptr<Tokenizer> t(new Tokenizer());
  t->type_ = config.type;
  if (config.type == TokenizerType::kByte) {
    for (int b = 0; b < 256; ++b) t->token_bytes_.push_back(std::string(1, static_cast<char>(b)));
    return t;
  }
  for (size_t i = 0; i < config.vocab.size(); ++i) {
    std::string bytes;
    AppendUtf8(config.vocab[i], &bytes);
    t->token_bytes_.push_back(bytes);
    if (!t->char_to_id_.emplace(config.vocab[i], static_cast<int32_t>(i)).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("vocabulary entry ", i, " duplicates ", DescribeCodePoint(config.vocab[i])));
    }
  }
  if (t->token_bytes_.empty()) return absl::InvalidArgumentError("empty vocabulary");
  return t;
}

absl::StatusOr<std::vector<int32_t>> Tokenizer::Encode(absl::string_view text,
                                                       absl::string_view field) const {
  std::vector<int32_t> ids;
  std::vector<char32_t> cps;
  size_t bad = 0;
  if (!DecodeUtf8(text, &cps, &bad)) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, " is not valid UTF-8 at byte offset ", bad));
  }
  if (type_ == TokenizerType::kByte) {
    ids.reserve(text.size());
    for (unsigned char b : text) ids.push_back(b);
    return ids;
  }
  ids.reserve(cps.size());
  for (size_t i = 0; i < cps.size(); ++i) {
    auto it = char_to_id_.find(cps[i]);
    if (it == char_to_id_.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat(field, " contains ", DescribeCodePoint(cps[i]), " at character position ",
                       i, ", which is not in the model's vocabulary of ", token_bytes_.size(),
                       " characters"));
    }
    ids.push_back(it->second);
  }
  return ids;
}

std::string Tokenizer::Decode(const std::vector<int32_t>& ids) const {
  std::string out;
  for (int32_t id : ids) out += token_bytes_[id];
  return out;
}

}  // namespace lstmserve
