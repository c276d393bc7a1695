// SharedComputeEngine: an InferenceEngine that runs another one's Step and
// Prefill while holding a lock shared with other engines -- the versions of
// one model. Each version has its own scheduler thread and its own engine,
// built with the model's whole thread budget; during a swap the old version
// finishes its sequences while the new one serves, and without the lock
// both OpenMP teams would run at once (twice the model's threads, on
// cores another model may be using). With it, the versions of one model
// take turns step by step and together never use more than its budget.
//
// The budget also carries the model's share of the cores: when models come
// and go, the repository sets `threads` (ThreadsPerModel over the models
// served now) and each version applies it to its engine before its next
// Step or Prefill, so models loaded earlier shrink their OpenMP teams
// instead of oversubscribing the cores with the ones loaded later.
//
// Thread-safe as far as the wrapped engine is (a scheduler calls it from
// one thread). Owns the wrapped engine; the lock is shared (shared_ptr) by
// every version of the model, so it lives as long as the last of them.
#ifndef LSTMSERVE_SERVER_SHARED_ENGINE_H_
#define LSTMSERVE_SERVER_SHARED_ENGINE_H_

#include <atomic>
#include <memory>
#include <utility>

#include "absl/synchronization/mutex.h"
#include "models/engine.h"

namespace lstmserve {

// The compute lock of one model (one per model name, shared by its versions)
// and its compute threads: -1 = as the engines were built, else what
// InferenceEngine::SetThreads takes (0 = all cores).
struct ComputeBudget {
  absl::Mutex mu;
  std::atomic<int> threads{-1};
};

class SharedComputeEngine final : public InferenceEngine {
 public:
  SharedComputeEngine(std::unique_ptr<InferenceEngine> engine,
                      std::shared_ptr<ComputeBudget> budget)
      : engine_(std::move(engine)), budget_(std::move(budget)) {}

  const ModelConfig& config() const override { return engine_->config(); }
  Precision precision() const override { return engine_->precision(); }
  int max_batch() const override { return engine_->max_batch(); }
  const char* kind() const override { return engine_->kind(); }

  absl::Status Step(absl::Span<const int32_t> tokens, absl::Span<SequenceState* const> states,
                    float* logprobs) override {
    absl::MutexLock lock(&budget_->mu);
    ApplyThreads();
    return engine_->Step(tokens, states, logprobs);
  }
  absl::Status Prefill(absl::Span<const PrefillItem> items) override {
    absl::MutexLock lock(&budget_->mu);
    ApplyThreads();
    return engine_->Prefill(items);
  }
  // The budget decides; a direct call is overridden by the next change of
  // the budget's threads.
  void SetThreads(int threads) override { engine_->SetThreads(threads); }

  const InferenceEngine& wrapped() const { return *engine_; }

 private:
  void ApplyThreads() {
    const int threads = budget_->threads.load(std::memory_order_relaxed);
    if (threads >= 0 && threads != applied_threads_) {
      engine_->SetThreads(threads);
      applied_threads_ = threads;
    }
  }

  const std::unique_ptr<InferenceEngine> engine_;
  const std::shared_ptr<ComputeBudget> budget_;
  int applied_threads_ = -1;  // the Step/Prefill caller's thread only
};

}  // namespace lstmserve

#endif  // LSTMSERVE_SERVER_SHARED_ENGINE_H_
