// UTF-8 helpers: strict decoding/encoding and an incremental assembler that
// releases only complete characters. Stateless functions are thread-safe;
// Utf8Assembler is thread-compatible (one per stream).
#ifndef LSTMSERVE_MODELS_UTF8_H_
#define LSTMSERVE_MODELS_UTF8_H_

#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace lstmserve {

// Decodes strict UTF-8 (no overlongs, surrogates or values > U+10FFFF) into
// code points. On failure returns false and sets *error_offset (if non-null)
// to the byte offset of the first bad sequence.
bool DecodeUtf8(absl::string_view text, std::vector<char32_t>* out,
                size_t* error_offset = nullptr);

// Appends the UTF-8 encoding of `cp` (must be a valid scalar value).
void AppendUtf8(char32_t cp, std::string* out);

// Whether `cp` is whitespace as Python's str.split() sees it (ASCII
// \t \n \v \f \r, U+001C..U+001F, space, U+0085, U+00A0, U+1680,
// U+2000..U+200A, U+2028, U+2029, U+202F, U+205F, U+3000): the word
// tokenizer splits text exactly as PyTorch's word_language_model does.
bool IsWhitespace(char32_t cp);

// Printable description of a code point for error messages: 'x' (U+0078).
std::string DescribeCodePoint(char32_t cp);

// Collects bytes of a stream and hands back only whole UTF-8 characters, so
// streamed text never splits a character. Invalid sequences are replaced by
// U+FFFD (a byte-level model can emit any byte).
class Utf8Assembler {
 public:
  // Adds bytes; returns the complete characters now available.
  std::string Push(absl::string_view bytes);
  // Returns what is pending at the end of the stream (U+FFFD for a cut-off
  // character) and resets.
  std::string Flush();
  size_t pending_bytes() const { return pending_.size(); }

 private:
  std::string pending_;
};

}  // namespace lstmserve

#endif  // LSTMSERVE_MODELS_UTF8_H_
