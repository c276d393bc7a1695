// ProcessMetrics: the process's own resource use, read from /proc at scrape
// time (prometheus-cpp has no process collector). Exposes the conventional
// names every Prometheus client library uses, so stock dashboards work:
//   process_resident_memory_bytes, process_virtual_memory_bytes,
//   process_cpu_seconds_total, process_start_time_seconds,
//   process_open_fds.
// Thread-safe: Collect only reads /proc and immutable members.
#ifndef LSTMSERVE_SERVER_PROCESS_METRICS_H_
#define LSTMSERVE_SERVER_PROCESS_METRICS_H_

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include <vector>

namespace lstmserve {

class ProcessMetrics final : public prometheus::Collectable {
 public:
  ProcessMetrics();
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  double start_time_seconds_;  // Unix time the process started (0 if unknown)
};

}  // namespace lstmserve

#endif  // LSTMSERVE_SERVER_PROCESS_METRICS_H_
