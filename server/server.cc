#include "server/server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>

#include <algorithm>
#include <exception>
#include <map>
#include <memory>
#include <thread>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "server/credentials.h"
#include "server/listen_sockets.h"
#include "server/shared_engine.h"
#include "server/status_util.h"

namespace lstmserve {
namespace {

constexpr char kServiceName[] = "lstmserve.v1.LanguageModelService";

int Millis(absl::Duration d) {
  return static_cast<int>(std::min<int64_t>(absl::ToInt64Milliseconds(d), INT32_MAX));
}

// The transport's channel arguments (NetworkOptions).
void ApplyNetworkOptions(const NetworkOptions& n, grpc::ServerBuilder* builder) {
  if (n.max_connection_age != absl::InfiniteDuration()) {
    builder->AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_MS, Millis(n.max_connection_age));
  }
  if (n.max_connection_age_grace != absl::InfiniteDuration()) {
    builder->AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_GRACE_MS,
                                Millis(n.max_connection_age_grace));
  }
  builder->AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, Millis(n.keepalive_time));
  builder->AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, Millis(n.keepalive_timeout));
  builder->AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder->AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS,
                              Millis(n.min_client_ping_interval));
  if (n.max_concurrent_streams > 0) {
    builder->AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS, n.max_concurrent_streams);
  }
  builder->SetMaxReceiveMessageSize(n.max_receive_message_bytes);
}

}  // namespace

absl::StatusOr<std::unique_ptr<LanguageModelServer>> LanguageModelServer::Start(
    const ServerOptions& options, std::vector<NamedEngine> engines) {
  std::unique_ptr<LanguageModelServer> s(new LanguageModelServer());
  s->options_ = options;
  ASSIGN_OR_RETURN(std::shared_ptr<grpc::ServerCredentials> credentials,
                   MakeServerCredentials(options.security));
  if (!options.security.auth_token_file.empty()) {
    ASSIGN_OR_RETURN(s->auth_, BearerTokenAuth::Load(options.security.auth_token_file));
  }
  if (options.state_key_file.empty()) {
    ASSIGN_OR_RETURN(StateKeyRing keys, StateKeyRing::Random());
    s->state_keys_ = std::make_unique<StateKeyRing>(std::move(keys));
  } else {
    ASSIGN_OR_RETURN(StateKeyRing keys, StateKeyRing::FromFile(options.state_key_file));
    s->state_keys_ = std::make_unique<StateKeyRing>(std::move(keys));
  }
  RETURN_IF_ERROR(s->StartTelemetry());
  VersionObserver* versions = s->metrics_.get();
  s->registry_ = std::make_unique<ModelRegistry>(options.repository.keep_versions);
  ModelVersion::ObserverFactory observer_for = nullptr;
  if (versions != nullptr) {
    observer_for = [versions](const v1::ModelInfo& info) {
      return versions->OnVersionLoaded(info);
    };
  }
  const bool repository = !options.repository.directory.empty();
  std::map<std::string, std::shared_ptr<ComputeBudget>> fixed_budgets;
  for (NamedEngine& e : engines) {
    if (e.name.empty() || !s->fixed_models_.insert(e.name).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("model name '", e.name, "' is empty or used twice"));
    }
    if (repository) {
      // The repository's scans split the cores over these and its own models.
      auto budget = std::make_shared<ComputeBudget>();
      fixed_budgets[e.name] = budget;
      e.engine = std::make_unique<SharedComputeEngine>(std::move(e.engine), std::move(budget));
    }
    ASSIGN_OR_RETURN(ModelHandle version,
                     ModelVersion::Create(e.name, 1, std::move(e.engine),
                                          ModelVersion::Source{"", "", e.fingerprint},
                                          options.scheduler, s->state_keys_.get(),
                                          observer_for));
    RETURN_IF_ERROR(s->registry_->Publish(std::move(version)));
  }
  if (repository) {
    ModelRepository::Options r;
    r.repository = options.repository;
    r.loading = options.loading;
    r.scheduler = options.scheduler;
    r.warm_up = options.warm_up;
    r.fixed_models = s->fixed_models_;
    r.fixed_budgets = std::move(fixed_budgets);
    r.state_keys = s->state_keys_.get();
    ASSIGN_OR_RETURN(s->repository_,
                     ModelRepository::Start(std::move(r), s->registry_.get(), versions));
  }
  if (s->registry_->List().empty()) {
    return absl::InvalidArgumentError(
        options.repository.directory.empty()
            ? "no models to serve (--model)"
            : absl::StrCat("no models to serve (--model, or a valid version in --model-repository '",
                           options.repository.directory, "')"));
  }
  s->service_ = std::make_unique<LanguageModelService>(
      s->registry_.get(), options.limits,
      s->request_observers_.empty() ? nullptr : &s->request_observers_, s->auth_.get());
  if (absl::Status exposed = s->StartExposer(); !exposed.ok()) {
    s->registry_->StopAll(absl::UnavailableError("the server did not start"));
    return exposed;
  }

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  builder.AddListeningPort(options.listen, credentials, &s->port_);
  ApplyNetworkOptions(options.network, &builder);
  builder.RegisterService(s->service_.get());
  s->server_ = builder.BuildAndStart();
  if (s->server_ == nullptr || s->port_ == 0) {
    s->registry_->StopAll(absl::UnavailableError("the server did not start"));
    return absl::UnavailableError(absl::StrCat("cannot listen on '", options.listen, "'"));
  }
  if (!options.http.listen.empty()) {
    s->http_api_ = std::make_unique<HttpApi>(
        s->registry_.get(), options.limits,
        s->request_observers_.empty() ? nullptr : &s->request_observers_, s->auth_.get());
    HttpApi* api = s->http_api_.get();
    auto http = HttpServer::Start(options.http, options.security,
                                  [api](HttpRequest request, std::shared_ptr<HttpExchange> exchange) {
                                    api->Handle(std::move(request), std::move(exchange));
                                  });
    if (!http.ok()) {
      s->Shutdown(absl::ZeroDuration());
      return http.status();
    }
    s->http_ = *std::move(http);
    s->http_port_ = s->http_->port();
  }
  grpc::HealthCheckServiceInterface* health = s->server_->GetHealthCheckService();
  health->SetServingStatus(false);
  health->SetServingStatus(kServiceName, false);
  s->liveness_ = LivenessWatchdog::Start(s->registry_.get(), health,
                                         options.liveness_stall_timeout, options.liveness_period);
  if (options.warm_up) {
    if (absl::Status warm = s->WarmUp(); !warm.ok()) {
      s->Shutdown(absl::ZeroDuration());
      return warm;
    }
  }
  health->SetServingStatus(true);
  health->SetServingStatus(kServiceName, true);
  if (s->http_api_ != nullptr) s->http_api_->SetReady(true);
  return s;
}

