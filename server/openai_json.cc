#include "server/openai_json.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <optional>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "models/bounded_json.h"
#include "base/status_macros.h"
#include "nlohmann/json.hpp"

namespace lstmserve {
namespace {

using json = nlohmann::json;

// Dumps without throwing on invalid UTF-8 (a byte model's token may be part
// of a character): such bytes become U+FFFD.
std::string Dump(const json& value) {
  return value.dump(-1, ' ', false, json::error_handler_t::replace);
}

const char* TypeName(const json& value) {
  switch (value.type()) {
    case json::value_t::null:
      return "null";
    case json::value_t::boolean:
      return "a boolean";
    case json::value_t::string:
      return "a string";
    case json::value_t::array:
      return "a list";
    case json::value_t::object:
      return "an object";
    case json::value_t::number_float:
      return "a non-integer number";
    default:
      return "a number";
  }
}

absl::Status WrongType(absl::string_view field, absl::string_view expected, const json& got) {
  return absl::InvalidArgumentError(
      absl::StrCat(field, " must be ", expected, ", got ", TypeName(got)));
}

// The request body as a JSON object.
absl::StatusOr<json> ParseObject(absl::string_view body) {
  absl::StatusOr<json> parsed = ParseBoundedJson(body);
  if (!parsed.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("the request body is not valid JSON: ", parsed.status().message()));
  }
  if (!parsed->is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat("the request body must be a JSON object, got ", TypeName(*parsed)));
  }
  return *std::move(parsed);
}

// The member `name`, or null when it is absent or JSON null (OpenAI clients
// send null for "not set").
const json* Member(const json& object, const char* name) {
  auto it = object.find(name);
  if (it == object.end() || it->is_null()) return nullptr;
  return &*it;
}

absl::StatusOr<std::string> RequiredString(const json& object, const char* name) {
  const json* value = Member(object, name);
  if (value == nullptr) return absl::InvalidArgumentError(absl::StrCat(name, " is missing"));
  if (!value->is_string()) return WrongType(name, "a string", *value);
  return value->get<std::string>();
}

// A string, or a list of exactly one string (OpenAI takes batches; we take
// one input per request).
absl::StatusOr<std::string> OneString(const json& object, const char* name) {
  const json* value = Member(object, name);
  if (value == nullptr) return absl::InvalidArgumentError(absl::StrCat(name, " is missing"));
  if (value->is_array()) {
    if (value->size() != 1) {
      return absl::InvalidArgumentError(
          absl::StrCat(name, " is a list of ", value->size(),
                       " entries; send one string per request"));
    }
    const json& first = (*value)[0];
    if (!first.is_string()) return WrongType(absl::StrCat(name, "[0]"), "a string", first);
    return first.get<std::string>();
  }
  if (!value->is_string()) return WrongType(name, "a string or a list of one string", *value);
  return value->get<std::string>();
}

absl::StatusOr<int64_t> Integer(const json& value, absl::string_view field) {
  if (value.is_number_unsigned()) {
    const uint64_t u = value.get<uint64_t>();
    if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return absl::InvalidArgumentError(absl::StrCat(field, " is ", u, "; it is out of range"));
    }
    return static_cast<int64_t>(u);
  }
  if (!value.is_number_integer()) return WrongType(field, "an integer", value);
  return value.get<int64_t>();
}

// An optional int32 member: absent leaves `*out` alone.
absl::Status OptionalInt32(const json& object, const char* name, int32_t* out) {
  const json* value = Member(object, name);
  if (value == nullptr) return absl::OkStatus();
  ASSIGN_OR_RETURN(const int64_t v, Integer(*value, name));
  if (v < std::numeric_limits<int32_t>::min() || v > std::numeric_limits<int32_t>::max()) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, " is ", v, "; it must fit in 32 bits"));
  }
  *out = static_cast<int32_t>(v);
  return absl::OkStatus();
}

// An optional number member; absent: nullopt.
absl::StatusOr<std::optional<double>> OptionalNumber(const json& object, const char* name) {
  const json* value = Member(object, name);
  if (value == nullptr) return std::optional<double>();
  if (!value->is_number()) return WrongType(name, "a number", *value);
  return std::optional<double>(value->get<double>());
}

