// ServerMetrics: every lstmserve_ Prometheus metric, in one object built at
// start-up. Families are registered in Create; the children for each model
// version (and for every rpc x gRPC code) are made when the version is
// loaded (OnVersionLoaded), so recording is only Counter/Histogram/Gauge
// updates through references kept here — never Family::Add on a request
// path. Labels are low-cardinality: model, version (a handful per model),
// rpc, code, finish_reason; never a request id or any request text.
// model_info and the request series carry the version; the scheduler
// series (steps, tokens, queue) are per model, summed over its versions.
//
// Three seams feed it: a SchedulerObserver per model version (engine steps,
// queue, tokens), the RequestObserver (one call per finished RPC) and the
// VersionObserver (versions loaded, unloaded, refused).
//
// Thread-safety: every method is thread-safe (the prometheus-cpp metric
// types are: counters and gauges are atomics; a histogram update takes that
// histogram's mutex, which only a scrape's brief copy of its buckets
// contends). The request series map is read under a reader lock and
// written only when a version loads.
#ifndef LSTMSERVE_SERVER_METRICS_H_
#define LSTMSERVE_SERVER_METRICS_H_

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "lstmserve/v1/lstmserve.pb.h"
#include "server/request_observer.h"
#include "server/scheduler_observer.h"
#include "server/version_observer.h"

namespace lstmserve {

class ServerMetrics final : public RequestObserver, public VersionObserver {
 public:
  // The RPCs counted in lstmserve_requests_total: gRPC methods and the HTTP
  // front's endpoints (server/http_routes.h).
  static constexpr const char* kRpcs[] = {"Generate",        "Score",          "Embed",
                                          "ListModels",      "/v1/completions", "/v1/embeddings",
                                          "/v1/score",       "/v1/models"};

  // Registers every family in `registry` (borrowed; outlives this);
  // `max_queue` is every model's queue capacity (--max-queue).
  // INVALID_ARGUMENT if prometheus-cpp refuses a name (it throws; caught here).
  static absl::StatusOr<std::unique_ptr<ServerMetrics>> Create(prometheus::Registry* registry,
                                                               int max_queue = 256);
  ~ServerMetrics() override;

  // VersionObserver. OnVersionLoaded creates the version's children: its
  // info metric (lstmserve_model_info, removed again by OnVersionUnloaded),
  // the model's gauges and histograms and the request counters for every
  // rpc and code; returns the observer for its scheduler (owned by this).
  // OnLoadFailure: lstmserve_model_load_failures_total.
  SchedulerObserver* OnVersionLoaded(const v1::ModelInfo& model) override;
  void OnVersionUnloaded(const v1::ModelInfo& model) override;
  void OnLoadFailure(const std::string& model) override;

  // lstmserve_request_log_dropped_total: request log lines dropped because
  // the log's queue was full.
  prometheus::Counter& request_log_dropped() { return *request_log_dropped_; }

  // RequestObserver: lstmserve_requests_total, lstmserve_request_duration_seconds.
  // A record whose model version was not loaded (none named, or unknown) is
  // counted under model="", version="".
  void OnRequestDone(const RequestRecord& record) override;

 private:
  class ModelObserver;
  struct RpcSeries {
    std::vector<prometheus::Counter*> by_code;  // indexed by absl::StatusCode 0..16
    prometheus::Histogram* duration = nullptr;
  };
  struct ModelSeries {
    std::map<std::string, RpcSeries> rpcs;  // by rpc name
  };

  explicit ServerMetrics(prometheus::Registry* registry, int max_queue);
  ModelSeries MakeRequestSeries(const std::string& model, const std::string& version);

  prometheus::Family<prometheus::Counter>* requests_;
  prometheus::Family<prometheus::Histogram>* request_duration_;
  prometheus::Family<prometheus::Histogram>* time_to_first_token_;
  prometheus::Family<prometheus::Histogram>* inter_token_;
  prometheus::Family<prometheus::Histogram>* queue_wait_;
  prometheus::Family<prometheus::Histogram>* step_duration_;
  prometheus::Family<prometheus::Histogram>* prefill_duration_;
  prometheus::Family<prometheus::Histogram>* prompt_length_;
  prometheus::Family<prometheus::Histogram>* generated_length_;
  prometheus::Family<prometheus::Histogram>* batch_size_;
  prometheus::Family<prometheus::Counter>* prompt_tokens_;
  prometheus::Family<prometheus::Counter>* generated_tokens_;
  prometheus::Family<prometheus::Counter>* finished_;
  prometheus::Family<prometheus::Counter>* rejections_;
  prometheus::Family<prometheus::Counter>* cancellations_;
  prometheus::Family<prometheus::Counter>* deadline_expiries_;
  prometheus::Family<prometheus::Counter>* iterations_;
  prometheus::Family<prometheus::Gauge>* active_;
  prometheus::Family<prometheus::Gauge>* queued_;
  prometheus::Family<prometheus::Gauge>* queue_capacity_;
  prometheus::Family<prometheus::Gauge>* batch_capacity_;
  prometheus::Family<prometheus::Gauge>* model_info_;
  prometheus::Family<prometheus::Counter>* load_failures_;
  prometheus::Family<prometheus::Counter>* prefix_cache_query_tokens_;
  prometheus::Family<prometheus::Counter>* prefix_cache_hit_tokens_;
  prometheus::Family<prometheus::Gauge>* prefix_cache_bytes_;
  prometheus::Counter* request_log_dropped_;
  const int max_queue_;

  mutable absl::Mutex mu_;
  // By (model, version); ("", 0) = unknown. Entries are never removed.
  std::map<std::pair<std::string, int64_t>, ModelSeries> by_version_ ABSL_GUARDED_BY(mu_);
  // One per loaded version (kept: a scheduler may report until it is gone).
  std::vector<std::unique_ptr<ModelObserver>> observers_ ABSL_GUARDED_BY(mu_);
  // The observer of each loaded version.
  std::map<std::pair<std::string, int64_t>, ModelObserver*> live_ ABSL_GUARDED_BY(mu_);
};

}  // namespace lstmserve

#endif  // LSTMSERVE_SERVER_METRICS_H_