absl::Status LanguageModelServer::StartTelemetry() {
  const TelemetryOptions& t = options_.telemetry;
  if (t.metrics && !t.metrics_listen.empty()) {
    metrics_registry_ = std::make_shared<prometheus::Registry>();
    ASSIGN_OR_RETURN(metrics_,
                     ServerMetrics::Create(metrics_registry_.get(), options_.scheduler.max_queue));
    process_metrics_ = std::make_shared<ProcessMetrics>();
    request_observers_.Add(metrics_.get());
  }
  if (!t.request_log.empty()) {
    std::function<void()> on_drop;
    if (metrics_ != nullptr) {
      on_drop = [counter = &metrics_->request_log_dropped()] { counter->Increment(); };
    }
    ASSIGN_OR_RETURN(request_log_, RequestLog::Create(t.request_log, t.log_level,
                                                      /*max_queued=*/4096, std::move(on_drop)));
    request_observers_.Add(request_log_.get());
  }
  return absl::OkStatus();
}

absl::Status LanguageModelServer::StartExposer() {
  if (metrics_ == nullptr) return absl::OkStatus();
  const std::string& address = options_.telemetry.metrics_listen;
  try {
    // One listening thread; scrapes are rare and cheap.
    exposer_ = std::make_unique<prometheus::Exposer>(address, 1);
  } catch (const std::exception& e) {
    return absl::UnavailableError(
        absl::StrCat("cannot serve metrics on '", address, "' (--metrics-listen): ", e.what()));
  }
  exposer_->RegisterCollectable(metrics_registry_);
  exposer_->RegisterCollectable(process_metrics_);
  const std::vector<int> ports = exposer_->GetListeningPorts();
  metrics_port_ = ports.empty() ? 0 : ports.front();
  return absl::OkStatus();
}

