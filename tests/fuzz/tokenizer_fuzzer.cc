// Fuzz target: text -> Tokenizer::Encode/Decode (models/tokenizer.h), the
// UTF-8 helpers (models/utf8.h) and the prompt validation the server applies
// to every prompt/text field (EncodeText, server/validation.h).
// Input: byte 0 picks the tokenizer (shakespeare char vocab, byte, a char
// vocab with 1- to 4-byte characters, a word vocab), byte 1 the token limit (1..256) and
// where the text is split for the streaming assembler; the rest is the text.
// Beyond "no crash": accepted text round-trips through ids, every id is
// < vocab size, EncodeText agrees with Encode and the limit, rejections are
// INVALID_ARGUMENT naming the field, and the assembler emits valid UTF-8 that
// equals the input whenever the input is valid.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "models/tokenizer.h"
#include "models/utf8.h"
#include "server/validation.h"
#include "tests/fuzz/fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace lstmserve;
  if (size < 2) return 0;
  const Tokenizer* tokenizers[] = {&fuzz::ShakespeareTokenizer(), &fuzz::ByteTokenizer(),
                                   &fuzz::MultiByteTokenizer(), &fuzz::WordTokenizer()};
  const Tokenizer& tokenizer = *tokenizers[data[0] % 4];
  const bool word = tokenizer.type() == TokenizerType::kWord;
  const int max_tokens = 1 + data[1];
  const absl::string_view text(reinterpret_cast<const char*>(data + 2), size - 2);

  // UTF-8: strict decoding round-trips through AppendUtf8.
  std::vector<char32_t> cps;
  size_t bad = 0;
  const bool valid_utf8 = DecodeUtf8(text, &cps, &bad);
  if (valid_utf8) {
    std::string again;
    for (char32_t cp : cps) AppendUtf8(cp, &again);
    FUZZ_CHECK(again == text);
  } else {
    FUZZ_CHECK(bad < text.size());
    std::vector<char32_t> prefix;
    FUZZ_CHECK(DecodeUtf8(text.substr(0, bad), &prefix));
  }

  // The streaming assembler, fed in two pieces: always valid UTF-8 out, and
  // exactly the input when the input is valid.
  Utf8Assembler assembler;
  const size_t split = std::min<size_t>(data[1], text.size());
  std::string streamed = assembler.Push(text.substr(0, split));
  streamed += assembler.Push(text.substr(split));
  streamed += assembler.Flush();
  FUZZ_CHECK(DecodeUtf8(streamed, &cps));
  if (valid_utf8) FUZZ_CHECK(streamed == text);

  // Tokenizer.
  auto ids = tokenizer.Encode(text, "prompt");
  if (ids.ok()) {
    FUZZ_CHECK(valid_utf8);
    for (int32_t id : *ids) FUZZ_CHECK(id >= 0 && id < tokenizer.vocab_size());
    const std::string decoded = tokenizer.Decode(*ids);
    if (word) {
      // Words are re-joined by single spaces: the ids, not the text, round-trip.
      auto again = tokenizer.Encode(decoded, "prompt");
      FUZZ_CHECK(again.ok() && *again == *ids);
    } else {
      FUZZ_CHECK(decoded == text);
    }
    if (tokenizer.type() == TokenizerType::kByte) FUZZ_CHECK(ids->size() == text.size());
  } else {
    FUZZ_CHECK_INVALID(ids.status(), "prompt ");
    FUZZ_CHECK(!valid_utf8 || tokenizer.type() == TokenizerType::kChar || word);
  }

  // Server prompt validation.
  auto validated = EncodeText(text, "prompt", tokenizer, max_tokens);
  if (validated.ok()) {
    FUZZ_CHECK(ids.ok() && *validated == *ids);
    FUZZ_CHECK(!validated->empty() && static_cast<int>(validated->size()) <= max_tokens);
  } else {
    FUZZ_CHECK_INVALID(validated.status(), "prompt ");
    FUZZ_CHECK(!ids.ok() || ids->empty() || static_cast<int>(ids->size()) > max_tokens ||
               (tokenizer.max_bytes_per_token() > 0 &&
                text.size() > static_cast<size_t>(max_tokens) * tokenizer.max_bytes_per_token()));
  }
  return 0;
}
