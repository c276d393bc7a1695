// Test helper: a tiny deterministic InferenceEngine for driving
// ModelScheduler directly (tests/server/scheduler_test.cc), whose calls can
// be slowed down, wedged (blocked until released) or made to fail, and which
// records every call it gets.
//
// The model: vocabulary 'a'..'z' (V = 26); the state holds, in layer 0,
// h[0] = tokens consumed and h[1] = the last token. The next token after
// token t is (t + 1) mod V with log-prob kLikely; every other token has
// kUnlikely. Greedy generation after a prompt ending in 'c' is "defg...".
//
// Thread-safety: the engine calls run on the scheduler thread; the Controls
// are thread-safe and shared with the test.
#ifndef LSTMSERVE_TESTS_SERVER_FAKE_ENGINE_H_
#define LSTMSERVE_TESTS_SERVER_FAKE_ENGINE_H_

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "models/engine.h"
#include "models/tokenizer.h"

namespace lstmserve::testing {

class FakeEngine final : public InferenceEngine {
 public:
  static constexpr int kVocab = 26;
  static constexpr float kLikely = -0.01f;
  static constexpr float kUnlikely = -8.0f;

  enum class Call { kStep, kPrefill };
  // One engine call as the engine saw it.
  struct CallRecord {
    Call call;
    std::vector<int> lengths;  // per sequence: 1 for Step, its chunk for Prefill
  };

  struct Controls {
    absl::Mutex mu;
    absl::Duration delay ABSL_GUARDED_BY(mu);  // added to every call
    bool wedge_step ABSL_GUARDED_BY(mu) = false;
    bool wedge_prefill ABSL_GUARDED_BY(mu) = false;
    int wedged ABSL_GUARDED_BY(mu) = 0;  // calls now blocked in a wedge
    int wedged_prefills ABSL_GUARDED_BY(mu) = 0;  // of which Prefills
    int fail_steps ABSL_GUARDED_BY(mu) = 0;     // the next this many Steps fail
    int fail_prefills ABSL_GUARDED_BY(mu) = 0;  // the next this many Prefills fail
    int pass_prefills ABSL_GUARDED_BY(mu) = 0;  // ... after this many more succeed
    std::vector<CallRecord> calls ABSL_GUARDED_BY(mu);
    std::vector<int> set_threads ABSL_GUARDED_BY(mu);  // every SetThreads, in order

    void WedgeSteps(bool on) {
      absl::MutexLock lock(&mu);
      wedge_step = on;
    }
    void WedgePrefills(bool on) {
      absl::MutexLock lock(&mu);
      wedge_prefill = on;
    }
    // Waits until a call is blocked in a wedge.
    void AwaitWedged() {
      absl::MutexLock lock(&mu);
      mu.Await(absl::Condition(+[](int* n) { return *n > 0; }, &wedged));
    }
    // Waits until a Prefill is blocked in its wedge (a Step leaving its
    // wedge does not count).
    void AwaitWedgedPrefill() {
      absl::MutexLock lock(&mu);
      mu.Await(absl::Condition(+[](int* n) { return *n > 0; }, &wedged_prefills));
    }
    void FailNextSteps(int n) {
      absl::MutexLock lock(&mu);
      fail_steps = n;
    }
    void FailNextPrefills(int n) {
      absl::MutexLock lock(&mu);
      fail_prefills = n;
    }
    // The next `ok` Prefill calls succeed, the one after fails.
    void FailPrefillAfter(int ok) {
      absl::MutexLock lock(&mu);
      pass_prefills = ok;
      fail_prefills = 1;
    }
    std::vector<CallRecord> Calls() {
      absl::MutexLock lock(&mu);
      return calls;
    }
    void ClearCalls() {
      absl::MutexLock lock(&mu);
      calls.clear();
    }
  };

  explicit FakeEngine(std::shared_ptr<Controls> controls, int max_batch = 256)
      : controls_(std::move(controls)), max_batch_(max_batch) {
    config_.name = "fake";
    config_.vocab_size = kVocab;
    config_.embedding_dim = 2;
    config_.hidden_size = 2;
    config_.num_layers = 1;
    config_.tokenizer.type = TokenizerType::kChar;
    for (int i = 0; i < kVocab; ++i) config_.tokenizer.vocab.push_back(U'a' + i);
  }