absl::StatusOr<bool> OptionalBool(const json& object, const char* name) {
  const json* value = Member(object, name);
  if (value == nullptr) return false;
  if (!value->is_boolean()) return WrongType(name, "a boolean", *value);
  return value->get<bool>();
}

// A float field of the proto: a JSON number that a float holds (a finite
// double beyond float's range is refused by name rather than made inf).
absl::StatusOr<std::optional<float>> OptionalFloat(const json& object, const char* name) {
  ASSIGN_OR_RETURN(std::optional<double> v, OptionalNumber(object, name));
  if (!v.has_value()) return std::optional<float>();
  if (std::abs(*v) > std::numeric_limits<float>::max()) {
    return absl::InvalidArgumentError(absl::StrCat(name, " is ", *v, "; it is out of range"));
  }
  return std::optional<float>(static_cast<float>(*v));
}

// OpenAI options that change the output and that we do not implement: each
// must be absent or at its neutral value.
absl::Status RefuseUnsupported(const json& object) {
  ASSIGN_OR_RETURN(const bool echo, OptionalBool(object, "echo"));
  if (echo) return absl::InvalidArgumentError("echo is true; only false is supported");
  for (const char* name : {"n", "best_of"}) {
    int32_t n = 1;
    RETURN_IF_ERROR(OptionalInt32(object, name, &n));
    if (n != 1) {
      return absl::InvalidArgumentError(absl::StrCat(name, " is ", n, "; only 1 is supported"));
    }
  }
  for (const char* name : {"frequency_penalty", "presence_penalty"}) {
    ASSIGN_OR_RETURN(std::optional<double> v, OptionalNumber(object, name));
    if (v.has_value() && *v != 0.0) {
      return absl::InvalidArgumentError(
          absl::StrCat(name, " is ", *v, "; only 0 is supported"));
    }
  }
  if (const json* bias = Member(object, "logit_bias"); bias != nullptr) {
    if (!bias->is_object()) return WrongType("logit_bias", "an object", *bias);
    if (!bias->empty()) {
      return absl::InvalidArgumentError("logit_bias is not empty; it is not supported");
    }
  }
  if (const json* suffix = Member(object, "suffix"); suffix != nullptr) {
    if (!suffix->is_string()) return WrongType("suffix", "a string", *suffix);
    if (!suffix->get_ref<const std::string&>().empty()) {
      return absl::InvalidArgumentError("suffix is not empty; it is not supported");
    }
  }
  return absl::OkStatus();
}

// "model_version" (an lstmserve extension, as in the gRPC requests): 0 or
// absent = the serving version, else a loaded version.
absl::StatusOr<int64_t> OptionalModelVersion(const json& object) {
  const json* value = Member(object, "model_version");
  if (value == nullptr) return 0;
  ASSIGN_OR_RETURN(const int64_t v, Integer(*value, "model_version"));
  if (v < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "model_version is ", v, "; it must be >= 0 (0 = the serving version, or a loaded one)"));
  }
  return v;
}

