// Fuzz target: a serialized lstmserve.v1.GenerateRequest, as the server
// receives it, -> ValidateGenerateRequest with the server's default limits
// (server/options.h) and with tight ones, against a char and a byte
// tokenizer. The same bytes are also parsed as a ScoreRequest and an
// EmbedRequest (the field numbers overlap) and validated, so the three
// request validators share one corpus.
// Beyond "no crash": an accepted request is within every limit and its prompt
// ids are < vocab size; a rejection is INVALID_ARGUMENT with a bounded
// message; a Score input satisfies the scheduler's
// 1 <= first_scored <= tokens.size().
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "google/protobuf/stubs/logging.h"
#include "lstmserve/v1/lstmserve.pb.h"
#include "models/tokenizer.h"
#include "server/options.h"
#include "server/validation.h"
#include "tests/fuzz/fuzz_support.h"

namespace lstmserve {
namespace {

// Messages name the field, value and limit; they never echo unbounded input.
constexpr size_t kMaxMessageBytes = 512;

void CheckRejected(const absl::Status& status) {
  FUZZ_CHECK(status.code() == absl::StatusCode::kInvalidArgument);
  FUZZ_CHECK(!status.message().empty() && status.message().size() <= kMaxMessageBytes);
}

void CheckIds(const std::vector<int32_t>& ids, const Tokenizer& tokenizer, int limit) {
  FUZZ_CHECK(!ids.empty() && static_cast<int>(ids.size()) <= limit);
  for (int32_t id : ids) FUZZ_CHECK(id >= 0 && id < tokenizer.vocab_size());
}

void CheckGenerate(const v1::GenerateRequest& request, const Tokenizer& tokenizer,
                   const RequestLimits& limits) {
  constexpr uint64_t kRandomSeed = 0x5eed;
  auto spec = ValidateGenerateRequest(request, tokenizer, limits, kRandomSeed);
  if (!spec.ok()) {
    CheckRejected(spec.status());
    return;
  }
  if (request.prompt().empty()) {
    // Allowed only with a state to continue (decoded later by the service).
    FUZZ_CHECK(!request.state().empty() && spec->prompt.empty());
  } else {
    CheckIds(spec->prompt, tokenizer, limits.max_prompt_tokens);
  }
  FUZZ_CHECK(tokenizer.Decode(spec->prompt) == request.prompt());
  FUZZ_CHECK(spec->max_tokens >= 1 && spec->max_tokens <= limits.max_tokens_limit);
  FUZZ_CHECK(std::isfinite(spec->sampling.temperature) && spec->sampling.temperature >= 0.0f);
  FUZZ_CHECK(spec->sampling.top_k >= 0);
  FUZZ_CHECK(spec->sampling.top_p > 0.0f && spec->sampling.top_p <= 1.0f);
  FUZZ_CHECK(spec->sampling.seed == (request.has_seed() ? request.seed() : kRandomSeed));
  FUZZ_CHECK(static_cast<int>(spec->stops.size()) <= limits.max_stop_strings);
  for (const std::string& stop : spec->stops) {
    FUZZ_CHECK(!stop.empty() && static_cast<int>(stop.size()) <= limits.max_stop_length);
  }
  FUZZ_CHECK(spec->top_logprobs >= 0 && spec->top_logprobs <= limits.max_logprobs);
  FUZZ_CHECK(spec->return_tokens == (request.return_tokens() || request.logprobs() > 0));
  FUZZ_CHECK(spec->request_id == request.request_id());
}

void CheckScore(const v1::ScoreRequest& request, const Tokenizer& tokenizer,
                const RequestLimits& limits) {
  auto input = ValidateScoreRequest(request, tokenizer, limits);
  if (!input.ok()) {
    CheckRejected(input.status());
    return;
  }
  CheckIds(input->tokens, tokenizer, limits.max_prompt_tokens);
  FUZZ_CHECK(input->first_scored >= 1 &&
             input->first_scored <= static_cast<int>(input->tokens.size()));
  FUZZ_CHECK(tokenizer.Decode(input->tokens) == request.context() + request.text());
}

void CheckEmbed(const v1::EmbedRequest& request, const Tokenizer& tokenizer,
                const RequestLimits& limits) {
  auto ids = ValidateEmbedRequest(request, tokenizer, limits);
  if (!ids.ok()) {
    CheckRejected(ids.status());
    return;
  }
  CheckIds(*ids, tokenizer, limits.max_prompt_tokens);
  FUZZ_CHECK(tokenizer.Decode(*ids) == request.text());
}

}  // namespace
}  // namespace lstmserve

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace lstmserve;
  // Protobuf logs every string field with invalid UTF-8 it refuses; quiet.
  static const bool quiet = (google::protobuf::SetLogHandler(nullptr), true);
  (void)quiet;
  // The server's defaults, and tight limits (as flags may set) so that short
  // inputs reach every limit check.
  const RequestLimits defaults;
  RequestLimits tight;
  tight.max_prompt_tokens = 8;
  tight.max_tokens_limit = 8;
  tight.max_stop_strings = 2;
  tight.max_stop_length = 4;
  tight.max_logprobs = 2;
  const Tokenizer* tokenizers[] = {&fuzz::ShakespeareTokenizer(), &fuzz::ByteTokenizer()};
  v1::GenerateRequest generate;
  v1::ScoreRequest score;
  v1::EmbedRequest embed;
  const bool is_generate = generate.ParseFromArray(data, static_cast<int>(size));
  const bool is_score = score.ParseFromArray(data, static_cast<int>(size));
  const bool is_embed = embed.ParseFromArray(data, static_cast<int>(size));
  const RequestLimits* const all_limits[] = {&defaults, &tight};
  for (const RequestLimits* limits : all_limits) {
    for (const Tokenizer* t : tokenizers) {
      if (is_generate) CheckGenerate(generate, *t, *limits);
      if (is_score) CheckScore(score, *t, *limits);
      if (is_embed) CheckEmbed(embed, *t, *limits);
    }
  }
  return 0;
}
