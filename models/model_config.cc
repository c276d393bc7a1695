#include "models/model_config.h"

#include <set>

#include "absl/strings/str_cat.h"
#include "models/bounded_json.h"
#include "models/utf8.h"
#include "nlohmann/json.hpp"

namespace lstmserve {
namespace {

using json = nlohmann::json;

absl::Status Invalid(absl::string_view source, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(source, ": ", what));
}

absl::StatusOr<int> PositiveInt(const json& j, const char* key, int limit,
                                absl::string_view source) {
  if (!j.contains(key)) return Invalid(source, absl::StrCat("missing field \"", key, "\""));
  const json& v = j.at(key);
  if (!v.is_number_integer()) {
    return Invalid(source, absl::StrCat("field \"", key, "\" must be an integer, found ", v.dump()));
  }
  const int64_t n = v.get<int64_t>();
  if (n < 1 || n > limit) {
    return Invalid(source,
                   absl::StrCat("field \"", key, "\" = ", n, " is outside [1, ", limit, "]"));
  }
  return static_cast<int>(n);
}

absl::StatusOr<TokenizerConfig> ParseTokenizer(const json& j, absl::string_view source) {
  if (!j.is_object()) return Invalid(source, "field \"tokenizer\" must be an object");
  if (!j.contains("type") || !j.at("type").is_string()) {
    return Invalid(source, "field \"tokenizer.type\" must be \"char\" or \"byte\"");
  }
  const std::string type = j.at("type").get<std::string>();
  TokenizerConfig tok;
  if (type == "byte") {
    tok.type = TokenizerType::kByte;
    return tok;
  }
  if (type != "char") {
    return Invalid(source, absl::StrCat("tokenizer.type \"", type,
                                        "\" is not supported (expected \"char\" or \"byte\")"));
  }
  tok.type = TokenizerType::kChar;
  if (!j.contains("vocab") || !j.at("vocab").is_array()) {
    return Invalid(source, "char tokenizer needs an array \"tokenizer.vocab\"");
  }
  const json& vocab = j.at("vocab");
  if (vocab.empty() || vocab.size() > static_cast<size_t>(kMaxVocabSize)) {
    return Invalid(source, absl::StrCat("tokenizer.vocab has ", vocab.size(),
                                        " entries; expected 1..", kMaxVocabSize));
  }
  std::set<char32_t> seen;
  for (size_t i = 0; i < vocab.size(); ++i) {
    if (!vocab[i].is_string()) {
      return Invalid(source, absl::StrCat("tokenizer.vocab[", i, "] is not a string"));
    }
    const std::string s = vocab[i].get<std::string>();
    std::vector<char32_t> cps;
    if (!DecodeUtf8(s, &cps) || cps.size() != 1) {
      return Invalid(source, absl::StrCat("tokenizer.vocab[", i, "] = ", vocab[i].dump(),
                                          " must be exactly one Unicode code point, found ",
                                          cps.size()));
    }
    if (!seen.insert(cps[0]).second) {
      return Invalid(source, absl::StrCat("tokenizer.vocab[", i, "] = ", vocab[i].dump(),
                                          " duplicates an earlier entry"));
    }
    tok.vocab.push_back(cps[0]);
  }
  return tok;
}

}  // namespace

const char* TokenizerTypeName(TokenizerType type) {
  return type == TokenizerType::kChar ? "char" : "byte";
}

absl::StatusOr<ModelConfig> ParseModelConfig(absl::string_view json_text,
                                             absl::string_view source) {
  auto parsed = ParseBoundedJson(json_text);
  if (!parsed.ok()) {
    return Invalid(source, absl::StrCat("unreadable JSON: ", parsed.status().message()));
  }
  const json& j = *parsed;
  if (!j.is_object()) return Invalid(source, "top level must be a JSON object");
  if (!j.contains("format") || j.at("format") != "lstmserve-lm") {
    return Invalid(source, absl::StrCat("field \"format\" must be \"lstmserve-lm\", found ",
                                        j.contains("format") ? j.at("format").dump() : "nothing"));
  }
  if (!j.contains("format_version") || j.at("format_version") != 1) {
    return Invalid(source,
                   absl::StrCat("field \"format_version\" must be 1, found ",
                                j.contains("format_version") ? j.at("format_version").dump()
                                                             : "nothing"));
  }
  ModelConfig config;
  if (!j.contains("name") || !j.at("name").is_string() ||
      j.at("name").get<std::string>().empty()) {
    return Invalid(source, "field \"name\" must be a non-empty string");
  }
  config.name = j.at("name").get<std::string>();
  if (!j.contains("tokenizer")) return Invalid(source, "missing field \"tokenizer\"");
  auto tok = ParseTokenizer(j.at("tokenizer"), source);
  if (!tok.ok()) return tok.status();
  config.tokenizer = *std::move(tok);
  config.vocab_size = config.tokenizer.type == TokenizerType::kByte
                          ? 256
                          : static_cast<int>(config.tokenizer.vocab.size());
  auto e = PositiveInt(j, "embedding_dim", kMaxWidth, source);
  if (!e.ok()) return e.status();
  auto h = PositiveInt(j, "hidden_size", kMaxWidth, source);
  if (!h.ok()) return h.status();
  auto l = PositiveInt(j, "num_layers", kMaxLayers, source);
  if (!l.ok()) return l.status();
  config.embedding_dim = *e;
  config.hidden_size = *h;
  config.num_layers = *l;
  json meta = j;
  for (const char* k :
       {"format", "format_version", "name", "tokenizer", "embedding_dim", "hidden_size",
        "num_layers"}) {
    meta.erase(k);
  }
  config.metadata_json = meta.dump();
  return config;
}

int64_t ParameterCount(const ModelConfig& c) {
  const int64_t V = c.vocab_size, E = c.embedding_dim, H = c.hidden_size;
  int64_t n = V * E + V * H + V;  // embedding, head
  for (int l = 0; l < c.num_layers; ++l) n += 4 * H * ((l == 0 ? E : H) + H) + 8 * H;
  return n;
}

}  // namespace lstmserve
