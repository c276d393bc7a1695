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
  // Samples among order_[0, keep), sorted most likely first (top-k).
  int32_t SampleSorted(const float* logprobs, int keep, double inv_t);
  // Candidates sorted per block while walking without top-k.
  static constexpr int kSortBlock = 64;
  SamplingParams params_;
  uint64_t s_[4];
  std::vector<int32_t> order_;   // scratch: candidate ids
  std::vector<double> weights_;  // scratch: tempered weights (by rank for top-k, else by id)
};

}  // namespace lstmserve

#endif  // LSTMSERVE_MODELS_SAMPLER_H_
