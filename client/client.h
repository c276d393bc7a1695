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
};

class LanguageModelClient {
 public:
  // Connects (lazily) to `target` ("host:port") without TLS.
  explicit LanguageModelClient(const std::string& target);
  explicit LanguageModelClient(std::shared_ptr<grpc::Channel> channel);

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
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::LanguageModelService::Stub> stub_;
};

}  // namespace lstmserve

#endif  // LSTMSERVE_CLIENT_CLIENT_H_
