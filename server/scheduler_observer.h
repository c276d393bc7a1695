// SchedulerObserver: the seam through which a scheduler reports what it does
// (for metrics and request logs). The default implementation ignores
// everything. Called on the scheduler's thread; implementations must be
// cheap and must not block or call back into the scheduler.
#ifndef LSTMSERVE_SERVER_SCHEDULER_OBSERVER_H_
#define LSTMSERVE_SERVER_SCHEDULER_OBSERVER_H_

#include "absl/time/time.h"

namespace lstmserve {

class SchedulerObserver {
 public:
  virtual ~SchedulerObserver() = default;
  // One batched Prefill of `items` prompts totalling `tokens` tokens.
  virtual void OnPrefill(int /*items*/, int /*tokens*/, absl::Duration /*duration*/) {}
  // One batched Step advancing `batch` sequences.
  virtual void OnStep(int /*batch*/, absl::Duration /*duration*/) {}
  // A request was rejected because the queue was full.
  virtual void OnRejected() {}
  // The queue and the batch after an iteration.
  virtual void OnLoad(int /*queued*/, int /*active*/) {}
};

}  // namespace lstmserve

#endif  // LSTMSERVE_SERVER_SCHEDULER_OBSERVER_H_
