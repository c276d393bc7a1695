// LivenessWatchdog: reports, through the standard health service under
// kLivenessService, whether every model's scheduling loop is still making
// progress — so an orchestrator's liveness probe restarts a replica whose
// engine is wedged (a step that never returns), not merely one whose
// process died.
//
// A thread wakes every `period` and compares each model version's scheduler's
// last_progress() with now: older than `stall_timeout` for any model →
// NOT_SERVING (and a line on stderr naming the model); otherwise SERVING.
// The loop iterates at least every 100 ms even when idle, so a healthy idle
// server stays SERVING. Draining does not change liveness (readiness, under
// "" and the service name, does that).
//
// Thread-safe. Borrows the registry and the health service, which must
// outlive the watchdog (it joins its thread in the destructor / Stop).
#ifndef LSTMSERVE_SERVER_LIVENESS_H_
#define LSTMSERVE_SERVER_LIVENESS_H_

#include <memory>
#include <string>
#include <thread>

#include <grpcpp/health_check_service_interface.h>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/model_registry.h"

namespace lstmserve {

inline constexpr char kLivenessService[] = "lstmserve.v1.Liveness";

class LivenessWatchdog {
 public:
  // Sets kLivenessService SERVING and starts checking.
  static std::unique_ptr<LivenessWatchdog> Start(const ModelRegistry* registry,
                                                 grpc::HealthCheckServiceInterface* health,
                                                 absl::Duration stall_timeout,
                                                 absl::Duration period);
  ~LivenessWatchdog() { Stop(); }
  // Joins the thread; the status stays as last set. Idempotent.
  void Stop();

  // The model version ("NAME/VERSION") whose loop stalled longest beyond the
  // timeout at `now`, or "" when every loop is live.
  static std::string Stalled(const ModelRegistry& registry, absl::Duration stall_timeout,
                             absl::Time now);

 private:
  LivenessWatchdog(const ModelRegistry* registry, grpc::HealthCheckServiceInterface* health,
                   absl::Duration stall_timeout, absl::Duration period);
  void Loop();

  const ModelRegistry* const registry_;
  grpc::HealthCheckServiceInterface* const health_;
  const absl::Duration stall_timeout_;
  const absl::Duration period_;
  absl::Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;  // last
};

}  // namespace lstmserve

#endif  // LSTMSERVE_SERVER_LIVENESS_H_
