// Shared by the libFuzzer targets in tests/fuzz: an invariant check that
// aborts (so libFuzzer and the replay runner report it as a crash) and the
// tokenizers the targets validate against. Not thread-safe; fuzz targets run
// one input at a time.
#ifndef LSTMSERVE_TESTS_FUZZ_FUZZ_SUPPORT_H_
#define LSTMSERVE_TESTS_FUZZ_FUZZ_SUPPORT_H_

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include "absl/status/status.h"
#include "models/model_config.h"
#include "models/tokenizer.h"

// Aborts with the failed condition when an invariant does not hold.
#define FUZZ_CHECK(cond)                                                           \
  do {                                                                             \
    if (!(cond)) {                                                                 \
      std::fprintf(stderr, "%s:%d: fuzz invariant failed: %s\n", __FILE__, __LINE__, \
                   #cond);                                                         \
      std::abort();                                                                \
    }                                                                              \
  } while (0)

// Aborts unless `status` is an INVALID_ARGUMENT whose message starts with
// `prefix`: every rejection of bad input must be that, never another code.
#define FUZZ_CHECK_INVALID(status, prefix)                                            \
  do {                                                                                \
    const ::absl::Status& fuzz_s_ = (status);                                         \
    if (fuzz_s_.code() != ::absl::StatusCode::kInvalidArgument ||                     \
        fuzz_s_.message().substr(0, std::string(prefix).size()) != (prefix)) {        \
      std::fprintf(stderr, "%s:%d: expected INVALID_ARGUMENT starting with \"%s\", got %s\n", \
                   __FILE__, __LINE__, std::string(prefix).c_str(),                   \
                   fuzz_s_.ToString().c_str());                                       \
      std::abort();                                                                   \
    }                                                                                 \
  } while (0)

namespace lstmserve {
namespace fuzz {

// The tokenizer of the bundled models/shakespeare package (a real char
// vocabulary), parsed from its config.json once.
inline const Tokenizer& ShakespeareTokenizer() {
  static const Tokenizer* tokenizer = [] {
    const std::string path = std::string(LSTMSERVE_SOURCE_DIR) + "/models/shakespeare/config.json";
    std::ifstream in(path, std::ios::binary);
    std::stringstream text;
    text << in.rdbuf();
    auto config = ParseModelConfig(text.str(), path);
    if (!config.ok()) {
      std::fprintf(stderr, "cannot load %s: %s\n", path.c_str(),
                   config.status().ToString().c_str());
      std::abort();
    }
    return Tokenizer::Create(config->tokenizer).value().release();
  }();
  return *tokenizer;
}

// The byte tokenizer (256 ids).
inline const Tokenizer& ByteTokenizer() {
  static const Tokenizer* tokenizer = [] {
    TokenizerConfig config;
    config.type = TokenizerType::kByte;
    return Tokenizer::Create(config).value().release();
  }();
  return *tokenizer;
}

// A char tokenizer with 1- to 4-byte characters and U+0000.
inline const Tokenizer& MultiByteTokenizer() {
  static const Tokenizer* tokenizer = [] {
    TokenizerConfig config;
    config.type = TokenizerType::kChar;
    config.vocab = {U'\0', U'a', U' ', U'\u00e9', U'\u20ac', U'\U0001F600', U'\U0010FFFF'};
    return Tokenizer::Create(config).value().release();
  }();
  return *tokenizer;
}

// A word tokenizer: non-ASCII words, an eos token, no unknown token.
inline const Tokenizer& WordTokenizer() {
  static const Tokenizer* tokenizer = [] {
    TokenizerConfig config;
    config.type = TokenizerType::kWord;
    config.words = {"<eos>", "a", "b", "ab", "é", "中文", "🙂", "\x01"};
    config.eos_token = "<eos>";
    return Tokenizer::Create(config).value().release();
  }();
  return *tokenizer;
}

}  // namespace fuzz
}  // namespace lstmserve

#endif  // LSTMSERVE_TESTS_FUZZ_FUZZ_SUPPORT_H_
