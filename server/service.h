// LanguageModelService: the lstmserve.v1 API on the gRPC callback API. Each
// handler validates its request, then hands the work to the model's
// scheduler and returns; results come back on the scheduler thread (see
// GenerateReactor for streams). Handlers never block or run inference.
//
// Every Generate, Score and Embed RPC is reported once to the
// RequestObserver (a RequestRecord) just before it finishes.
//
// With `auth` (BearerTokenAuth), every call without a valid token ends with
// UNAUTHENTICATED before anything else is looked at.
//
// Each request runs on one model version (ModelRegistry::Find: the serving
// one, or the one named by model_version) and holds it until it ends, so a
// version swapped out meanwhile still finishes it; responses carry the
// version in model_version.
//
// Thread-safe. Borrows the registry, the observer and auth (both may be
// null), which must outlive the service.
#ifndef LSTMSERVE_SERVER_SERVICE_H_
#define LSTMSERVE_SERVER_SERVICE_H_

#include <atomic>
#include <string>

#include "lstmserve/v1/lstmserve.grpc.pb.h"
#include "server/auth.h"
#include "server/model_registry.h"
#include "server/options.h"
#include "server/request_observer.h"
#include "server/write_dispatcher.h"

namespace lstmserve {

class LanguageModelService final : public v1::LanguageModelService::CallbackService {
 public:
  LanguageModelService(ModelRegistry* registry, const RequestLimits& limits,
                       RequestObserver* observer = nullptr,
                       const BearerTokenAuth* auth = nullptr);

  // From now on every new request gets UNAVAILABLE; requests already
  // accepted go on.
  void StartDraining() { draining_.store(true); }

  grpc::ServerWriteReactor<v1::GenerateResponse>* Generate(
      grpc::CallbackServerContext* context, const v1::GenerateRequest* request) override;
  grpc::ServerUnaryReactor* Score(grpc::CallbackServerContext* context,
                                  const v1::ScoreRequest* request,
                                  v1::ScoreResponse* response) override;
  grpc::ServerUnaryReactor* Embed(grpc::CallbackServerContext* context,
                                  const v1::EmbedRequest* request,
                                  v1::EmbedResponse* response) override;
  grpc::ServerUnaryReactor* ListModels(grpc::CallbackServerContext* context,
                                       const v1::ListModelsRequest* request,
                                       v1::ListModelsResponse* response) override;

 private:
  // The request id to use: the client's (field or x-request-id metadata), or
  // a new unique one.
  std::string RequestId(const std::string& from_client);
  // The model version to run (`version` 0: the serving one), or
  // UNAUTHENTICATED / UNAVAILABLE (draining) / NOT_FOUND.
  absl::StatusOr<ModelHandle> Admit(const grpc::CallbackServerContext& context,
                                    const std::string& model, int64_t version) const;
  // A record for a request that just arrived.
  static RequestRecord NewRecord(const grpc::CallbackServerContext& context, const char* rpc,
                                 const std::string& request_id);
  // Ends a unary RPC with `status`, reporting `record` first.
  void FinishUnary(grpc::ServerUnaryReactor* reactor, RequestRecord& record,
                   const absl::Status& status) const;

  ModelRegistry* const registry_;
  const RequestLimits limits_;
  RequestObserver* const observer_;  // may be null
  const BearerTokenAuth* const auth_;  // may be null
  const std::string id_prefix_;  // random per process
  std::atomic<uint64_t> next_id_{1};
  std::atomic<bool> draining_{false};
  // Starts stream writes off the scheduler threads (server/write_dispatcher.h).
  WriteDispatcher write_dispatcher_;
};

}  // namespace lstmserve

#endif  // LSTMSERVE_SERVER_SERVICE_H_
