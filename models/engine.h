// InferenceEngine: the seam between the server and the math. Two
// implementations: ReferenceEngine (Eigen, f32, the oracle) and OneDnnEngine
// (packed weights, batched, f32/bf16/int8). Built by CreateEngine
// (models/engine_factory.h).
//
// Thread-safety: an engine is NOT thread-safe; one thread (a model's
// scheduling loop) calls it. Different engines may run on different threads.
// Engines own their weights; SequenceState objects are owned by the caller and
// only borrowed for the duration of a call.
#ifndef LSTMSERVE_MODELS_ENGINE_H_
#define LSTMSERVE_MODELS_ENGINE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "models/lstm_state.h"
#include "models/model_config.h"

namespace lstmserve {

enum class Precision { kF32, kBF16, kInt8 };
const char* PrecisionName(Precision p);  // "f32", "bf16", "int8"
bool ParsePrecision(const std::string& name, Precision* out);

struct EngineOptions {
  // Numeric precision of the LSTM and head. The reference engine is f32 only.
  Precision precision = Precision::kF32;
  // Compute threads; 0 = all cores.
  int threads = 0;
  // Largest N accepted by Step and Prefill (number of sequences per call).
  int max_batch = 256;
};

// One prompt for Prefill.
struct PrefillItem {
  absl::Span<const int32_t> tokens;  // T >= 1 ids, each in [0, V)
  SequenceState* state = nullptr;    // in: the start state; out: after tokens[T-1]
  float* last_logprobs = nullptr;    // [V] log-probs after tokens[T-1], or null
  float* all_logprobs = nullptr;     // [T, V] log-probs after each token, or null
  // [T-1] or null: next_token_logprobs[t] = log P(tokens[t+1] | tokens[0..t]),
  // what Score needs. The engine computes the head over bounded blocks of
  // rows and keeps one value per row, so memory stays O(T + V) where
  // all_logprobs needs a [T, V] matrix (0.5 GB for 4,096 tokens of a 32k
  // vocabulary).
  float* next_token_logprobs = nullptr;
};

class InferenceEngine {
 public:
  virtual ~InferenceEngine() = default;

  virtual const ModelConfig& config() const = 0;
  virtual Precision precision() const = 0;
  virtual int max_batch() const = 0;
  // "reference" or "onednn".
  virtual const char* kind() const = 0;

  // Advances N = tokens.size() sequences by one token each: feeds tokens[n]
  // to states[n] (updated in place) and writes the next-token log-probs to
  // logprobs[n*V .. n*V+V). 1 <= N <= max_batch(); states must have the
  // model's shape. INVALID_ARGUMENT on bad sizes or ids; nothing is modified
  // then.
  virtual absl::Status Step(absl::Span<const int32_t> tokens,
                            absl::Span<SequenceState* const> states, float* logprobs) = 0;

  // Runs whole prompts (T >= 1 each) from their states, as T Steps would
  // (the results equal those of Steps within the engine's tolerance).
  // 1 <= items.size() <= max_batch().
  virtual absl::Status Prefill(absl::Span<const PrefillItem> items) = 0;

  // Compute threads for the Steps and Prefills that follow (0: all cores).
  // Call it from the thread that calls Step/Prefill, between calls (the
  // server's thread split changes it when models come and go). Engines
  // without a thread team of their own ignore it (the default).
  virtual void SetThreads(int /*threads*/) {}
};

// Validates Step/Prefill arguments against `config` and `max_batch`; shared
// by the implementations so they reject the same inputs the same way.
absl::Status ValidateStepArgs(const ModelConfig& config, int max_batch,
                              absl::Span<const int32_t> tokens,
                              absl::Span<SequenceState* const> states, const float* logprobs);
absl::Status ValidatePrefillArgs(const ModelConfig& config, int max_batch,
                                 absl::Span<const PrefillItem> items);

// In-place log-softmax of each row of a row-major [rows, cols] matrix.
void LogSoftmaxRows(float* data, int64_t rows, int64_t cols);

}  // namespace lstmserve

#endif  // LSTMSERVE_MODELS_ENGINE_H_
