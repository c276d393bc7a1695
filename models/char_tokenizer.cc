// The "char" tokenizer: one id per Unicode code point of the vocabulary.
#include <unordered_map>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "models/tokenizer_impls.h"

namespace lstmserve {
namespace {

class CharTokenizer final : public Tokenizer {
 public:
  absl::Status Init(const TokenizerConfig& config) {
    for (size_t i = 0; i < config.vocab.size(); ++i) {
      std::string bytes;
      AppendUtf8(config.vocab[i], &bytes);
      token_bytes_.push_back(bytes);
      if (!char_to_id_.emplace(config.vocab[i], static_cast<int32_t>(i)).second) {
        return absl::InvalidArgumentError(absl::StrCat("vocabulary entry ", i, " duplicates ",
                                                       DescribeCodePoint(config.vocab[i])));
      }
    }
    if (token_bytes_.empty()) return absl::InvalidArgumentError("empty vocabulary");
    return absl::OkStatus();
  }

  absl::StatusOr<std::vector<int32_t>> Encode(absl::string_view text,
                                              absl::string_view field) const override {
    ASSIGN_OR_RETURN(const std::vector<char32_t> cps, DecodeClientText(text, field));
    std::vector<int32_t> ids;
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

  std::unique_ptr<TextDecoder> NewDecoder() const override {
    return std::make_unique<ByteTableDecoder>(&token_bytes_);
  }
  std::string TokenText(int32_t id) const override { return token_bytes_[id]; }
  int vocab_size() const override { return static_cast<int>(token_bytes_.size()); }
  TokenizerType type() const override { return TokenizerType::kChar; }
  int max_bytes_per_token() const override { return 4; }

 private:
  std::vector<std::string> token_bytes_;
  std::unordered_map<char32_t, int32_t> char_to_id_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Tokenizer>> CreateCharTokenizer(const TokenizerConfig& config) {
  auto t = std::make_unique<CharTokenizer>();
  absl::Status s = t->Init(config);
  if (!s.ok()) return s;
  return std::unique_ptr<Tokenizer>(std::move(t));
}

}  // namespace lstmserve
