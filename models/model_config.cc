#include "models/model_config.h"

#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
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

absl::StatusOr<TokenizerConfig> ParseCharVocab(const json& j, absl::string_view source) {
  TokenizerConfig tok;
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

// A string field of the tokenizer object that must name an entry of `index`.
absl::StatusOr<std::string> VocabToken(const json& j, const char* key,
                                       const std::map<std::string, size_t>& index,
                                       absl::string_view source) {
  const json& v = j.at(key);
  if (!v.is_string()) {
    return Invalid(source, absl::StrCat("tokenizer.", key, " must be a string, found ", v.dump()));
  }
  std::string s = v.get<std::string>();
  if (index.count(s) == 0) {
    return Invalid(source, absl::StrCat("tokenizer.", key, " = ", v.dump(),
                                        " is not in tokenizer.vocab"));
  }
  return s;
}

absl::StatusOr<TokenizerConfig> ParseWordVocab(const json& j, absl::string_view source) {
  TokenizerConfig tok;
  tok.type = TokenizerType::kWord;
  if (!j.contains("vocab") || !j.at("vocab").is_array()) {
    return Invalid(source, "word tokenizer needs an array \"tokenizer.vocab\"");
  }
  const json& vocab = j.at("vocab");
  if (vocab.empty() || vocab.size() > static_cast<size_t>(kMaxVocabSize)) {
    return Invalid(source, absl::StrCat("tokenizer.vocab has ", vocab.size(),
                                        " entries; expected 1..", kMaxVocabSize));
  }
  std::map<std::string, size_t> index;
  for (size_t i = 0; i < vocab.size(); ++i) {
    if (!vocab[i].is_string()) {
      return Invalid(source, absl::StrCat("tokenizer.vocab[", i, "] is not a string"));
    }
    std::string s = vocab[i].get<std::string>();
    if (s.empty() || s.size() > static_cast<size_t>(kMaxWordBytes)) {
      return Invalid(source, absl::StrCat("tokenizer.vocab[", i, "] is ", s.size(),
                                          " bytes; expected 1..", kMaxWordBytes));
    }
    std::vector<char32_t> cps;
    if (!DecodeUtf8(s, &cps)) {
      return Invalid(source, absl::StrCat("tokenizer.vocab[", i, "] is not valid UTF-8"));
    }
    if (!index.emplace(s, i).second) {
      return Invalid(source, absl::StrCat("tokenizer.vocab[", i, "] = ", vocab[i].dump(),
                                          " duplicates tokenizer.vocab[", index[s], "]"));
    }
    tok.words.push_back(std::move(s));
  }
  if (!j.contains("eos_token")) {
    return Invalid(source, "word tokenizer needs \"tokenizer.eos_token\" (e.g. \"<eos>\")");
  }
  ASSIGN_OR_RETURN(tok.eos_token, VocabToken(j, "eos_token", index, source));
  if (j.contains("unk_token") && !j.at("unk_token").is_null()) {
    ASSIGN_OR_RETURN(tok.unk_token, VocabToken(j, "unk_token", index, source));
    tok.has_unk = true;
    if (tok.unk_token == tok.eos_token) {
      return Invalid(source, "tokenizer.unk_token and tokenizer.eos_token are the same entry");
    }
  }
  // Text is split on whitespace, so a word holding whitespace could never be
  // produced (the eos token stands for the newline and may be spelled "\n").
  for (size_t i = 0; i < tok.words.size(); ++i) {
    if (tok.words[i] == tok.eos_token) continue;
    std::vector<char32_t> cps;
    DecodeUtf8(tok.words[i], &cps);
    for (char32_t cp : cps) {
      if (IsWhitespace(cp)) {
        return Invalid(source, absl::StrCat("tokenizer.vocab[", i, "] = ", vocab[i].dump(),
                                            " contains whitespace ", DescribeCodePoint(cp)));
      }
    }
  }
  return tok;
}

absl::StatusOr<TokenizerConfig> ParseSentencePiece(const json& j, absl::string_view source) {
  TokenizerConfig tok;
  tok.type = TokenizerType::kSentencePiece;
  if (!j.contains("model_file") || !j.at("model_file").is_string()) {
    return Invalid(source,
                   "sentencepiece tokenizer needs a string \"tokenizer.model_file\" (a file in "
                   "the package directory, e.g. \"tokenizer.model\")");
  }
  tok.model_file = j.at("model_file").get<std::string>();
  if (tok.model_file.empty() || tok.model_file == "." || tok.model_file == ".." ||
      tok.model_file.find('/') != std::string::npos ||
      tok.model_file.find('\\') != std::string::npos ||
      tok.model_file.find('\0') != std::string::npos) {
    return Invalid(source, absl::StrCat("tokenizer.model_file = ", j.at("model_file").dump(),
                                        " must be a plain file name inside the package "
                                        "directory (no '/')"));
  }
  return tok;
}

absl::StatusOr<TokenizerConfig> ParseTokenizer(const json& j, absl::string_view source) {
  if (!j.is_object()) return Invalid(source, "field \"tokenizer\" must be an object");
  if (!j.contains("type") || !j.at("type").is_string()) {
    return Invalid(source, "field \"tokenizer.type\" must be \"char\", \"byte\", \"word\" or "
                           "\"sentencepiece\"");
  }
  const std::string type = j.at("type").get<std::string>();
  if (type == "byte") {
    TokenizerConfig tok;
    tok.type = TokenizerType::kByte;
    return tok;
  }
  if (type == "char") return ParseCharVocab(j, source);
  if (type == "word") return ParseWordVocab(j, source);
  if (type == "sentencepiece") return ParseSentencePiece(j, source);
  return Invalid(source, absl::StrCat("tokenizer.type \"", type,
                                      "\" is not supported (expected \"char\", \"byte\", "
                                      "\"word\" or \"sentencepiece\")"));
}

}  // namespace

