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
  order_.resize(vocab_size);
  std::iota(order_.begin(), order_.end(), 0);
  // Highest first; ties broken by id so the order is deterministic.
  auto by_prob = [&](int32_t a, int32_t b) {
    return logprobs[a] > logprobs[b] || (logprobs[a] == logprobs[b] && a < b);
  };
  int keep = vocab_size;
  if (params_.top_k > 0 && params_.top_k < vocab_size) {
    keep = params_.top_k;
    std::partial_sort(order_.begin(), order_.begin() + keep, order_.end(), by_prob);
  } else {
    std::sort(order_.begin(), order_.end(), by_prob);
  }
  // Tempered probabilities relative to the best candidate.
  weights_.resize(keep);
  const double inv_t = 1.0 / params_.temperature;
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