  // The tokenizer that goes with this engine.
  static std::unique_ptr<Tokenizer> MakeTokenizer() {
    TokenizerConfig config;
    config.type = TokenizerType::kChar;
    for (int i = 0; i < kVocab; ++i) config.vocab.push_back(U'a' + i);
    return *Tokenizer::Create(config);
  }

  // The log-prob of token `next` after token `prev` (see the class comment).
  static float LogProb(int32_t prev, int32_t next) {
    return next == (prev + 1) % kVocab ? kLikely : kUnlikely;
  }

  const ModelConfig& config() const override { return config_; }
  Precision precision() const override { return Precision::kF32; }
  int max_batch() const override { return max_batch_; }
  const char* kind() const override { return "fake"; }
  void SetThreads(int threads) override {
    absl::MutexLock lock(&controls_->mu);
    controls_->set_threads.push_back(threads);
  }

  absl::Status Step(absl::Span<const int32_t> tokens, absl::Span<SequenceState* const> states,
                    float* logprobs) override {
    if (absl::Status s = Enter(Call::kStep, std::vector<int>(tokens.size(), 1)); !s.ok()) {
      return s;
    }
    if (absl::Status s = ValidateStepArgs(config_, max_batch_, tokens, states, logprobs);
        !s.ok()) {
      return s;
    }
    for (size_t n = 0; n < tokens.size(); ++n) {
      Feed(tokens[n], states[n]);
      Row(tokens[n], logprobs + n * kVocab);
    }
    return absl::OkStatus();
  }

  absl::Status Prefill(absl::Span<const PrefillItem> items) override {
    std::vector<int> lengths;
    for (const PrefillItem& item : items) lengths.push_back(static_cast<int>(item.tokens.size()));
    if (absl::Status s = Enter(Call::kPrefill, std::move(lengths)); !s.ok()) return s;
    if (absl::Status s = ValidatePrefillArgs(config_, max_batch_, items); !s.ok()) return s;
    for (const PrefillItem& item : items) {
      for (size_t t = 0; t < item.tokens.size(); ++t) {
        Feed(item.tokens[t], item.state);
        if (item.all_logprobs != nullptr) Row(item.tokens[t], item.all_logprobs + t * kVocab);
        if (item.next_token_logprobs != nullptr && t + 1 < item.tokens.size()) {
          float row[kVocab];
          Row(item.tokens[t], row);
          item.next_token_logprobs[t] = row[item.tokens[t + 1]];
        }
      }
      if (item.last_logprobs != nullptr) Row(item.tokens.back(), item.last_logprobs);
    }
    return absl::OkStatus();
  }

 private:
  // Records the call, applies the delay, wedge and failure controls.
  absl::Status Enter(Call call, std::vector<int> lengths) {
    absl::Duration delay;
    {
      absl::MutexLock lock(&controls_->mu);
      controls_->calls.push_back({call, std::move(lengths)});
      bool* wedge = call == Call::kStep ? &controls_->wedge_step : &controls_->wedge_prefill;
      if (*wedge) {
        const int prefill = call == Call::kPrefill ? 1 : 0;
        ++controls_->wedged;
        controls_->wedged_prefills += prefill;
        controls_->mu.Await(absl::Condition(+[](bool* w) { return !*w; }, wedge));
        --controls_->wedged;
        controls_->wedged_prefills -= prefill;
      }
      int* fail = call == Call::kStep ? &controls_->fail_steps : &controls_->fail_prefills;
      if (call == Call::kPrefill && controls_->pass_prefills > 0) {
        --controls_->pass_prefills;
      } else if (*fail > 0) {
        --*fail;
        return absl::InternalError(call == Call::kStep ? "injected step failure"
                                                       : "injected prefill failure");
      }
      delay = controls_->delay;
    }
    if (delay > absl::ZeroDuration()) absl::SleepFor(delay);
    return absl::OkStatus();
  }
  static void Feed(int32_t token, SequenceState* state) {
    state->layers[0].h[0] += 1.0f;
    state->layers[0].h[1] = static_cast<float>(token);
  }
  static void Row(int32_t token, float* row) {
    for (int v = 0; v < kVocab; ++v) row[v] = LogProb(token, v);
  }

  ModelConfig config_;
  std::shared_ptr<Controls> controls_;
  const int max_batch_;
};

}  // namespace lstmserve::testing

#endif  // LSTMSERVE_TESTS_SERVER_FAKE_ENGINE_H_