absl::Status ParseStop(const json& object, v1::GenerateRequest* request) {
  const json* stop = Member(object, "stop");
  if (stop == nullptr) return absl::OkStatus();
  if (stop->is_string()) {
    request->add_stop(stop->get<std::string>());
    return absl::OkStatus();
  }
  if (!stop->is_array()) return WrongType("stop", "a string or a list of strings", *stop);
  for (size_t i = 0; i < stop->size(); ++i) {
    const json& s = (*stop)[i];
    if (!s.is_string()) return WrongType(absl::StrCat("stop[", i, "]"), "a string", s);
    request->add_stop(s.get<std::string>());
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<CompletionRequest> ParseCompletionRequest(absl::string_view body) {
  ASSIGN_OR_RETURN(const json object, ParseObject(body));
  CompletionRequest out;
  v1::GenerateRequest& r = out.request;
  ASSIGN_OR_RETURN(*r.mutable_model(), RequiredString(object, "model"));
  ASSIGN_OR_RETURN(*r.mutable_prompt(), OneString(object, "prompt"));
  ASSIGN_OR_RETURN(const int64_t version, OptionalModelVersion(object));
  r.set_model_version(version);
  int32_t max_tokens = 16;  // OpenAI's default
  RETURN_IF_ERROR(OptionalInt32(object, "max_tokens", &max_tokens));
  r.set_max_tokens(max_tokens);
  // "stream_interval" (an lstmserve extension, as in GenerateRequest): SSE
  // events of this many tokens after the first; 0 = the server's default.
  int32_t stream_interval = 0;
  RETURN_IF_ERROR(OptionalInt32(object, "stream_interval", &stream_interval));
  r.set_stream_interval(stream_interval);
  ASSIGN_OR_RETURN(std::optional<float> temperature, OptionalFloat(object, "temperature"));
  if (temperature.has_value()) r.set_temperature(*temperature);
  ASSIGN_OR_RETURN(std::optional<float> top_p, OptionalFloat(object, "top_p"));
  if (top_p.has_value()) r.set_top_p(*top_p);
  int32_t top_k = 0;
  RETURN_IF_ERROR(OptionalInt32(object, "top_k", &top_k));
  r.set_top_k(top_k);
  if (const json* seed = Member(object, "seed"); seed != nullptr) {
    if (seed->is_number_unsigned()) {
      r.set_seed(seed->get<uint64_t>());
    } else if (seed->is_number_integer()) {
      return absl::InvalidArgumentError(
          absl::StrCat("seed is ", seed->get<int64_t>(), "; it must be >= 0"));
    } else {
      return WrongType("seed", "an integer", *seed);
    }
  }
  RETURN_IF_ERROR(ParseStop(object, &r));
  if (const json* logprobs = Member(object, "logprobs"); logprobs != nullptr) {
    int32_t n = 0;
    RETURN_IF_ERROR(OptionalInt32(object, "logprobs", &n));
    r.set_logprobs(n);
    r.set_return_tokens(true);
    out.logprobs = true;
  }
  ASSIGN_OR_RETURN(out.stream, OptionalBool(object, "stream"));
  if (const json* options = Member(object, "stream_options"); options != nullptr) {
    if (!options->is_object()) return WrongType("stream_options", "an object", *options);
    if (const json* usage = Member(*options, "include_usage"); usage != nullptr) {
      if (!usage->is_boolean()) {
        return WrongType("stream_options.include_usage", "a boolean", *usage);
      }
      out.include_usage = usage->get<bool>();
    }
  }
  RETURN_IF_ERROR(RefuseUnsupported(object));
  return out;
}

absl::StatusOr<EmbeddingRequest> ParseEmbeddingRequest(absl::string_view body) {
  ASSIGN_OR_RETURN(const json object, ParseObject(body));
  EmbeddingRequest out;
  v1::EmbedRequest& r = out.request;
  ASSIGN_OR_RETURN(*r.mutable_model(), RequiredString(object, "model"));
  ASSIGN_OR_RETURN(*r.mutable_text(), OneString(object, "input"));
  ASSIGN_OR_RETURN(const int64_t version, OptionalModelVersion(object));
  r.set_model_version(version);
  if (const json* format = Member(object, "encoding_format"); format != nullptr) {
    if (!format->is_string()) return WrongType("encoding_format", "a string", *format);
    const std::string& name = format->get_ref<const std::string&>();
    if (name != "float" && name != "base64") {
      return absl::InvalidArgumentError("encoding_format must be \"float\" or \"base64\"");
    }
    out.base64 = name == "base64";
  }
  if (Member(object, "dimensions") != nullptr) {
    return absl::InvalidArgumentError(
        "dimensions is set; the embedding has the model's hidden size");
  }
  return out;
}

absl::StatusOr<v1::ScoreRequest> ParseScoreRequest(absl::string_view body) {
  ASSIGN_OR_RETURN(const json object, ParseObject(body));
  v1::ScoreRequest r;
  ASSIGN_OR_RETURN(*r.mutable_model(), RequiredString(object, "model"));
  ASSIGN_OR_RETURN(*r.mutable_text(), RequiredString(object, "text"));
  ASSIGN_OR_RETURN(const int64_t version, OptionalModelVersion(object));
  r.set_model_version(version);
  if (const json* context = Member(object, "context"); context != nullptr) {
    if (!context->is_string()) return WrongType("context", "a string", *context);
    r.set_context(context->get<std::string>());
  }
  return r;
}

std::string CompletionJson(const CompletionHeader& header, const CompletionPiece& piece,
                           const Tokenizer* tokenizer) {
  json choice = {{"index", 0},
                 {"text", piece.text},
                 {"finish_reason", piece.finish_reason.empty()
                                       ? json(nullptr)
                                       : json(piece.finish_reason)},
                 {"logprobs", nullptr}};
  if (piece.tokens != nullptr && tokenizer != nullptr) {
    json tokens = json::array(), logprobs = json::array(), top = json::array(),
         offsets = json::array();
    int64_t offset = piece.text_offset;
    for (const v1::GeneratedToken& t : *piece.tokens) {
      const std::string text = tokenizer->TokenText(t.token_id());
      tokens.push_back(text);
      logprobs.push_back(t.logprob());
      offsets.push_back(offset);
      offset += static_cast<int64_t>(text.size());
      json alternatives = json::object();
      for (const v1::TokenAlternative& a : t.top_logprobs()) {
        alternatives[a.token_text()] = a.logprob();
      }
      top.push_back(std::move(alternatives));
    }
    choice["logprobs"] = {{"tokens", std::move(tokens)},
                          {"token_logprobs", std::move(logprobs)},
                          {"top_logprobs", std::move(top)},
                          {"text_offset", std::move(offsets)}};
  }
  json out = {{"id", header.id},
              {"object", "text_completion"},
              {"created", header.created},
              {"model", header.model},
              {"model_version", header.model_version},
              {"choices", json::array({std::move(choice)})}};
  if (piece.usage != nullptr) {
    out["usage"] = {{"prompt_tokens", piece.usage->prompt_tokens()},
                    {"completion_tokens", piece.usage->generated_tokens()},
                    {"total_tokens",
                     piece.usage->prompt_tokens() + piece.usage->generated_tokens()}};
  }
  return Dump(out);
}

std::string EmbeddingJson(const v1::EmbedResponse& response, const std::string& model,
                          bool base64) {
  json embedding = json::array();
  if (base64) {
    std::string bytes;
    bytes.reserve(4 * response.embedding_size());
    for (float v : response.embedding()) {
      uint32_t u;
      std::memcpy(&u, &v, 4);
      for (int i = 0; i < 4; ++i) bytes.push_back(static_cast<char>((u >> (8 * i)) & 0xff));
    }
    embedding = absl::Base64Escape(bytes);
  } else {
    for (float v : response.embedding()) embedding.push_back(v);
  }
  const json out = {
      {"object", "list"},
      {"data", json::array({{{"object", "embedding"},
                             {"index", 0},
                             {"embedding", std::move(embedding)}}})},
      {"model", model},
      {"model_version", response.model_version()},
      {"usage", {{"prompt_tokens", response.tokens()}, {"total_tokens", response.tokens()}}}};
  return Dump(out);
}

std::string ScoreJson(const v1::ScoreResponse& response, const std::string& model) {
  const json out = {
      {"id", response.request_id()},
      {"object", "score"},
      {"model", model},
      {"model_version", response.model_version()},
      {"token_ids", json(std::vector<int32_t>(response.token_ids().begin(),
                                              response.token_ids().end()))},
      {"token_logprobs", json(std::vector<float>(response.token_logprobs().begin(),
                                                 response.token_logprobs().end()))},
      {"total_logprob", response.total_logprob()},
      {"scored_tokens", response.scored_tokens()}};
  return Dump(out);
}

std::string ModelsJson(const std::vector<v1::ModelInfo>& models) {
  json data = json::array();
  for (const v1::ModelInfo& m : models) {
    data.push_back({{"id", m.name()},
                    {"object", "model"},
                    {"created", 0},
                    {"owned_by", "lstmserve"},
                    {"num_layers", m.num_layers()},
                    {"hidden_size", m.hidden_size()},
                    {"vocab_size", m.vocab_size()},
                    {"tokenizer", m.tokenizer()},
                    {"precision", m.precision()},
                    {"engine", m.engine()},
                    {"parameter_count", m.parameter_count()},
                    {"max_batch", m.max_batch()},
                    {"version", m.version()}});
  }
  return Dump({{"object", "list"}, {"data", std::move(data)}});
}

}  // namespace lstmserve
