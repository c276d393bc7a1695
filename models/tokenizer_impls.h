// The Tokenizer implementations behind Tokenizer::Create, one .cc each
// (char_tokenizer.cc, byte_tokenizer.cc, word_tokenizer.cc,
// sentencepiece_tokenizer.cc), and the table decoder char and byte share.
// Internal to models/; thread-safety as models/tokenizer.h.
#ifndef LSTMSERVE_MODELS_TOKENIZER_IMPLS_H_
#define LSTMSERVE_MODELS_TOKENIZER_IMPLS_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "models/model_config.h"
#include "models/tokenizer.h"
#include "models/utf8.h"

namespace lstmserve {

absl::StatusOr<std::unique_ptr<Tokenizer>> CreateCharTokenizer(const TokenizerConfig& config);
absl::StatusOr<std::unique_ptr<Tokenizer>> CreateByteTokenizer();
absl::StatusOr<std::unique_ptr<Tokenizer>> CreateWordTokenizer(const TokenizerConfig& config);
absl::StatusOr<std::unique_ptr<Tokenizer>> CreateSentencePieceTokenizer(
    const TokenizerConfig& config);

// The code points of a client's `text`, or INVALID_ARGUMENT naming `field`
// and the byte offset where it stops being valid UTF-8 (every tokenizer
// refuses such text the same way).
absl::StatusOr<std::vector<char32_t>> DecodeClientText(absl::string_view text,
                                                       absl::string_view field);

// Validates a serialized SentencePiece model (`source` names the file in
// errors) and returns its piece count: the model's vocabulary size.
absl::StatusOr<int> SentencePieceVocabSize(const std::string& serialized,
                                           absl::string_view source);

// Decodes ids whose text is a fixed byte string each (char, byte): bytes are
// released as whole UTF-8 characters. Borrows `table`, which outlives it.
class ByteTableDecoder final : public TextDecoder {
 public:
  explicit ByteTableDecoder(const std::vector<std::string>* table) : table_(table) {}
  std::string Push(int32_t id) override { return utf8_.Push((*table_)[id]); }
  std::string Flush() override { return utf8_.Flush(); }

 private:
  const std::vector<std::string>* table_;
  Utf8Assembler utf8_;
};

}  // namespace lstmserve

#endif  // LSTMSERVE_MODELS_TOKENIZER_IMPLS_H_
