// The OpenAI-style JSON of the HTTP front: request bodies parsed into the
// API's request messages (then validated by server/validation.h, so limits
// and messages are the gRPC ones), and the JSON answers built from the
// results. JSON-level errors (malformed JSON, a wrong type, a value only
// OpenAI has that we do not support) are INVALID_ARGUMENT messages that start
// with the field's name, like validation's. Unknown fields are ignored (SDKs
// send extras); fields that would change the output and that we cannot honour
// (echo, n, best_of, penalties, logit_bias, suffix) are refused by name.
// Pure functions; thread-safe.
#ifndef LSTMSERVE_SERVER_OPENAI_JSON_H_
#define LSTMSERVE_SERVER_OPENAI_JSON_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "lstmserve/v1/lstmserve.pb.h"
#include "models/tokenizer.h"

namespace lstmserve {

// POST /v1/completions.
struct CompletionRequest {
  // model, prompt, max_tokens (default 16, as OpenAI), temperature, top_p,
  // top_k (extension), seed, stop, logprobs.
  v1::GenerateRequest request;
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
  bool logprobs = false;       // "logprobs" given (even 0): per-token log-probs in the answer
};
absl::StatusOr<CompletionRequest> ParseCompletionRequest(absl::string_view body);
// POST /v1/embeddings: model, input (a string or a list of one string),
// encoding_format ("float", the default, or "base64": the little-endian
// float32 bytes, base64-encoded, which the official SDKs ask for).
struct EmbeddingRequest {
  v1::EmbedRequest request;
  bool base64 = false;
};
absl::StatusOr<EmbeddingRequest> ParseEmbeddingRequest(absl::string_view body);
// POST /v1/score: model, text, context (optional).
absl::StatusOr<v1::ScoreRequest> ParseScoreRequest(absl::string_view body);

// What every completion object of one request shares.
struct CompletionHeader {
  std::string id;  // "cmpl-<request id>"
  int64_t created = 0;  // Unix seconds
  std::string model;
  int64_t model_version = 0;  // the version that answers (an lstmserve extension)
};
// One completion object: the whole answer, or one SSE event of a stream.
struct CompletionPiece {
  std::string text;
  std::string finish_reason;  // "" = null (more follows)
  // With logprobs: these tokens' {tokens, token_logprobs, top_logprobs,
  // text_offset}, offsets counted from `text_offset` (the bytes of text
  // before this piece). Null: "logprobs": null.
  const std::vector<v1::GeneratedToken>* tokens = nullptr;
  int64_t text_offset = 0;
  const v1::Usage* usage = nullptr;  // null: no "usage"
};
// {"id", "object": "text_completion", "created", "model", "choices": [{
// "index": 0, "text", "finish_reason", "logprobs"}], "usage"?}. `tokenizer`
// gives the tokens' text (needed when piece.tokens is set).
std::string CompletionJson(const CompletionHeader& header, const CompletionPiece& piece,
                           const Tokenizer* tokenizer);

// {"object": "list", "data": [{"object": "embedding", "index": 0,
// "embedding": [...]}], "model", "usage": {"prompt_tokens", "total_tokens"}}.
std::string EmbeddingJson(const v1::EmbedResponse& response, const std::string& model,
                          bool base64 = false);
// {"id", "object": "score", "model", "token_ids", "token_logprobs",
// "total_logprob", "scored_tokens"}.
std::string ScoreJson(const v1::ScoreResponse& response, const std::string& model);
// {"object": "list", "data": [{"id", "object": "model", "created": 0,
// "owned_by": "lstmserve", + the ModelInfo fields}]}.
std::string ModelsJson(const std::vector<v1::ModelInfo>& models);

}  // namespace lstmserve

#endif  // LSTMSERVE_SERVER_OPENAI_JSON_H_
