// Start here (server layer): LanguageModelServer puts it together — the
// model registry (one scheduler thread per model), the LanguageModelService,
// the standard health service and server reflection on one gRPC server.
//
// Health (grpc.health.v1): readiness under "" and
// "lstmserve.v1.LanguageModelService" — NOT_SERVING until every model has run
// a warm-up generation, then SERVING, NOT_SERVING again from the start of
// Shutdown (the drain); liveness under "lstmserve.v1.Liveness" — SERVING
// while every model's scheduling loop makes progress (server/liveness.h).
// A drain also closes the listener at once, so during it only connections
// already open can still ask.
//
// Transport: options.network (connection age, keepalive, message size);
// options.security: TLS / mutual TLS and optional bearer-token auth.
//
// HTTP (options.http, off by default): the HTTP/JSON front with SSE
// (server/http_routes.h) on its own port, sharing the models, schedulers,
// limits, TLS, tokens, telemetry, readiness and drain.
//
// Telemetry (options.telemetry): with a metrics address, a Prometheus
// exposer serves /metrics there (ServerMetrics + ProcessMetrics); with a
// request log path, one JSON line per request (RequestLog).
//
// Thread-safe: Shutdown may be called from any thread (once or more).
#ifndef LSTMSERVE_SERVER_SERVER_H_
#define LSTMSERVE_SERVER_SERVER_H_

#include <memory>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include <prometheus/exposer.h>
#include <prometheus/registry.h>

#include "server/auth.h"
#include "server/http_routes.h"
#include "server/http_server.h"
#include "server/liveness.h"
#include "server/metrics.h"
#include "server/model_registry.h"
#include "server/process_metrics.h"
#include "server/request_log.h"
#include "server/options.h"
#include "server/service.h"
#include "server/state_keys.h"

namespace lstmserve {

class LanguageModelServer {
 public:
  // Serves `engines` (already built: main.cc loads packages, tests pass
  // in-memory models) on options.listen, starts the metrics exposer and the
  // request log if asked for, warms each model up and reports SERVING.
  static absl::StatusOr<std::unique_ptr<LanguageModelServer>> Start(
      const ServerOptions& options, std::vector<NamedEngine> engines);
  // Shuts down (with a zero grace period if Shutdown was not called).
  ~LanguageModelServer();

  // The bound port (useful with port 0).
  int port() const { return port_; }
  // The bound HTTP port; 0 when the HTTP front is off.
  int http_port() const { return http_port_; }
  // The bound metrics port; 0 when metrics are off.
  int metrics_port() const { return metrics_port_; }
  // The keys of portable states: from options.state_key_file, or one random
  // per-process key when it is empty.
  const StateKeyRing& state_keys() const { return *state_keys_; }

  // Graceful shutdown: health NOT_SERVING at once. With a connection age
  // (options.network.max_connection_age) the listener closes first and the
  // open connections keep serving until each has aged out (GOAWAY) or the
  // grace ends, whichever is first; then (at once without a connection age)
  // new requests get UNAVAILABLE, the gRPC server stops accepting and sends
  // GOAWAY, and in-flight requests may finish until `grace` (default:
  // options.shutdown_grace) after the call; whatever still runs then ends
  // with UNAVAILABLE (FINISH_REASON_SHUTDOWN). Returns when done.
  void Shutdown();
  void Shutdown(absl::Duration grace);

 private:
  LanguageModelServer() = default;
  absl::Status WarmUp();
  // The first step of a drain with a connection age: closes the listener and
  // waits until no connection is left, at most until the ages ran out or
  // `deadline` (server/listen_sockets.h says why).
  void AgeOutConnections(absl::Time deadline);
  absl::Status StartTelemetry();
  absl::Status StartExposer();

  ServerOptions options_;
  int port_ = 0;
  int metrics_port_ = 0;
  int http_port_ = 0;
  // Telemetry: declared before what reports to it, so it outlives them.
  std::shared_ptr<prometheus::Registry> metrics_registry_;
  std::unique_ptr<ServerMetrics> metrics_;
  std::shared_ptr<ProcessMetrics> process_metrics_;
  std::unique_ptr<RequestLog> request_log_;
  RequestObservers request_observers_;
  std::unique_ptr<prometheus::Exposer> exposer_;
  std::unique_ptr<BearerTokenAuth> auth_;  // null: no token needed
  std::unique_ptr<StateKeyRing> state_keys_;  // outlives registry_
  std::unique_ptr<ModelRegistry> registry_;
  std::unique_ptr<LanguageModelService> service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<HttpApi> http_api_;
  std::unique_ptr<HttpServer> http_;  // destroyed before what its requests use
  std::unique_ptr<LivenessWatchdog> liveness_;  // destroyed first: uses server_ and registry_
  absl::Mutex shutdown_mu_;  // serializes Shutdown
  bool shut_down_ ABSL_GUARDED_BY(shutdown_mu_) = false;
};

}  // namespace lstmserve

#endif  // LSTMSERVE_SERVER_SERVER_H_
