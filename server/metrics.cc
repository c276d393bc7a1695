#include "server/metrics.h"

#include <exception>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"

namespace lstmserve {
namespace {

using prometheus::BuildCounter;
using prometheus::BuildGauge;
using prometheus::BuildHistogram;
using prometheus::Histogram;

constexpr int kNumCodes = 17;  // absl::StatusCode / grpc::StatusCode 0..16
constexpr int kFinishReasons[] = {v1::FINISH_REASON_UNSPECIFIED, v1::FINISH_REASON_LENGTH,
                                  v1::FINISH_REASON_STOP,        v1::FINISH_REASON_CANCELLED,
                                  v1::FINISH_REASON_DEADLINE,    v1::FINISH_REASON_SHUTDOWN};

// Seconds, from sub-millisecond steps to multi-minute streams.
Histogram::BucketBoundaries SecondsBuckets() {
  return {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
          0.5,    1,     2.5,    5,     10,   30,    60,   120, 300};
}
// Token counts: powers of two up to the largest request limits.
Histogram::BucketBoundaries TokenBuckets() {
  Histogram::BucketBoundaries b;
  for (double v = 1; v <= 8192; v *= 2) b.push_back(v);
  return b;
}
Histogram::BucketBoundaries BatchBuckets() {
  return {1, 2, 4, 8, 16, 24, 32, 48, 64, 96, 128, 192, 256, 512};
}

double Seconds(absl::Duration d) { return absl::ToDoubleSeconds(d); }

}  // namespace

// The observer of one model's scheduler: references to that model's
// children, updated on its scheduler thread.
class ServerMetrics::ModelObserver final : public SchedulerObserver {
 public:
  ModelObserver(ServerMetrics* m, const prometheus::Labels& labels)
      : time_to_first_token_(m->time_to_first_token_->Add(labels, SecondsBuckets())),
        inter_token_(m->inter_token_->Add(labels, SecondsBuckets())),
        queue_wait_(m->queue_wait_->Add(labels, SecondsBuckets())),
        step_duration_(m->step_duration_->Add(labels, SecondsBuckets())),
        prefill_duration_(m->prefill_duration_->Add(labels, SecondsBuckets())),
        prompt_length_(m->prompt_length_->Add(labels, TokenBuckets())),
        generated_length_(m->generated_length_->Add(labels, TokenBuckets())),
        batch_size_(m->batch_size_->Add(labels, BatchBuckets())),
        prompt_tokens_(m->prompt_tokens_->Add(labels)),
        generated_tokens_(m->generated_tokens_->Add(labels)),
        rejections_(m->rejections_->Add(labels)),
        cancellations_(m->cancellations_->Add(labels)),
        deadline_expiries_(m->deadline_expiries_->Add(labels)),
        iterations_(m->iterations_->Add(labels)),
        active_(m->active_->Add(labels)),
        queued_(m->queued_->Add(labels)),
        prefix_cache_query_tokens_(m->prefix_cache_query_tokens_->Add(labels)),
        prefix_cache_hit_tokens_(m->prefix_cache_hit_tokens_->Add(labels)),
        prefix_cache_bytes_(m->prefix_cache_bytes_->Add(labels)) {
    for (int reason : kFinishReasons) {
      prometheus::Labels l = labels;
      l["finish_reason"] = FinishReasonLabel(reason);
      finished_[reason] = &m->finished_->Add(l);
    }
  }

  void OnPrefill(int, int, absl::Duration duration) override {
    prefill_duration_.Observe(Seconds(duration));
  }
  void OnStep(int batch, absl::Duration duration) override {
    step_duration_.Observe(Seconds(duration));
    batch_size_.Observe(batch);
  }
  void OnRejected() override { rejections_.Increment(); }
  void OnLoad(int queued, int active) override {
    iterations_.Increment();
    queued_.Set(queued);
    active_.Set(active);
  }
  void OnPrefixCacheLookup(int query_tokens, int hit_tokens) override {
    prefix_cache_query_tokens_.Increment(query_tokens);
    prefix_cache_hit_tokens_.Increment(hit_tokens);
  }
  void OnPrefixCacheBytes(int64_t bytes) override {
    prefix_cache_bytes_.Set(static_cast<double>(bytes));
  }
  void OnAdmitted(int prompt_tokens, absl::Duration queue_wait) override {
    queue_wait_.Observe(Seconds(queue_wait));
    prompt_length_.Observe(prompt_tokens);
    prompt_tokens_.Increment(prompt_tokens);
  }
  void OnFirstToken(absl::Duration time_to_first_token) override {
    time_to_first_token_.Observe(Seconds(time_to_first_token));
    generated_tokens_.Increment();
  }
  void OnToken(absl::Duration since_previous) override {
    inter_token_.Observe(Seconds(since_previous));
    generated_tokens_.Increment();
  }
  void OnFinished(v1::FinishReason reason, absl::StatusCode, int generated_tokens) override {
    const int r = (reason >= 0 && reason < kSlots) ? reason : 0;
    (finished_[r] != nullptr ? finished_[r] : finished_[0])->Increment();
    generated_length_.Observe(generated_tokens);
    if (reason == v1::FINISH_REASON_CANCELLED) cancellations_.Increment();
    if (reason == v1::FINISH_REASON_DEADLINE) deadline_expiries_.Increment();
  }

