// SharedComputeEngine (server/shared_engine.h): the versions of one model
// take turns on its compute budget and apply the budget's thread share to
// their engines before their next call, once per change.
#include "server/shared_engine.h"

#include <memory>
#include <vector>

#include "gtest/gtest.h"
#include "models/lstm_state.h"
#include "tests/server/fake_engine.h"

namespace lstmserve::testing {
namespace {

std::vector<int> SetThreadsCalls(FakeEngine::Controls& controls) {
  absl::MutexLock lock(&controls.mu);
  return controls.set_threads;
}

absl::Status OneStep(InferenceEngine& engine) {
  SequenceState state = SequenceState::Zeros(1, 2, 0);
  SequenceState* states[] = {&state};
  const int32_t tokens[] = {2};
  std::vector<float> logprobs(FakeEngine::kVocab);
  return engine.Step(tokens, states, logprobs.data());
}

absl::Status OnePrefill(InferenceEngine& engine) {
  SequenceState state = SequenceState::Zeros(1, 2, 0);
  const int32_t tokens[] = {0, 1, 2};
  std::vector<float> last(FakeEngine::kVocab);
  PrefillItem item;
  item.tokens = tokens;
  item.state = &state;
  item.last_logprobs = last.data();
  return engine.Prefill({item});
}

TEST(SharedComputeEngineTest, EveryVersionTakesTheBudgetsThreadsAtItsNextCall) {
  auto budget = std::make_shared<ComputeBudget>();
  auto old_controls = std::make_shared<FakeEngine::Controls>();
  auto new_controls = std::make_shared<FakeEngine::Controls>();
  SharedComputeEngine old_version(std::make_unique<FakeEngine>(old_controls), budget);
  SharedComputeEngine new_version(std::make_unique<FakeEngine>(new_controls), budget);

  // Not set (-1): the engines keep the threads they were built with.
  ASSERT_TRUE(OneStep(old_version).ok());
  EXPECT_TRUE(SetThreadsCalls(*old_controls).empty());

  // A second model arrived: the split applies before the next call, once.
  budget->threads.store(1);
  ASSERT_TRUE(OneStep(old_version).ok());
  ASSERT_TRUE(OnePrefill(old_version).ok());
  ASSERT_TRUE(OnePrefill(new_version).ok());
  EXPECT_EQ(SetThreadsCalls(*old_controls), std::vector<int>{1});
  EXPECT_EQ(SetThreadsCalls(*new_controls), std::vector<int>{1});

  // It left again: all cores (0), for both versions.
  budget->threads.store(0);
  ASSERT_TRUE(OnePrefill(old_version).ok());
  ASSERT_TRUE(OneStep(new_version).ok());
  EXPECT_EQ(SetThreadsCalls(*old_controls), (std::vector<int>{1, 0}));
  EXPECT_EQ(SetThreadsCalls(*new_controls), (std::vector<int>{1, 0}));
}

}  // namespace
}  // namespace lstmserve::testing
