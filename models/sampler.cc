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

int32_t Sampler::Sample(const float* logprobs, int vocab_size) {
  if (params_.temperature <= 0.0f) {
    return static_cast<int32_t>(std::max_element(logprobs, logprobs + vocab_size) - logprobs);
  }
  // Candidates are walked from the most likely down (ties broken by id, so
  // the order is deterministic). Only the prefix the walk reaches is sorted:
  // top-k selects its k with nth_element and sorts those; without top-k the
  // order is sorted block by block as the walk (or the top-p mass) needs it,
  // so a 32k vocabulary costs O(V) per step instead of a full sort.
  auto by_prob = [&](int32_t a, int32_t b) {
    return logprobs[a] > logprobs[b] || (logprobs[a] == logprobs[b] && a < b);
  };
  order_.resize(vocab_size);
  std::iota(order_.begin(), order_.end(), 0);
  const double inv_t = 1.0 / params_.temperature;
  if (params_.top_k > 0 && params_.top_k < vocab_size) {
    const int keep = params_.top_k;
    std::nth_element(order_.begin(), order_.begin() + (keep - 1), order_.end(), by_prob);
    std::sort(order_.begin(), order_.begin() + keep, by_prob);
    return SampleSorted(logprobs, keep, inv_t);
  }
  // Tempered probabilities relative to the best candidate, by id.
  const double top = *std::max_element(logprobs, logprobs + vocab_size);
  weights_.resize(vocab_size);
  double total = 0.0;
  for (int i = 0; i < vocab_size; ++i) {
    weights_[i] = std::exp((logprobs[i] - top) * inv_t);
    total += weights_[i];
  }
  int sorted = 0;  // order_[0, sorted) is sorted and precedes every later entry
  auto candidate = [&](int i) {
    if (i >= sorted) {
      const int end = std::min(vocab_size, std::max(2 * sorted, sorted + kSortBlock));
      if (end < vocab_size) {
        std::nth_element(order_.begin() + sorted, order_.begin() + (end - 1), order_.end(),
                         by_prob);
      }
      std::sort(order_.begin() + sorted, order_.begin() + end, by_prob);
      sorted = end;
    }
    return order_[i];
  };
  int keep = vocab_size;
  if (params_.top_p < 1.0f) {
    // Smallest prefix whose (tempered) mass reaches top_p.
    double mass = 0.0;
    int n = 0;
    while (n < vocab_size) {
      mass += weights_[candidate(n++)];
      if (mass >= params_.top_p * total) break;
    }
    keep = n;
    total = mass;
  }
  double r = NextUniform() * total;
  for (int i = 0; i < keep; ++i) {
    const int32_t id = candidate(i);
    r -= weights_[id];
    if (r < 0.0) return id;
  }
  return candidate(keep - 1);
}

int32_t Sampler::SampleSorted(const float* logprobs, int keep, double inv_t) {
  // Tempered probabilities relative to the best candidate, in order_.
  weights_.resize(keep);
  const double top = logprobs[order_[0]];
  double total = 0.0;
  for (int i = 0; i < keep; ++i) {
    weights_[i] = std::exp((logprobs[order_[i]] - top) * inv_t);
    total += weights_[i];
  }
  if (params_.top_p < 1.0f) {
    // Smallest prefix whose (tempered) mass reaches top_p.
    double mass = 0.0;
    int n = 0;
    while (n < keep) {
      mass += weights_[n++];
      if (mass >= params_.top_p * total) break;
    }
    keep = n;
    total = mass;
  }
  double r = NextUniform() * total;
  for (int i = 0; i < keep; ++i) {
    r -= weights_[i];
    if (r < 0.0) return order_[i];
  }
  return order_[keep - 1];
}

}  // namespace lstmserve
