#include "server/validation.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"

namespace lstmserve {
namespace {

template <typename T>
absl::Status Invalid(absl::string_view field, const T& value, absl::string_view rule) {
  return absl::InvalidArgumentError(absl::StrCat(field, " is ", value, "; ", rule));
}

absl::Status ValidateRequestId(const std::string& id) {
  if (id.size() > kMaxRequestIdBytes) {
    return absl::InvalidArgumentError(absl::StrCat("request_id is ", id.size(),
                                                   " bytes; the limit is ", kMaxRequestIdBytes));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::vector<int32_t>> EncodeText(absl::string_view text, absl::string_view field,
                                                const Tokenizer& tokenizer, int max_tokens) {
  if (text.empty()) return absl::InvalidArgumentError(absl::StrCat(field, " is empty"));
  // With a bound on the bytes per token (char, byte), decide hopeless
  // lengths before decoding anything.
  const size_t max_bytes =
      static_cast<size_t>(max_tokens) * static_cast<size_t>(tokenizer.max_bytes_per_token());
  if (max_bytes > 0 && text.size() > max_bytes) {
    return absl::InvalidArgumentError(absl::StrCat(field, " is ", text.size(),
                                                   " bytes, more than the limit of ", max_tokens,
                                                   " tokens allows"));
  }
  ASSIGN_OR_RETURN(std::vector<int32_t> ids, tokenizer.Encode(text, field));
  if (ids.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, " encodes to no tokens (only whitespace for this ",
                     TokenizerTypeName(tokenizer.type()), " tokenizer)"));
  }
  if (static_cast<int64_t>(ids.size()) > max_tokens) {
    return absl::InvalidArgumentError(absl::StrCat(field, " is ", ids.size(),
                                                   " tokens; the limit is ", max_tokens));
  }
  return ids;
}

absl::StatusOr<GenerationSpec> ValidateGenerateRequest(const v1::GenerateRequest& request,
                                                       const Tokenizer& tokenizer,
                                                       const RequestLimits& limits,
                                                       uint64_t random_seed) {
  GenerationSpec spec;
  RETURN_IF_ERROR(ValidateRequestId(request.request_id()));
  if (request.max_tokens() < 1 || request.max_tokens() > limits.max_tokens_limit) {
    return Invalid("max_tokens", request.max_tokens(),
                   absl::StrCat("it must be in [1, ", limits.max_tokens_limit, "]"));
  }
  spec.max_tokens = request.max_tokens();
  if (request.stream_interval() < 0 || request.stream_interval() > limits.max_tokens_limit) {
    return Invalid("stream_interval", request.stream_interval(),
                   absl::StrCat("it must be in [0, ", limits.max_tokens_limit,
                                "] (0 = the server's default, ", limits.stream_interval, ")"));
  }
  spec.stream_interval =
      request.stream_interval() > 0 ? request.stream_interval() : limits.stream_interval;
  if (request.has_temperature()) {
    const float t = request.temperature();
    if (std::isnan(t) || t < 0.0f || std::isinf(t)) {
      return Invalid("temperature", t, "it must be a finite number >= 0 (0 = greedy)");
    }
    spec.sampling.temperature = t;
  }
  if (request.top_k() < 0) {
    return Invalid("top_k", request.top_k(), "it must be >= 0 (0 = off)");
  }
  spec.sampling.top_k = request.top_k();
  if (request.has_top_p()) {
    const float p = request.top_p();
    if (!(p > 0.0f && p <= 1.0f)) {
      return Invalid("top_p", p, "it must be in (0, 1] (1 = off)");
    }
    spec.sampling.top_p = p;
  }
  spec.sampling.seed = request.has_seed() ? request.seed() : random_seed;
  if (request.stop_size() > limits.max_stop_strings) {
    return absl::InvalidArgumentError(absl::StrCat("stop has ", request.stop_size(),
                                                   " entries; the limit is ",
                                                   limits.max_stop_strings));
  }
  for (int i = 0; i < request.stop_size(); ++i) {
    const std::string& s = request.stop(i);
    const std::string field = absl::StrCat("stop[", i, "]");
    if (s.empty()) return absl::InvalidArgumentError(absl::StrCat(field, " is empty"));
    if (static_cast<int64_t>(s.size()) > limits.max_stop_length) {
      return absl::InvalidArgumentError(absl::StrCat(field, " is ", s.size(),
                                                     " bytes; the limit is ",
                                                     limits.max_stop_length));
    }
    spec.stops.push_back(s);
  }
  if (request.logprobs() < 0 || request.logprobs() > limits.max_logprobs) {
    return Invalid("logprobs", request.logprobs(),
                   absl::StrCat("it must be in [0, ", limits.max_logprobs, "]"));
  }
  spec.top_logprobs = request.logprobs();
  spec.return_tokens = request.return_tokens() || request.logprobs() > 0;
  if (!request.prompt().empty() || request.state().empty()) {
    ASSIGN_OR_RETURN(spec.prompt,
                     EncodeText(request.prompt(), "prompt", tokenizer, limits.max_prompt_tokens));
  }
  spec.request_id = request.request_id();
  return spec;
}

absl::StatusOr<ScoreInput> ValidateScoreRequest(const v1::ScoreRequest& request,
                                                const Tokenizer& tokenizer,
                                                const RequestLimits& limits) {
  ScoreInput input;
  RETURN_IF_ERROR(ValidateRequestId(request.request_id()));
  ASSIGN_OR_RETURN(std::vector<int32_t> text,
                   EncodeText(request.text(), "text", tokenizer, limits.max_prompt_tokens));
  if (!request.context().empty()) {
    ASSIGN_OR_RETURN(input.tokens, EncodeText(request.context(), "context", tokenizer,
                                              limits.max_prompt_tokens));
    const int64_t total = static_cast<int64_t>(input.tokens.size() + text.size());
    if (total > limits.max_prompt_tokens) {
      return absl::InvalidArgumentError(
          absl::StrCat("context + text is ", total, " tokens; the limit is ",
                       limits.max_prompt_tokens));
    }
    input.first_scored = static_cast<int>(input.tokens.size());
    input.context_tokens = input.first_scored;
  }
  input.tokens.insert(input.tokens.end(), text.begin(), text.end());
  return input;
}

absl::StatusOr<std::vector<int32_t>> ValidateEmbedRequest(const v1::EmbedRequest& request,
                                                          const Tokenizer& tokenizer,
                                                          const RequestLimits& limits) {
  RETURN_IF_ERROR(ValidateRequestId(request.request_id()));
  return EncodeText(request.text(), "text", tokenizer, limits.max_prompt_tokens);
}

}  // namespace lstmserve
