// Test helper: an InferenceEngine decorator whose Step can be slowed down
// (a fixed delay per step) or wedged (blocks until released), and whose
// Prefill calls pass a gate the test opens one call at a time, to test what
// the server does around a slow or stuck engine. Thread-safe controls; the
// engine calls themselves run on the scheduler thread. ControlledServer
// serves it like TestServer.
#ifndef LSTMSERVE_TESTS_SERVER_CONTROLLABLE_ENGINE_H_
#define LSTMSERVE_TESTS_SERVER_CONTROLLABLE_ENGINE_H_

#include <atomic>
#include <memory>
#include <utility>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "models/engine.h"
#include "tests/server/test_server.h"

namespace lstmserve::testing {

class ControllableEngine final : public InferenceEngine {
 public:
  struct Controls {
    std::atomic<int64_t> step_delay_us{0};
    absl::Mutex mu;
    bool wedged ABSL_GUARDED_BY(mu) = false;
    int wedged_steps ABSL_GUARDED_BY(mu) = 0;  // Steps now blocked

    void Wedge() {
      absl::MutexLock lock(&mu);
      wedged = true;
    }
    void Release() {
      absl::MutexLock lock(&mu);
      wedged = false;
    }
    // Waits until a Step is blocked in the wedge.
    void AwaitWedgedStep() {
      absl::MutexLock lock(&mu);
      mu.Await(absl::Condition(
          +[](int* n) { return *n > 0; }, &wedged_steps));
    }

    // The Prefill gate: -1 open (the start), else how many more Prefill
    // calls may pass; the others wait at it.
    int prefill_budget ABSL_GUARDED_BY(mu) = -1;
    int prefills_waiting ABSL_GUARDED_BY(mu) = 0;
    int64_t prefill_tokens ABSL_GUARDED_BY(mu) = 0;  // fed by the calls that passed

    // Closes the gate (0) or opens it (-1).
    void GatePrefills(int budget) {
      absl::MutexLock lock(&mu);
      prefill_budget = budget;
    }
    // Lets one more Prefill call through a closed gate.
    void AllowPrefill() {
      absl::MutexLock lock(&mu);
      if (prefill_budget >= 0) ++prefill_budget;
    }
    // Waits until a Prefill call waits at the gate.
    void AwaitPrefillAtGate() {
      absl::MutexLock lock(&mu);
      mu.Await(absl::Condition(+[](int* n) { return *n > 0; }, &prefills_waiting));
    }
    int64_t PrefillTokens() {
      absl::MutexLock lock(&mu);
      return prefill_tokens;
    }
  };

  ControllableEngine(std::unique_ptr<InferenceEngine> inner, std::shared_ptr<Controls> controls)
      : inner_(std::move(inner)), controls_(std::move(controls)) {}

  const ModelConfig& config() const override { return inner_->config(); }
  Precision precision() const override { return inner_->precision(); }
  int max_batch() const override { return inner_->max_batch(); }
  const char* kind() const override { return inner_->kind(); }
  void SetThreads(int threads) override { inner_->SetThreads(threads); }

  absl::Status Step(absl::Span<const int32_t> tokens, absl::Span<SequenceState* const> states,
                    float* logprobs) override {
    {
      absl::MutexLock lock(&controls_->mu);
      if (controls_->wedged) {
        ++controls_->wedged_steps;
        controls_->mu.Await(absl::Condition(
            +[](bool* wedged) { return !*wedged; }, &controls_->wedged));
        --controls_->wedged_steps;
      }
    }
    const int64_t delay = controls_->step_delay_us.load();
    if (delay > 0) absl::SleepFor(absl::Microseconds(delay));
    return inner_->Step(tokens, states, logprobs);
  }
  absl::Status Prefill(absl::Span<const PrefillItem> items) override {
    {
      absl::MutexLock lock(&controls_->mu);
      ++controls_->prefills_waiting;
      controls_->mu.Await(
          absl::Condition(+[](int* budget) { return *budget != 0; }, &controls_->prefill_budget));
      --controls_->prefills_waiting;
      if (controls_->prefill_budget > 0) --controls_->prefill_budget;
      for (const PrefillItem& item : items) controls_->prefill_tokens += item.tokens.size();
    }
    return inner_->Prefill(items);
  }

 private:
  std::unique_ptr<InferenceEngine> inner_;
  std::shared_ptr<Controls> controls_;
};

// A started TestServer-like server whose one model ("tiny") runs on a
// ControllableEngine, with its controls and a client.
struct ControlledServer {
  explicit ControlledServer(ServerOptions options = TestOptions(), int64_t step_delay_us = 0)
      : controls(std::make_shared<ControllableEngine::Controls>()) {
    controls->step_delay_us = step_delay_us;
    std::vector<NamedEngine> engines;
    engines.push_back(
        {kModel, std::make_unique<ControllableEngine>(ReferenceEngine(TinyShape()), controls)});
    server = ValueOrDie(LanguageModelServer::Start(options, std::move(engines)),
                        "LanguageModelServer::Start");
    client = std::make_unique<LanguageModelClient>(absl::StrCat("127.0.0.1:", server->port()));
  }
  std::shared_ptr<ControllableEngine::Controls> controls;
  std::unique_ptr<LanguageModelServer> server;
  std::unique_ptr<LanguageModelClient> client;
};

}  // namespace lstmserve::testing

#endif  // LSTMSERVE_TESTS_SERVER_CONTROLLABLE_ENGINE_H_
