// HttpApi: what the HTTP front's requests mean (the HttpServer::Handler).
//   GET  /                  the playground page (server/playground/index.html)
//   GET  /v1/models         the loaded models
//   POST /v1/completions    OpenAI-style completions; "stream": true for SSE
//   POST /v1/embeddings     OpenAI-style embeddings (Embed's vector)
//   POST /v1/score          our own: token log-probs (Score)
//   GET  /health/ready      200 when serving, 503 before warm-up and draining
//   GET  /health/live       200
// The API shares everything with the gRPC service: the registry's models and
// schedulers, RequestLimits and validation (server/validation.h, so the
// same messages), the bearer tokens (401), the drain (503), the request log
// and metrics (rpc label "/v1/completions", ...) and request IDs (the
// X-Request-Id header, echoed; the server assigns one when absent).
//
// Thread-safe. Borrows the registry, the observer and auth (both may be
// null), which must outlive it and every request it started.
#ifndef LSTMSERVE_SERVER_HTTP_ROUTES_H_
#define LSTMSERVE_SERVER_HTTP_ROUTES_H_

#include <atomic>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "server/auth.h"
#include "server/http_server.h"
#include "server/model_registry.h"
#include "server/options.h"
#include "server/request_observer.h"

namespace lstmserve {

class HttpApi {
 public:
  // The rpc labels of the HTTP endpoints (metrics and the request log).
  static constexpr const char* kCompletions = "/v1/completions";
  static constexpr const char* kEmbeddings = "/v1/embeddings";
  static constexpr const char* kScore = "/v1/score";
  static constexpr const char* kModels = "/v1/models";

  HttpApi(ModelRegistry* registry, const RequestLimits& limits, RequestObserver* observer,
          const BearerTokenAuth* auth);

  // Readiness (/health/ready) once warm-up is done.
  void SetReady(bool ready) { ready_.store(ready); }
  // From now on API requests get 503; requests already accepted go on.
  void StartDraining() { draining_.store(true); }

  void Handle(HttpRequest request, std::shared_ptr<HttpExchange> exchange);

 private:
  // The model, or UNAUTHENTICATED / UNAVAILABLE (draining) / NOT_FOUND.
  absl::Status Admit(const HttpRequest& request) const;
  // The request id: the X-Request-Id header (INVALID_ARGUMENT over 256
  // bytes) or a new one.
  absl::StatusOr<std::string> RequestId(const HttpRequest& request);
  RequestRecord NewRecord(const HttpRequest& request, const char* rpc) const;
  // The version that answers `name` (0: the serving one), named in `record`.
  absl::StatusOr<ModelHandle> FindModel(const std::string& name, int64_t version,
                                        RequestRecord* record) const;
  // What every POST route does first: the request id (into `record` and
  // the X-Request-Id reply header), then admission (auth, drain). Not OK:
  // the error was answered and reported.
  absl::StatusOr<std::string> Begin(const HttpRequest& request, HttpExchange& exchange,
                                    RequestRecord* record);
  // Reports `record` with `status`, then answers the error.
  void Fail(RequestRecord& record, const absl::Status& status, HttpExchange& exchange) const;
  void Report(RequestRecord& record, const absl::Status& status) const;

  void Completions(const HttpRequest& request, std::shared_ptr<HttpExchange> exchange);
  void Embeddings(const HttpRequest& request, std::shared_ptr<HttpExchange> exchange);
  void Score(const HttpRequest& request, std::shared_ptr<HttpExchange> exchange);
  void Models(const HttpRequest& request, HttpExchange& exchange);

  ModelRegistry* const registry_;
  const RequestLimits limits_;
  RequestObserver* const observer_;    // may be null
  const BearerTokenAuth* const auth_;  // may be null
  const std::string id_prefix_;        // random per process
  std::atomic<uint64_t> next_id_{1};
  std::atomic<bool> ready_{false};
  std::atomic<bool> draining_{false};
};

}  // namespace lstmserve

#endif  // LSTMSERVE_SERVER_HTTP_ROUTES_H_
