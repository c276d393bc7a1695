// BearerTokenAuth: optional token authentication for the LanguageModelService
// (--auth-token-file). A call is let in when its metadata has
// `authorization: Bearer <token>` for one of the tokens in the file;
// otherwise it ends with UNAUTHENTICATED before anything else is looked at.
//
// The file holds one token per line (several lines allow rotation without a
// restart of clients); blank lines and lines starting with '#' are
// ignored; surrounding whitespace is trimmed. Tokens are compared in
// constant time and never logged.
//
// Health (grpc.health.v1) and server reflection are NOT behind the token:
// load balancers and Kubernetes gRPC probes cannot send one, health reveals
// only SERVING/NOT_SERVING, and reflection only the public API schema
// (proto/lstmserve/v1/lstmserve.proto). Use TLS so the token is not sent in
// clear text.
//
// Immutable after Load; thread-safe.
#ifndef LSTMSERVE_SERVER_AUTH_H_
#define LSTMSERVE_SERVER_AUTH_H_

#include <memory>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace lstmserve {

class BearerTokenAuth {
 public:
  // Reads the token file. INVALID_ARGUMENT naming the path when it cannot be
  // read or holds no token.
  static absl::StatusOr<std::unique_ptr<BearerTokenAuth>> Load(const std::string& path);
  static std::unique_ptr<BearerTokenAuth> FromTokens(std::vector<std::string> tokens);

  // OK, or UNAUTHENTICATED saying what was missing or wrong (never the
  // token the client sent).
  absl::Status Check(const grpc::CallbackServerContext& context) const;
  // The same on the value of the `authorization` header (empty: absent).
  absl::Status CheckHeader(absl::string_view authorization, bool present) const;

 private:
  explicit BearerTokenAuth(std::vector<std::string> tokens) : tokens_(std::move(tokens)) {}
  std::vector<std::string> tokens_;
};

}  // namespace lstmserve

#endif  // LSTMSERVE_SERVER_AUTH_H_
