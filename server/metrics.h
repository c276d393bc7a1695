// ServerMetrics: every lstmserve_ Prometheus metric, in one object built at
// start-up. Families are registered in Create; the children for each model
// (and for every rpc x gRPC code) are made by AddModel before serving, so
// recording is only Counter/Histogram/Gauge updates through references kept
// here — never Family::Add on a request path. Labels are low-cardinality:
// model, rpc, code, finish_reason; never a request id or any request text.
//
// Two seams feed it: a SchedulerObserver per model (ForModel; engine steps,
// queue, tokens) and the RequestObserver (one call per finished RPC).
//
// Thread-safety: Create and AddModel are start-up only (one thread, before
// any observer is used). After that every method is thread-safe (the
// prometheus-cpp metric types are): counters and gauges are atomics; a
// histogram update takes that histogram's mutex, which only a scrape's
// brief copy of its buckets contends.
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

#include "absl/status/statusor.h"
#include "lstmserve/v1/lstmserve.pb.h"
#include "server/request_observer.h"
#include "server/scheduler_observer.h"

namespace lstmserve {

class ServerMetrics final : public RequestObserver {
 public:
  // The RPCs counted in lstmserve_requests_total: gRPC methods and the HTTP
  // front's endpoints (server/http_routes.h).
  static constexpr const char* kRpcs[] = {"Generate",        "Score",          "Embed",
                                          "ListModels",      "/v1/completions", "/v1/embeddings",
                                          "/v1/score",       "/v1/models"};

  // Registers every family in `registry` (borrowed; outlives this).
  // INVALID_ARGUMENT if prometheus-cpp refuses a name (it throws; caught here).
  static absl::StatusOr<std::unique_ptr<ServerMetrics>> Create(prometheus::Registry* registry);
  ~ServerMetrics() override;

  // Creates `model`'s children: its info metric, gauges, histograms and the
  // request counters for every rpc and code; `max_queue` is its queue
  // capacity. Returns the observer for its scheduler (owned by this).
  SchedulerObserver* AddModel(const v1::ModelInfo& model, int max_queue);

  // lstmserve_request_log_dropped_total: request log lines dropped because
  // the log's queue was full.
  prometheus::Counter& request_log_dropped() { return *request_log_dropped_; }

  // RequestObserver: lstmserve_requests_total, lstmserve_request_duration_seconds.
  // A record whose model was not added (none named, or unknown) is counted
  // under model="".
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

  explicit ServerMetrics(prometheus::Registry* registry);
  ModelSeries MakeRequestSeries(const std::string& model);

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
  prometheus::Family<prometheus::Counter>* prefix_cache_query_tokens_;
  prometheus::Family<prometheus::Counter>* prefix_cache_hit_tokens_;
  prometheus::Family<prometheus::Gauge>* prefix_cache_bytes_;
  prometheus::Counter* request_log_dropped_;

  std::map<std::string, ModelSeries> by_model_;  // fixed after start-up; "" = unknown
  std::vector<std::unique_ptr<ModelObserver>> observers_;
};

}  // namespace lstmserve

#endif  // LSTMSERVE_SERVER_METRICS_H_
