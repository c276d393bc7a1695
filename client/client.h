// Start here (client layer): LanguageModelClient, a small blocking C++
// client for lstmserve.v1 (used by lstmctl, lstmbench and the tests).
// Thread-safe: one client may run many calls at once from many threads.
#ifndef LSTMSERVE_CLIENT_CLIENT_H_
#define LSTMSERVE_CLIENT_CLIENT_H_

#include <functional>
#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "lstmserve/v1/lstmserve.grpc.pb.h"

namespace lstmserve {

// grpc::Status -> absl::Status (same codes).
absl::Status FromGrpcStatus(const grpc::Status& status);

struct CallOptions {
  // Per-call deadline from the start of the call; infinite = none.
  absl::Duration timeout = absl::InfiniteDuration();
  // Sent as `x-request-id` metadata when not empty, so a proxy's access log
  // (nginx: $http_x_request_id) can be matched to the client's view of a call.
  std::string request_id;
};

// How to reach a server that uses TLS, mutual TLS or bearer tokens.
struct ConnectionOptions {
  // PEM CA that signed the server's certificate: connect with TLS. Empty
  // (and no client certificate): plaintext.
  std::string tls_ca_file;
  // PEM client certificate and key for mutual TLS.
  std::string tls_cert_file;
  std::string tls_key_file;
  // Expected name in the server certificate when it differs from the host
  // in the target (e.g. "localhost" when dialling 127.0.0.1).
  std::string tls_server_name;
  // Sent as `authorization: Bearer <token>` on every call; empty: none.
  std::string auth_token;
};

class LanguageModelClient {
 public:
  // Connects (lazily) to `target` ("host:port") without TLS.
  explicit LanguageModelClient(const std::string& target);
  explicit LanguageModelClient(std::shared_ptr<grpc::Channel> channel,
                               std::string auth_token = "");
  // Connects (lazily) with `options`; INVALID_ARGUMENT naming a file that
  // cannot be read.
  static absl::StatusOr<std::unique_ptr<LanguageModelClient>> Connect(
      const std::string& target, const ConnectionOptions& options);

  // Called with each streamed message as it arrives; return false to cancel
  // the call (Generate then returns CANCELLED).
  using OnResponse = std::function<bool(const v1::GenerateResponse&)>;
  // Streams one generation; returns the RPC's final status.
  absl::Status Generate(const v1::GenerateRequest& request, const OnResponse& on_response,
                        const CallOptions& options = {});
  // Convenience: the whole text and the last message (finish_reason, usage).
  struct Generation {
    std::string text;
    int messages = 0;
    v1::GenerateResponse last;
  };
  absl::StatusOr<Generation> GenerateText(const v1::GenerateRequest& request,
                                          const CallOptions& options = {});

  absl::StatusOr<v1::ScoreResponse> Score(const v1::ScoreRequest& request,
                                          const CallOptions& options = {});
  absl::StatusOr<v1::EmbedResponse> Embed(const v1::EmbedRequest& request,
                                          const CallOptions& options = {});
  absl::StatusOr<v1::ListModelsResponse> ListModels(const CallOptions& options = {});
  // The grpc.health.v1 status of `service` ("" = the whole server):
  // "SERVING", "NOT_SERVING", ...
  absl::StatusOr<std::string> Health(const std::string& service = "",
                                     const CallOptions& options = {});

  const std::shared_ptr<grpc::Channel>& channel() const { return channel_; }

 private:
  // Deadline and credentials of one call.
  void Configure(const CallOptions& options, grpc::ClientContext* context) const;

  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::LanguageModelService::Stub> stub_;
  const std::string authorization_;  // "Bearer <token>" or empty
};

}  // namespace lstmserve

#endif  // LSTMSERVE_CLIENT_CLIENT_H_
