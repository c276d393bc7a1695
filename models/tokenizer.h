// Tokenizer: text <-> token ids for a model's vocabulary, one implementation
// per TokenizerConfig type (models/FORMAT.md gives the exact rules):
//   char           one id per Unicode code point in the vocab
//   byte           one id per byte
//   word           whitespace-separated words, "\n" = the eos token
//   sentencepiece  the SentencePiece library on the package's model file
// Generated text is turned back into text by a TextDecoder, one per stream.
//
// Tokenizers are immutable after Create and thread-safe. TextDecoders are
// thread-compatible (one per stream, used by one thread at a time).
#ifndef LSTMSERVE_MODELS_TOKENIZER_H_
#define LSTMSERVE_MODELS_TOKENIZER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "models/model_config.h"

namespace lstmserve {

// Incremental decoding of one generation: the concatenation of every Push
// and the final Flush equals Tokenizer::Decode of the same ids, and each
// piece is valid UTF-8 made of whole characters (a byte or byte-fallback
// token that ends inside a character is held back until it completes).
class TextDecoder {
 public:
  virtual ~TextDecoder() = default;
  // Adds token `id` (in [0, V)); returns the text now complete (maybe empty).
  virtual std::string Push(int32_t id) = 0;
  // End of the stream: what is still held back (U+FFFD for each byte of a
  // cut-off character); the decoder starts a new generation afterwards.
  virtual std::string Flush() = 0;
};

class Tokenizer {
 public:
  // Builds the tokenizer `config` describes. INVALID_ARGUMENT for an
  // inconsistent config (duplicates, an unreadable SentencePiece model).
  static absl::StatusOr<std::unique_ptr<Tokenizer>> Create(const TokenizerConfig& config);

  virtual ~Tokenizer() = default;

  // Encodes UTF-8 `text`. INVALID_ARGUMENT for invalid UTF-8 (byte offset),
  // a character outside a char vocabulary (the character and its position in
  // code points) or a word outside a word vocabulary without an unknown token
  // (the word and its token position). `field` names the request field in
  // errors. May return no ids for text made only of whitespace (word,
  // sentencepiece).
  virtual absl::StatusOr<std::vector<int32_t>> Encode(absl::string_view text,
                                                      absl::string_view field = "text") const = 0;

  // A decoder for one generation.
  virtual std::unique_ptr<TextDecoder> NewDecoder() const = 0;
  // The text of `ids` as one generation (a fresh decoder's Pushes + Flush).
  std::string Decode(const std::vector<int32_t>& ids) const;

  // Token `id` shown on its own (top-logprob alternatives): a character for
  // char, the byte (maybe part of a character) for byte and byte-fallback
  // pieces, the word or "\n" for word, the piece with "▁" as " " for
  // sentencepiece.
  virtual std::string TokenText(int32_t id) const = 0;

  virtual int vocab_size() const = 0;
  virtual TokenizerType type() const = 0;
  // The most bytes of text one token can consume (char 4, byte 1); 0 when
  // unbounded (a word or a piece can be any length). Lets callers refuse
  // hopelessly long texts before encoding them.
  virtual int max_bytes_per_token() const = 0;
};

}  // namespace lstmserve

#endif  // LSTMSERVE_MODELS_TOKENIZER_H_
