// LatencyStats: collects samples (seconds) and reports percentiles, for
// lstmbench. Thread-compatible (lstmbench merges per-thread copies).
#ifndef LSTMSERVE_CLIENT_LATENCY_STATS_H_
#define LSTMSERVE_CLIENT_LATENCY_STATS_H_

#include <cstddef>
#include <vector>

namespace lstmserve {

class LatencyStats {
 public:
  void Add(double seconds) { samples_.push_back(seconds); }
  void Merge(const LatencyStats& other);
  size_t count() const { return samples_.size(); }
  // The p-th percentile (p in [0, 100]) by nearest rank; 0 when empty.
  double Percentile(double p) const;
  double Mean() const;

 private:
  mutable std::vector<double> samples_;
  mutable bool sorted_ = false;
};

}  // namespace lstmserve

#endif  // LSTMSERVE_CLIENT_LATENCY_STATS_H_
