// Fuzz target: config.json text -> ParseModelConfig (models/model_config.h).
// Beyond "no crash": a rejection is INVALID_ARGUMENT naming the file; an
// accepted config is within the documented limits, its tokenizer builds, and
// every vocabulary entry encodes to its own id and decodes back.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "models/model_config.h"
#include "models/tokenizer.h"
#include "nlohmann/json.hpp"
#include "tests/fuzz/fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace lstmserve;
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto config = ParseModelConfig(text, "fuzz/config.json");
  if (!config.ok()) {
    FUZZ_CHECK_INVALID(config.status(), "fuzz/config.json: ");
    return 0;
  }
  FUZZ_CHECK(!config->name.empty());
  FUZZ_CHECK(config->embedding_dim >= 1 && config->embedding_dim <= kMaxWidth);
  FUZZ_CHECK(config->hidden_size >= 1 && config->hidden_size <= kMaxWidth);
  FUZZ_CHECK(config->num_layers >= 1 && config->num_layers <= kMaxLayers);
  FUZZ_CHECK(config->proj_size >= 0 && config->proj_size < config->hidden_size);
  const TokenizerType type = config->tokenizer.type;
  FUZZ_CHECK(config->format_version == 2 ||
             (type != TokenizerType::kWord && type != TokenizerType::kSentencePiece &&
              config->proj_size == 0));
  if (type == TokenizerType::kSentencePiece) {
    // The piece count comes from the model file, which the loader reads.
    FUZZ_CHECK(config->vocab_size == 0 && !config->tokenizer.model_file.empty() &&
               config->tokenizer.model_file.find('/') == std::string::npos);
    return 0;
  }
  const bool is_byte = type == TokenizerType::kByte;
  FUZZ_CHECK(config->vocab_size == (is_byte                      ? 256
                                    : type == TokenizerType::kWord
                                        ? static_cast<int>(config->tokenizer.words.size())
                                        : static_cast<int>(config->tokenizer.vocab.size())));
  FUZZ_CHECK(config->vocab_size >= 1 && config->vocab_size <= kMaxVocabSize);

  // The metadata is a JSON object without the keys the loader interprets.
  const auto meta = nlohmann::json::parse(config->metadata_json, nullptr, false);
  FUZZ_CHECK(meta.is_object());
  for (const char* key : {"format", "format_version", "name", "tokenizer", "embedding_dim",
                          "hidden_size", "num_layers", "proj_size"}) {
    FUZZ_CHECK(!meta.contains(key));
  }

  auto tokenizer = Tokenizer::Create(config->tokenizer);
  FUZZ_CHECK(tokenizer.ok());
  FUZZ_CHECK((*tokenizer)->vocab_size() == config->vocab_size);
  for (int32_t id = 0; id < (*tokenizer)->vocab_size(); ++id) {
    const std::string bytes = (*tokenizer)->TokenText(id);
    if (is_byte) {
      FUZZ_CHECK(bytes.size() == 1 && static_cast<unsigned char>(bytes[0]) == id);
      continue;
    }
    auto ids = (*tokenizer)->Encode(bytes);
    FUZZ_CHECK(ids.ok());
    FUZZ_CHECK(*ids == std::vector<int32_t>{id});
    FUZZ_CHECK((*tokenizer)->Decode(*ids) == bytes);
  }
  return 0;
}
