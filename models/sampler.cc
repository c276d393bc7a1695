#include "models/sampler.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace lstmserve {
namespace {

uint64_t SplitMix64(uint64_t* x) {
  uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

uint64_t Rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

}  // namespace

Sampler::Sampler(const SamplingParams& params) : params_(params) {
  uint64_t x = params.seed;
  for (uint64_t& s : s_) s = SplitMix64(&x);
}

uint64_t Sampler::NextU64() {
  const uint64_t result = Rotl(s_[1] * 5, 7) * 9;
  const uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = Rotl(s_[3], 45);
  return result;
}

double Sampler::NextUniform() { return (NextU64() >> 11) * 0x1.0p-53; }

namespace {

// Candidates from the most likely down; ties by id, so the order is total
// and every pick deterministic.
struct ByProb {
  const float* logprobs;
  bool operator()(int32_t a, int32_t b) const {
    return logprobs[a] > logprobs[b] || (logprobs[a] == logprobs[b] && a < b);
  }
};

}  // namespace

int Sampler::SelectPrefix(const float* logprobs, int end, double target, bool strict,
                          double* mass) {
  const ByProb by_prob{logprobs};
  auto reached = [&](double cumulative) {
    return strict ? cumulative > target : cumulative >= target;
  };
  // Invariant: order_[0, lo) are the lo most likely (mass `before`) and the
  // answer is in (lo, hi].
  int lo = 0, hi = end;
  double before = 0.0;
  // First narrow by value: kBuckets ranges of log-prob, most likely first,
  // in one pass; the answer's range is then moved between the ones above
  // and below it. Equal log-probs share a range, so ranks never straddle
  // two. A row whose candidates are all equal skips this.
  float top = logprobs[order_[0]], bottom = top;
  for (int i = 1; i < end; ++i) {
    top = std::max(top, logprobs[order_[i]]);
    bottom = std::min(bottom, logprobs[order_[i]]);
  }
  if (end > kSortBlock && top > bottom) {
    const double scale = kBuckets / (static_cast<double>(top) - bottom);
    auto bucket = [&](int32_t id) {
      return std::min(kBuckets - 1, static_cast<int>((logprobs[id] - bottom) * scale));
    };
    bucket_mass_.assign(kBuckets, 0.0);
    bucket_count_.assign(kBuckets, 0);
    for (int i = 0; i < end; ++i) {
      const int b = bucket(order_[i]);
      bucket_mass_[b] += weights_[order_[i]];
      ++bucket_count_[b];
    }
    int chosen = -1, above = 0;
    double mass_above = 0.0;
    for (int b = kBuckets - 1; b >= 0; --b) {
      if (bucket_count_[b] == 0) continue;
      chosen = b;
      if (reached(mass_above + bucket_mass_[b])) break;
      if (above + bucket_count_[b] == end) break;  // never reached: the last range
      mass_above += bucket_mass_[b];
      above += bucket_count_[b];
    }
    auto first = std::partition(order_.begin(), order_.begin() + end,
                                [&](int32_t id) { return bucket(id) > chosen; });
    std::partition(first, order_.begin() + end, [&](int32_t id) { return bucket(id) == chosen; });
    lo = above;
    hi = above + bucket_count_[chosen];
    before = mass_above;
  }
  while (hi - lo > kSortBlock) {
    const int mid = lo + (hi - lo) / 2;
    std::nth_element(order_.begin() + lo, order_.begin() + mid, order_.begin() + hi, by_prob);
    double m = 0.0;
    for (int i = lo; i <= mid; ++i) m += weights_[order_[i]];
    if (reached(before + m)) {
      hi = mid + 1;
    } else {
      before += m;
      lo = mid + 1;
    }
  }
  std::sort(order_.begin() + lo, order_.begin() + hi, by_prob);
  for (int i = lo; i < hi; ++i) {
    before += weights_[order_[i]];
    if (reached(before)) {
      *mass = before;
      return i + 1;
    }
  }
  *mass = before;
  return hi;
}

int32_t Sampler::Sample(const float* logprobs, int vocab_size) {
  if (params_.temperature <= 0.0f) {
    return static_cast<int32_t>(std::max_element(logprobs, logprobs + vocab_size) - logprobs);
  }
  // The pick is the one a walk over the candidates sorted most likely first
  // would make (tests/models/sampler_test.cc checks it against that full
  // sort), found by selection instead of sorting: O(V) per token even when
  // the row is flat (an untrained or high-temperature 32k vocabulary made a
  // sorted walk visit most of it).
  order_.resize(vocab_size);
  std::iota(order_.begin(), order_.end(), 0);
  int end = vocab_size;
  if (params_.top_k > 0 && params_.top_k < vocab_size) {
    end = params_.top_k;
    std::nth_element(order_.begin(), order_.begin() + (end - 1), order_.end(),
                     ByProb{logprobs});
  }
  // Tempered weights relative to the best candidate, by id.
  const double inv_t = 1.0 / params_.temperature;
  const double top = *std::max_element(logprobs, logprobs + vocab_size);
  weights_.resize(vocab_size);
  double total = 0.0;
  for (int i = 0; i < end; ++i) {
    const int32_t id = order_[i];
    weights_[id] = std::exp((logprobs[id] - top) * inv_t);
    total += weights_[id];
  }
  if (params_.top_p < 1.0f) {
    // The smallest prefix whose mass reaches top_p of the candidates'.
    end = SelectPrefix(logprobs, end, params_.top_p * total, /*strict=*/false, &total);
  }
  // The first candidate (in order) at which the running mass passes r.
  double ignored;
  const double r = NextUniform() * total;
  return order_[SelectPrefix(logprobs, end, r, /*strict=*/true, &ignored) - 1];
}

}  // namespace lstmserve
