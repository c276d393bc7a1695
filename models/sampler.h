// Sampler: picks the next token from a row of log-probs with temperature,
// top-k and top-p (nucleus) filtering, driven by a private random stream that
// depends only on the seed (so a seeded request is reproducible whatever else
// runs). One Sampler per sequence; thread-compatible.
#ifndef LSTMSERVE_MODELS_SAMPLER_H_
#define LSTMSERVE_MODELS_SAMPLER_H_

#include <cstdint>
#include <vector>

namespace lstmserve {

struct SamplingParams {
  float temperature = 1.0f;  // 0 = greedy argmax
  int top_k = 0;             // 0 = off
  float top_p = 1.0f;        // 1 = off; (0, 1]
  uint64_t seed = 0;
};

class Sampler {
 public:
  explicit Sampler(const SamplingParams& params);

  // Returns a token id in [0, V). `logprobs` is a normalized log-prob row.
  int32_t Sample(const float* logprobs, int vocab_size);

  // A uniform double in [0, 1) from the stream (exposed for tests).
  double NextUniform();

 private:
  uint64_t NextU64();  // xoshiro256** (portable: same sequence everywhere)
  // The smallest n such that the tempered mass of the n most likely
  // candidates among order_[0, end) reaches `target` (> when `strict`, else
  // >=), or `end` if none does; rearranges order_[0, end) so that order_[0,
  // n) holds those n and order_[n-1] is the n-th most likely. `mass` gets
  // their mass. O(end): one pass buckets the candidates by log-prob, then
  // quickselect halves the answer's bucket and sorts a last small range;
  // never a full sort, even when the row is flat.
  int SelectPrefix(const float* logprobs, int end, double target, bool strict, double* mass);
  // Ranges of at most this many candidates are sorted and walked.
  static constexpr int kSortBlock = 64;
  // Log-prob ranges of SelectPrefix's first, by-value pass.
  static constexpr int kBuckets = 1024;
  std::vector<double> bucket_mass_;  // scratch
  std::vector<int> bucket_count_;    // scratch
  SamplingParams params_;
  uint64_t s_[4];
  std::vector<int32_t> order_;   // scratch: candidate ids
  std::vector<double> weights_;  // scratch: tempered weights, by id
};

}  // namespace lstmserve

#endif  // LSTMSERVE_MODELS_SAMPLER_H_
