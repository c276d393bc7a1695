// Fuzz target: an HTTP request body, as the HTTP front receives it, ->
// ParseCompletionRequest / ParseEmbeddingRequest / ParseScoreRequest
// (server/openai_json.h), and what they accept -> the gRPC validators with
// the server's default limits and tight ones, against a char and a byte
// tokenizer.
// Beyond "no crash" (malformed, hostile or deeply nested JSON included):
// a rejection is INVALID_ARGUMENT with a non-empty message; an accepted
// completion request written back as JSON parses to the same message (the
// parser keeps every field it accepts, and nothing else); a validated one is
// within every limit.
#include <cstddef>
#include <cstdint>
#include <string>

#include "lstmserve/v1/lstmserve.pb.h"
#include "models/tokenizer.h"
#include "nlohmann/json.hpp"
#include "server/openai_json.h"
#include "server/options.h"
#include "server/validation.h"
#include "tests/fuzz/fuzz_support.h"

namespace lstmserve {
namespace {

void CheckRejected(const absl::Status& status) {
  FUZZ_CHECK(status.code() == absl::StatusCode::kInvalidArgument);
  FUZZ_CHECK(!status.message().empty());
}

// The JSON body that means `r` (the inverse of ParseCompletionRequest).
std::string ToJson(const CompletionRequest& c) {
  const v1::GenerateRequest& r = c.request;
  nlohmann::json j = {{"model", r.model()}, {"prompt", r.prompt()},
                      {"max_tokens", r.max_tokens()}, {"top_k", r.top_k()},
                      {"stream", c.stream}, {"stream_options", {{"include_usage", c.include_usage}}}};
  if (r.has_temperature()) j["temperature"] = r.temperature();
  if (r.has_top_p()) j["top_p"] = r.top_p();
  if (r.has_seed()) j["seed"] = r.seed();
  if (r.stop_size() > 0) j["stop"] = std::vector<std::string>(r.stop().begin(), r.stop().end());
  if (c.logprobs) j["logprobs"] = r.logprobs();
  return j.dump();
}

void CheckCompletion(const std::string& body, const Tokenizer* const* tokenizers,
                     const RequestLimits* const* limits) {
  absl::StatusOr<CompletionRequest> parsed = ParseCompletionRequest(body);
  if (!parsed.ok()) return CheckRejected(parsed.status());
  absl::StatusOr<CompletionRequest> again = ParseCompletionRequest(ToJson(*parsed));
  FUZZ_CHECK(again.ok());
  FUZZ_CHECK(again->request.SerializeAsString() == parsed->request.SerializeAsString());
  FUZZ_CHECK(again->stream == parsed->stream && again->include_usage == parsed->include_usage &&
             again->logprobs == parsed->logprobs);
  FUZZ_CHECK(parsed->request.return_tokens() == parsed->logprobs);
  for (int l = 0; l < 2; ++l) {
    for (int t = 0; t < 2; ++t) {
      auto spec = ValidateGenerateRequest(parsed->request, *tokenizers[t], *limits[l], 1);
      if (!spec.ok()) {
        CheckRejected(spec.status());
        continue;
      }
      FUZZ_CHECK(spec->max_tokens >= 1 && spec->max_tokens <= limits[l]->max_tokens_limit);
      FUZZ_CHECK(!spec->prompt.empty() &&
                 static_cast<int>(spec->prompt.size()) <= limits[l]->max_prompt_tokens);
      FUZZ_CHECK(static_cast<int>(spec->stops.size()) <= limits[l]->max_stop_strings);
      FUZZ_CHECK(spec->top_logprobs >= 0 && spec->top_logprobs <= limits[l]->max_logprobs);
    }
  }
}

}  // namespace
}  // namespace lstmserve

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace lstmserve;
  const std::string body(reinterpret_cast<const char*>(data), size);
  const RequestLimits defaults;
  RequestLimits tight;
  tight.max_prompt_tokens = 8;
  tight.max_tokens_limit = 8;
  tight.max_stop_strings = 2;
  tight.max_stop_length = 4;
  tight.max_logprobs = 2;
  const RequestLimits* const limits[] = {&defaults, &tight};
  const Tokenizer* const tokenizers[] = {&fuzz::ShakespeareTokenizer(), &fuzz::ByteTokenizer()};
  CheckCompletion(body, tokenizers, limits);
  absl::StatusOr<EmbeddingRequest> embed = ParseEmbeddingRequest(body);
  if (!embed.ok()) {
    CheckRejected(embed.status());
  } else {
    for (const Tokenizer* t : tokenizers) {
      auto ids = ValidateEmbedRequest(embed->request, *t, tight);
      if (!ids.ok()) CheckRejected(ids.status());
    }
  }
  absl::StatusOr<v1::ScoreRequest> score = ParseScoreRequest(body);
  if (!score.ok()) {
    CheckRejected(score.status());
  } else {
    for (const Tokenizer* t : tokenizers) {
      auto input = ValidateScoreRequest(*score, *t, tight);
      if (!input.ok()) {
        CheckRejected(input.status());
      } else {
        FUZZ_CHECK(input->first_scored >= 1 &&
                   input->first_scored <= static_cast<int>(input->tokens.size()));
      }
    }
  }
  return 0;
}
