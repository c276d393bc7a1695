// The "word" tokenizer (PyTorch word_language_model's data.Corpus
// convention): text is split into lines at "\n"; each line into words at
// whitespace (Python's str.split() set, models/utf8.h IsWhitespace); every
// "\n" becomes the eos token. Text after the last "\n" gets no eos token.
// Decoding joins words with single spaces and turns eos into "\n" with no
// space around it (models/FORMAT.md).
#include <unordered_map>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "models/tokenizer_impls.h"

namespace lstmserve {
namespace {

// At most this many characters of an unknown word are quoted in errors.
constexpr size_t kQuotedWordChars = 40;

std::string Quote(const std::vector<char32_t>& cps, size_t begin, size_t end) {
  std::string out = "\"";
  for (size_t i = begin; i < end && i < begin + kQuotedWordChars; ++i) AppendUtf8(cps[i], &out);
  if (end - begin > kQuotedWordChars) absl::StrAppend(&out, "...");
  out += "\"";
  return out;
}

class WordDecoder final : public TextDecoder {
 public:
  WordDecoder(const std::vector<std::string>* words, int32_t eos_id)
      : words_(words), eos_id_(eos_id) {}

  std::string Push(int32_t id) override {
    if (id == eos_id_) {
      at_line_start_ = true;
      return "\n";
    }
    const std::string& word = (*words_)[id];
    if (at_line_start_) {
      at_line_start_ = false;
      return word;
    }
    return absl::StrCat(" ", word);
  }
  std::string Flush() override {
    at_line_start_ = true;
    return "";
  }

 private:
  const std::vector<std::string>* words_;
  const int32_t eos_id_;
  bool at_line_start_ = true;  // no space before the first word of a line or generation
};

class WordTokenizer final : public Tokenizer {
 public:
  absl::Status Init(const TokenizerConfig& config) {
    words_ = config.words;
    for (size_t i = 0; i < words_.size(); ++i) {
      if (!ids_.emplace(words_[i], static_cast<int32_t>(i)).second) {
        return absl::InvalidArgumentError(
            absl::StrCat("word vocabulary entry ", i, " \"", words_[i], "\" is a duplicate"));
      }
    }
    auto eos = ids_.find(config.eos_token);
    if (eos == ids_.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat("eos token \"", config.eos_token, "\" is not in the vocabulary"));
    }
    eos_id_ = eos->second;
    if (config.has_unk) {
      auto unk = ids_.find(config.unk_token);
      if (unk == ids_.end()) {
        return absl::InvalidArgumentError(
            absl::StrCat("unknown token \"", config.unk_token, "\" is not in the vocabulary"));
      }
      unk_id_ = unk->second;
    }
    return absl::OkStatus();
  }

  absl::StatusOr<std::vector<int32_t>> Encode(absl::string_view text,
                                              absl::string_view field) const override {
    ASSIGN_OR_RETURN(const std::vector<char32_t> cps, DecodeClientText(text, field));
    std::vector<int32_t> ids;
    std::string word;
    size_t word_begin = 0;
    auto end_word = [&](size_t end) -> absl::Status {
      if (word.empty()) return absl::OkStatus();
      auto it = ids_.find(word);
      if (it != ids_.end()) {
        ids.push_back(it->second);
      } else if (unk_id_ >= 0) {
        ids.push_back(unk_id_);
      } else {
        return absl::InvalidArgumentError(absl::StrCat(
            field, " contains the word ", Quote(cps, word_begin, end), " at token position ",
            ids.size(), ", which is not in the model's vocabulary of ", words_.size(),
            " words (and the model has no unknown-word token)"));
      }
      word.clear();
      return absl::OkStatus();
    };
    for (size_t i = 0; i < cps.size(); ++i) {
      if (!IsWhitespace(cps[i])) {
        if (word.empty()) word_begin = i;
        AppendUtf8(cps[i], &word);
        continue;
      }
      absl::Status s = end_word(i);
      if (!s.ok()) return s;
      if (cps[i] == U'\n') ids.push_back(eos_id_);
    }
    absl::Status s = end_word(cps.size());
    if (!s.ok()) return s;
    return ids;
  }

  std::unique_ptr<TextDecoder> NewDecoder() const override {
    return std::make_unique<WordDecoder>(&words_, eos_id_);
  }
  std::string TokenText(int32_t id) const override {
    return id == eos_id_ ? std::string("\n") : words_[id];
  }
  int vocab_size() const override { return static_cast<int>(words_.size()); }
  TokenizerType type() const override { return TokenizerType::kWord; }
  int max_bytes_per_token() const override { return 0; }

 private:
  std::vector<std::string> words_;
  std::unordered_map<std::string, int32_t> ids_;
  int32_t eos_id_ = -1;
  int32_t unk_id_ = -1;  // -1: unknown words are errors
};

}  // namespace

absl::StatusOr<std::unique_ptr<Tokenizer>> CreateWordTokenizer(const TokenizerConfig& config) {
  auto t = std::make_unique<WordTokenizer>();
  absl::Status s = t->Init(config);
  if (!s.ok()) return s;
  return std::unique_ptr<Tokenizer>(std::move(t));
}

}  // namespace lstmserve