const char* TokenizerTypeName(TokenizerType type) {
  switch (type) {
    case TokenizerType::kChar:
      return "char";
    case TokenizerType::kByte:
      return "byte";
    case TokenizerType::kWord:
      return "word";
    case TokenizerType::kSentencePiece:
      return "sentencepiece";
  }
  return "?";
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
  if (!j.contains("format_version") ||
      (j.at("format_version") != 1 && j.at("format_version") != 2)) {
    return Invalid(source,
                   absl::StrCat("field \"format_version\" must be 1 or 2, found ",
                                j.contains("format_version") ? j.at("format_version").dump()
                                                             : "nothing"));
  }
  ModelConfig config;
  config.format_version = j.at("format_version").get<int>();
  if (!j.contains("name") || !j.at("name").is_string() ||
      j.at("name").get<std::string>().empty()) {
    return Invalid(source, "field \"name\" must be a non-empty string");
  }
  config.name = j.at("name").get<std::string>();
  if (!j.contains("tokenizer")) return Invalid(source, "missing field \"tokenizer\"");
  auto tok = ParseTokenizer(j.at("tokenizer"), source);
  if (!tok.ok()) return tok.status();
  config.tokenizer = *std::move(tok);
  switch (config.tokenizer.type) {
    case TokenizerType::kByte:
      config.vocab_size = 256;
      break;
    case TokenizerType::kChar:
      config.vocab_size = static_cast<int>(config.tokenizer.vocab.size());
      break;
    case TokenizerType::kWord:
      config.vocab_size = static_cast<int>(config.tokenizer.words.size());
      break;
    case TokenizerType::kSentencePiece:
      config.vocab_size = 0;  // the model file's piece count, set by LoadModelPackage
      break;
  }
  auto e = PositiveInt(j, "embedding_dim", kMaxWidth, source);
  if (!e.ok()) return e.status();
  auto h = PositiveInt(j, "hidden_size", kMaxWidth, source);
  if (!h.ok()) return h.status();
  auto l = PositiveInt(j, "num_layers", kMaxLayers, source);
  if (!l.ok()) return l.status();
  config.embedding_dim = *e;
  config.hidden_size = *h;
  config.num_layers = *l;
  if (j.contains("proj_size") && !j.at("proj_size").is_null() && j.at("proj_size") != 0) {
    ASSIGN_OR_RETURN(config.proj_size, PositiveInt(j, "proj_size", kMaxWidth, source));
    if (config.proj_size >= config.hidden_size) {
      // PyTorch's own rule: nn.LSTM refuses proj_size >= hidden_size.
      return Invalid(source, absl::StrCat("field \"proj_size\" = ", config.proj_size,
                                          " must be smaller than hidden_size = ",
                                          config.hidden_size));
    }
  }
  if (config.format_version < 2) {
    const char* needs = config.tokenizer.type == TokenizerType::kWord ? "a word tokenizer"
                        : config.tokenizer.type == TokenizerType::kSentencePiece
                            ? "a sentencepiece tokenizer"
                        : config.proj_size > 0 ? "proj_size"
                                               : nullptr;
    if (needs != nullptr) {
      return Invalid(source, absl::StrCat(needs, " needs \"format_version\": 2, found 1"));
    }
  }
  json meta = j;
  for (const char* k : {"format", "format_version", "name", "tokenizer", "embedding_dim",
                        "hidden_size", "num_layers", "proj_size"}) {
    meta.erase(k);
  }
  config.metadata_json = meta.dump();
  return config;
}

int64_t ParameterCount(const ModelConfig& c) {
  const int64_t V = c.vocab_size, E = c.embedding_dim, H = c.hidden_size;
  const int64_t R = c.output_size(), P = c.proj_size;
  int64_t n = V * E + V * R + V;  // embedding, head
  for (int l = 0; l < c.num_layers; ++l) n += 4 * H * ((l == 0 ? E : R) + R) + 8 * H + P * H;
  return n;
}

}  // namespace lstmserve
