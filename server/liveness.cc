#include "server/liveness.h"

#include <iostream>

namespace lstmserve {

std::unique_ptr<LivenessWatchdog> LivenessWatchdog::Start(
    const ModelRegistry* registry, grpc::HealthCheckServiceInterface* health,
    absl::Duration stall_timeout, absl::Duration period) {
  return std::unique_ptr<LivenessWatchdog>(
      new LivenessWatchdog(registry, health, stall_timeout, period));
}

LivenessWatchdog::LivenessWatchdog(const ModelRegistry* registry,
                                   grpc::HealthCheckServiceInterface* health,
                                   absl::Duration stall_timeout, absl::Duration period)
    : registry_(registry), health_(health), stall_timeout_(stall_timeout), period_(period) {
  health_->SetServingStatus(kLivenessService, true);
  thread_ = std::thread([this] { Loop(); });
}

void LivenessWatchdog::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

std::string LivenessWatchdog::Stalled(const ModelRegistry& registry,
                                      absl::Duration stall_timeout, absl::Time now) {
  std::string worst;
  absl::Duration worst_age = stall_timeout;
  for (const ModelHandle& version : registry.AllVersions()) {
    const absl::Duration age = now - version->scheduler()->last_progress();
    if (age > worst_age) {
      worst_age = age;
      worst = version->identity();
    }
  }
  return worst;
}

void LivenessWatchdog::Loop() {
  bool live = true;
  absl::MutexLock lock(&mu_);
  while (!mu_.AwaitWithTimeout(absl::Condition(&stop_), period_)) {
    const std::string stalled = Stalled(*registry_, stall_timeout_, absl::Now());
    const bool now_live = stalled.empty();
    if (now_live == live) continue;
    live = now_live;
    if (!live) {
      std::cerr << "lstmserve: liveness: model '" << stalled
                << "' made no progress for more than " << absl::FormatDuration(stall_timeout_)
                << "; reporting NOT_SERVING for " << kLivenessService << "\n";
    } else {
      std::cerr << "lstmserve: liveness: every model is making progress again\n";
    }
    health_->SetServingStatus(kLivenessService, live);
  }
}

}  // namespace lstmserve