 private:
  static constexpr int kSlots = 8;
  Histogram& time_to_first_token_;
  Histogram& inter_token_;
  Histogram& queue_wait_;
  Histogram& step_duration_;
  Histogram& prefill_duration_;
  Histogram& prompt_length_;
  Histogram& generated_length_;
  Histogram& batch_size_;
  prometheus::Counter& prompt_tokens_;
  prometheus::Counter& generated_tokens_;
  prometheus::Counter& rejections_;
  prometheus::Counter& cancellations_;
  prometheus::Counter& deadline_expiries_;
  prometheus::Counter& iterations_;
  prometheus::Gauge& active_;
  prometheus::Gauge& queued_;
  prometheus::Counter& prefix_cache_query_tokens_;
  prometheus::Counter& prefix_cache_hit_tokens_;
  prometheus::Gauge& prefix_cache_bytes_;
  prometheus::Counter* finished_[kSlots] = {};  // by FinishReason value
};

ServerMetrics::ServerMetrics(prometheus::Registry* registry)
    : requests_(&BuildCounter()
                     .Name("lstmserve_requests_total")
                     .Help("Finished RPCs by model, rpc and gRPC status code (model=\"\": the "
                           "request named no loaded model).")
                     .Register(*registry)),
      request_duration_(&BuildHistogram()
                             .Name("lstmserve_request_duration_seconds")
                             .Help("Time from the RPC's arrival to its end.")
                             .Register(*registry)),
      time_to_first_token_(&BuildHistogram()
                                .Name("lstmserve_time_to_first_token_seconds")
                                .Help("Generate: arrival to the first generated token.")
                                .Register(*registry)),
      inter_token_(&BuildHistogram()
                        .Name("lstmserve_inter_token_latency_seconds")
                        .Help("Generate: time between consecutive tokens of one stream.")
                        .Register(*registry)),
      queue_wait_(&BuildHistogram()
                       .Name("lstmserve_queue_wait_seconds")
                       .Help("Generate: arrival to admission into the batch.")
                       .Register(*registry)),
      step_duration_(&BuildHistogram()
                          .Name("lstmserve_engine_step_duration_seconds")
                          .Help("One batched engine Step (one token for every active sequence).")
                          .Register(*registry)),
      prefill_duration_(&BuildHistogram()
                             .Name("lstmserve_prefill_duration_seconds")
                             .Help("One batched engine Prefill (prompts, Score and Embed inputs).")
                             .Register(*registry)),
      prompt_length_(&BuildHistogram()
                          .Name("lstmserve_prompt_length_tokens")
                          .Help("Generate: prompt length of each admitted generation.")
                          .Register(*registry)),
      generated_length_(&BuildHistogram()
                             .Name("lstmserve_generated_length_tokens")
                             .Help("Generate: tokens generated by each finished generation.")
                             .Register(*registry)),
      batch_size_(&BuildHistogram()
                       .Name("lstmserve_batch_size")
                       .Help("Sequences advanced by each engine Step.")
                       .Register(*registry)),
      prompt_tokens_(&BuildCounter()
                          .Name("lstmserve_prompt_tokens_total")
                          .Help("Generate: prompt tokens of admitted generations.")
                          .Register(*registry)),
      generated_tokens_(&BuildCounter()
                             .Name("lstmserve_generated_tokens_total")
                             .Help("Generated tokens, counted as each is sampled.")
                             .Register(*registry)),
      finished_(&BuildCounter()
                     .Name("lstmserve_generations_finished_total")
                     .Help("Finished generations by finish_reason (error: the engine failed).")
                     .Register(*registry)),
      rejections_(&BuildCounter()
                       .Name("lstmserve_queue_rejections_total")
                       .Help("Requests refused with RESOURCE_EXHAUSTED because the queue was "
                             "full.")
                       .Register(*registry)),
      cancellations_(&BuildCounter()
                          .Name("lstmserve_cancellations_total")
                          .Help("Generations ended because the client cancelled or went away.")
                          .Register(*registry)),
      deadline_expiries_(&BuildCounter()
                              .Name("lstmserve_deadline_expiries_total")
                              .Help("Generations ended because their deadline passed.")
                              .Register(*registry)),
      iterations_(&BuildCounter()
                       .Name("lstmserve_scheduler_iterations_total")
                       .Help("Scheduler loop iterations (at least 10/s even when idle: a "
                             "stalled loop stops counting).")
                       .Register(*registry)),
      active_(&BuildGauge()
                   .Name("lstmserve_active_sequences")
                   .Help("Generations in the batch (running or paused).")
                   .Register(*registry)),
      queued_(&BuildGauge()
                   .Name("lstmserve_queued_requests")
                   .Help("Requests waiting to be admitted.")
                   .Register(*registry)),
      queue_capacity_(&BuildGauge()
                           .Name("lstmserve_queue_capacity")
                           .Help("Most requests that may wait (--max-queue).")
                           .Register(*registry)),
      batch_capacity_(&BuildGauge()
                           .Name("lstmserve_batch_capacity")
                           .Help("Most sequences one Step advances (--max-batch, clamped).")
                           .Register(*registry)),
      model_info_(&BuildGauge()
                       .Name("lstmserve_model_info")
                       .Help("A loaded model (value 1); its shape and precision as labels.")
                       .Register(*registry)),
      prefix_cache_query_tokens_(
          &BuildCounter()
               .Name("lstmserve_prefix_cache_query_tokens_total")
               .Help("Tokens of the requests (prompts, Score and Embed inputs) looked up in "
                     "the prefix-state cache.")
               .Register(*registry)),
      prefix_cache_hit_tokens_(
          &BuildCounter()
               .Name("lstmserve_prefix_cache_hit_tokens_total")
               .Help("Of those, tokens whose state came from the cache (not recomputed).")
               .Register(*registry)),
      prefix_cache_bytes_(&BuildGauge()
                               .Name("lstmserve_prefix_cache_bytes")
                               .Help("Memory held by the prefix-state cache (states, tokens "
                                     "and bookkeeping); at most --prefix-cache-bytes.")
                               .Register(*registry)),
      request_log_dropped_(&BuildCounter()
                                .Name("lstmserve_request_log_dropped_total")
                                .Help("Request log lines dropped because the log's queue was "
                                      "full (the writer could not keep up).")
                                .Register(*registry)
                                .Add({})) {}

ServerMetrics::~ServerMetrics() = default;

absl::StatusOr<std::unique_ptr<ServerMetrics>> ServerMetrics::Create(
    prometheus::Registry* registry) {
  try {
    std::unique_ptr<ServerMetrics> m(new ServerMetrics(registry));
    m->by_model_[""] = m->MakeRequestSeries("");
    return m;
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("cannot register metrics: ", e.what()));
  }
}

