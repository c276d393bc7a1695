// VersionObserver: the seam through which the model repository reports the
// lifecycle of model versions (for metrics; see server/metrics.h). Called
// from the repository's thread (and from LanguageModelServer::Start for the
// fixed models); implementations must be thread-safe and must not call back
// into the registry or the repository.
#ifndef LSTMSERVE_SERVER_VERSION_OBSERVER_H_
#define LSTMSERVE_SERVER_VERSION_OBSERVER_H_

#include <string>

#include "lstmserve/v1/lstmserve.pb.h"
#include "server/scheduler_observer.h"

namespace lstmserve {

class VersionObserver {
 public:
  virtual ~VersionObserver() = default;
  // A version's scheduler is being created. Returns the observer for it
  // (owned by this, valid until after OnVersionUnloaded; may be null).
  virtual SchedulerObserver* OnVersionLoaded(const v1::ModelInfo& info) = 0;
  // That version was destroyed (its scheduler no longer runs).
  virtual void OnVersionUnloaded(const v1::ModelInfo& info) = 0;
  // A version of `model` was refused (the log line says why).
  virtual void OnLoadFailure(const std::string& model) = 0;
};

}  // namespace lstmserve

#endif  // LSTMSERVE_SERVER_VERSION_OBSERVER_H_
