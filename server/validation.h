// Request validation: turns wire requests into validated work, or an
// INVALID_ARGUMENT that names the field, the value and the limit. Pure
// functions of their arguments; thread-safe. The work is bounded by the
// limits (byte lengths are checked before text is decoded).
#ifndef LSTMSERVE_SERVER_VALIDATION_H_
#define LSTMSERVE_SERVER_VALIDATION_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "lstmserve/v1/lstmserve.pb.h"
#include "models/tokenizer.h"
#include "server/generation.h"
#include "server/options.h"

namespace lstmserve {

// Longest client-chosen request_id. The id is echoed in every streamed
// message and in the request log, so an unbounded one would let a request of
// ~1 MiB make the server send ~1 MiB per generated token.
inline constexpr size_t kMaxRequestIdBytes = 256;

// `random_seed` is used when the request has no seed. The request id is
// copied as is (the service assigns one when empty). The prompt may be empty
// (spec.prompt then is) only when the request carries a `state`, which the
// service decodes (server/state_codec.h).
absl::StatusOr<GenerationSpec> ValidateGenerateRequest(const v1::GenerateRequest& request,
                                                       const Tokenizer& tokenizer,
                                                       const RequestLimits& limits,
                                                       uint64_t random_seed);

// Score: the ids of context + text and the index of the first scored token
// (1 without context: the first token has nothing to condition on).
struct ScoreInput {
  std::vector<int32_t> tokens;
  int first_scored = 1;
  int context_tokens = 0;
};
absl::StatusOr<ScoreInput> ValidateScoreRequest(const v1::ScoreRequest& request,
                                                const Tokenizer& tokenizer,
                                                const RequestLimits& limits);

absl::StatusOr<std::vector<int32_t>> ValidateEmbedRequest(const v1::EmbedRequest& request,
                                                          const Tokenizer& tokenizer,
                                                          const RequestLimits& limits);

// Encodes a non-empty `text` of at most `max_tokens` tokens; errors name
// `field`.
absl::StatusOr<std::vector<int32_t>> EncodeText(absl::string_view text, absl::string_view field,
                                                const Tokenizer& tokenizer, int max_tokens);

}  // namespace lstmserve

#endif  // LSTMSERVE_SERVER_VALIDATION_H_