ServerMetrics::ModelSeries ServerMetrics::MakeRequestSeries(const std::string& model) {
  ModelSeries series;
  for (const char* rpc : kRpcs) {
    RpcSeries& s = series.rpcs[rpc];
    for (int code = 0; code < kNumCodes; ++code) {
      s.by_code.push_back(&requests_->Add(
          {{"model", model},
           {"rpc", rpc},
           {"code", absl::StatusCodeToString(static_cast<absl::StatusCode>(code))}}));
    }
    s.duration = &request_duration_->Add({{"model", model}, {"rpc", rpc}}, SecondsBuckets());
  }
  return series;
}

SchedulerObserver* ServerMetrics::AddModel(const v1::ModelInfo& model, int max_queue) {
  const prometheus::Labels labels = {{"model", model.name()}};
  model_info_
      ->Add({{"model", model.name()},
             {"layers", std::to_string(model.num_layers())},
             {"hidden_size", std::to_string(model.hidden_size())},
             {"vocab_size", std::to_string(model.vocab_size())},
             {"precision", model.precision()},
             {"engine", model.engine()}})
      .Set(1);
  queue_capacity_->Add(labels).Set(max_queue);
  batch_capacity_->Add(labels).Set(model.max_batch());
  by_model_[model.name()] = MakeRequestSeries(model.name());
  observers_.push_back(std::make_unique<ModelObserver>(this, labels));
  return observers_.back().get();
}

void ServerMetrics::OnRequestDone(const RequestRecord& record) {
  auto model = by_model_.find(record.model);
  if (model == by_model_.end()) model = by_model_.find("");
  auto rpc = model->second.rpcs.find(record.rpc);
  if (rpc == model->second.rpcs.end()) return;
  const int code = static_cast<int>(record.code);
  rpc->second.by_code[(code >= 0 && code < kNumCodes) ? code : 2]->Increment();
  rpc->second.duration->Observe(Seconds(record.duration));
}

}  // namespace lstmserve
