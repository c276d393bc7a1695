// SchedulerObserver: the seam through which one model's scheduler reports
// what it does (for metrics; see server/metrics.h). The default
// implementation ignores everything. Every call but OnRejected comes from
// that model's scheduler thread (OnRejected: from the submitting thread,
// under the scheduler's lock); implementations must be cheap (counter/histogram
// updates), must not block or do I/O, and must not call back into the
// scheduler. One observer per model (ModelRegistry asks for it by model).
#ifndef LSTMSERVE_SERVER_SCHEDULER_OBSERVER_H_
#define LSTMSERVE_SERVER_SCHEDULER_OBSERVER_H_

#include <cstdint>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "lstmserve/v1/lstmserve.pb.h"

namespace lstmserve {

class SchedulerObserver {
 public:
  virtual ~SchedulerObserver() = default;

  // Engine-level events.
  // One batched Prefill of `items` prompts totalling `tokens` tokens.
  virtual void OnPrefill(int /*items*/, int /*tokens*/, absl::Duration /*duration*/) {}
  // One batched Step advancing `batch` sequences.
  virtual void OnStep(int /*batch*/, absl::Duration /*duration*/) {}
  // A request was rejected because the queue was full.
  virtual void OnRejected() {}
  // The queue and the batch after each loop iteration. Also a heartbeat: an
  // idle loop still iterates (at least every 100 ms), so a stalled engine
  // shows as iterations that stop.
  virtual void OnLoad(int /*queued*/, int /*active*/) {}
  // The prefix-state cache (server/prefix_cache.h) was asked for a request
  // of `query_tokens` tokens and spared `hit_tokens` of them.
  virtual void OnPrefixCacheLookup(int /*query_tokens*/, int /*hit_tokens*/) {}
  // The cache holds `bytes` bytes now (after a store or eviction).
  virtual void OnPrefixCacheBytes(int64_t /*bytes*/) {}

  // Per-generation events (the server's warm-up generation included).
  // A generation left the queue and joined the batch after `queue_wait`.
  virtual void OnAdmitted(int /*prompt_tokens*/, absl::Duration /*queue_wait*/) {}
  // Its first generated token, `time_to_first_token` after arrival.
  virtual void OnFirstToken(absl::Duration /*time_to_first_token*/) {}
  // Each later token, `since_previous` after the one before.
  virtual void OnToken(absl::Duration /*since_previous*/) {}
  // It ended (exactly once per generation, queued ones included) with
  // `reason`, `code` and `generated_tokens` tokens.
  virtual void OnFinished(v1::FinishReason /*reason*/, absl::StatusCode /*code*/,
                          int /*generated_tokens*/) {}
};

}  // namespace lstmserve

#endif  // LSTMSERVE_SERVER_SCHEDULER_OBSERVER_H_