absl::Status LanguageModelServer::WarmUp() {
  // The repository warms its versions up before it publishes them.
  for (const std::string& name : fixed_models_) {
    ASSIGN_OR_RETURN(ModelHandle version, registry_->Find(name));
    RETURN_IF_ERROR(lstmserve::WarmUp(version->scheduler(), version->identity()));
  }
  return absl::OkStatus();
}

void LanguageModelServer::RequestRescan() {
  if (repository_ != nullptr) repository_->RequestRescan();
}

void LanguageModelServer::AgeOutConnections(absl::Time deadline) {
  const absl::Duration age = options_.network.max_connection_age;
  if (age == absl::InfiniteDuration() || absl::Now() >= deadline) return;
  // grpc::Server::Shutdown makes gRPC core cancel (CANCELLED, in a
  // trailers-only response) every stream that arrives after it, and a proxy
  // that sent one on a pooled connection just before reading the GOAWAY
  // cannot retry it. So first close only the listener (a proxy's new
  // connects are refused and retried elsewhere) and keep serving the open
  // connections -- calls on them included -- until their connection age has
  // sent each its GOAWAY (gRPC adds up to 10% jitter) and the proxy closed
  // them; a stream that races an age GOAWAY is still served.
  absl::StatusOr<int> stopped = StopAccepting(port_);
  if (!stopped.ok() || *stopped == 0) return;  // not a TCP port we can stop: GOAWAY at once
  const absl::Time aged = std::min(deadline, absl::Now() + age * 1.1 + absl::Seconds(1));
  while (ConnectionCount(port_) > 0 && absl::Now() < aged) absl::SleepFor(absl::Milliseconds(20));
}

LanguageModelServer::~LanguageModelServer() { Shutdown(absl::ZeroDuration()); }

void LanguageModelServer::Shutdown() { Shutdown(options_.shutdown_grace); }

void LanguageModelServer::Shutdown(absl::Duration grace) {
  absl::MutexLock lock(&shutdown_mu_);
  if (shut_down_) return;
  shut_down_ = true;
  const absl::Time deadline = absl::Now() + grace;  // InfiniteFuture for an infinite grace
  // Readiness now answers NOT_SERVING. HTTP: new requests get 503 at once
  // and the listener closes (refused connects are what a proxy retries
  // elsewhere; answers on open connections say Connection: close); streams
  // in flight go on.
  if (http_api_ != nullptr) {
    http_api_->SetReady(false);
    http_api_->StartDraining();
  }
  if (http_ != nullptr) http_->StopAccepting();
  if (server_ != nullptr) {
    server_->GetHealthCheckService()->SetServingStatus("", false);
    server_->GetHealthCheckService()->SetServingStatus(kServiceName, false);
    AgeOutConnections(deadline);
  }
  // Requests that still reach the service get UNAVAILABLE.
  if (service_ != nullptr) service_->StartDraining();
  // Stop accepting at the transport: the listening socket closes and open
  // connections get GOAWAY, so a load balancer's new calls fail to connect
  // here and are retried on another replica (an answered UNAVAILABLE would
  // reach the client); streams in flight go on. grpc::Server::Shutdown
  // blocks until they end, hence its own thread. Its deadline lies past the
  // drain's, so the scheduler ends stragglers first (FINISH_REASON_SHUTDOWN).
  std::thread transport;
  if (server_ != nullptr) {
    const absl::Time bound =
        (deadline == absl::InfiniteFuture() ? absl::Now() + absl::Hours(24 * 365) : deadline) +
        absl::Seconds(1);
    transport = std::thread([this, bound] { server_->Shutdown(absl::ToChronoTime(bound)); });
  }
  // No version is loaded or swapped from now on.
  if (repository_ != nullptr) repository_->Stop();
  if (registry_ != nullptr) {  // null when Start failed early
    registry_->WaitUntilIdle(deadline);
    registry_->StopAll(
        absl::UnavailableError("the server shut down before the request finished"));
  }
  // Every generation has ended: let the HTTP answers already due be written
  // (briefly), then close the connections.
  if (http_ != nullptr) http_->Stop(absl::Now() + absl::Seconds(2));
  if (server_ != nullptr) {
    transport.join();
    if (liveness_ != nullptr) liveness_->Stop();
    server_->GetHealthCheckService()->Shutdown();  // every service NOT_SERVING
    server_->Wait();
  }
}

}  // namespace lstmserve
