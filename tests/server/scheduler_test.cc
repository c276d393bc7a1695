// ModelScheduler driven directly, without gRPC: a FakeEngine (deterministic
// text, controllable: slow, wedged, failing) and recording sinks. Ordering,
// fairness, slot accounting, cancellation and deadlines in each phase
// (queued, prefilling, generating), engine failures mid-prefill and
// mid-step, chunked prefill and step joining. Synchronization is by the
// engine's wedges and the sinks' Close, never by sleeping.
#include "server/scheduler.h"

#include <atomic>
#include <functional>
#include <memory>
#include <thread>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "tests/server/fake_engine.h"

namespace lstmserve::testing {
namespace {

using Call = FakeEngine::Call;

// The order in which sinks were closed, shared by the sinks of one test.
struct CloseLog {
  absl::Mutex mu;
  std::vector<std::string> names ABSL_GUARDED_BY(mu);
  std::vector<std::string> Names() {
    absl::MutexLock lock(&mu);
    return names;
  }
};

// A GenerationSink that records what it gets. Thread-safe.
class RecordingSink final : public GenerationSink {
 public:
  explicit RecordingSink(std::string name = "", CloseLog* log = nullptr)
      : name_(std::move(name)), log_(log) {}

  void Send(v1::GenerateResponse delta, int tokens) override {
    absl::MutexLock lock(&mu_);
    EXPECT_FALSE(closed_) << name_ << ": Send after Close";
    text_ += delta.text();
    tokens_ += tokens;
    ++sends_;
  }
  void Close(v1::GenerateResponse last, const absl::Status& status) override {
    {
      absl::MutexLock lock(&mu_);
      EXPECT_FALSE(closed_) << name_ << ": closed twice";
      closed_ = true;
      text_ += last.text();
      last_ = std::move(last);
      status_ = status;
    }
    if (log_ != nullptr) {
      absl::MutexLock lock(&log_->mu);
      log_->names.push_back(name_);
    }
    closed_note_.Notify();
  }
  bool cancelled() const override { return cancelled_.load(); }
  int pending_tokens() const override { return pending_.load(); }

  void Cancel() { cancelled_ = true; }
  void SetPending(int n) { pending_ = n; }
  void AwaitClosed() { closed_note_.WaitForNotification(); }
  bool closed() const { return closed_note_.HasBeenNotified(); }
  std::string text() {
    absl::MutexLock lock(&mu_);
    return text_;
  }
  int tokens() {
    absl::MutexLock lock(&mu_);
    return tokens_;
  }
  absl::Status status() {
    absl::MutexLock lock(&mu_);
    return status_;
  }
  v1::GenerateResponse last() {
    absl::MutexLock lock(&mu_);
    return last_;
  }
  // Waits until at least `n` tokens were sent.
  void AwaitTokens(int n) {
    struct Arg {
      const int* tokens;
      int n;
    } arg{&tokens_, n};
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(+[](Arg* a) { return *a->tokens >= a->n; }, &arg));
  }

 private:
  const std::string name_;
  CloseLog* const log_;
  std::atomic<bool> cancelled_{false};
  std::atomic<int> pending_{0};
  absl::Notification closed_note_;
  absl::Mutex mu_;
  std::string text_ ABSL_GUARDED_BY(mu_);
  int tokens_ ABSL_GUARDED_BY(mu_) = 0;
  int sends_ ABSL_GUARDED_BY(mu_) = 0;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  v1::GenerateResponse last_ ABSL_GUARDED_BY(mu_);
  absl::Status status_ ABSL_GUARDED_BY(mu_);
};

// Counts the generations the scheduler reports finished. Thread-safe.
class CountingObserver final : public SchedulerObserver {
 public:
  void OnFinished(v1::FinishReason, absl::StatusCode, int) override { ++finished_; }
  int finished() const { return finished_.load(); }

 private:
  std::atomic<int> finished_{0};
};

std::vector<int32_t> Ids(const std::string& letters) {
  std::vector<int32_t> ids;
  for (char c : letters) ids.push_back(c - 'a');
  return ids;
}

std::unique_ptr<GenerationJob> Job(RecordingSink* sink, const std::string& prompt, int max_tokens,
                                   absl::Time deadline = absl::InfiniteFuture()) {
  auto job = std::make_unique<GenerationJob>();
  job->spec.request_id = "r";
  job->spec.prompt = Ids(prompt);
  job->spec.max_tokens = max_tokens;
  job->spec.sampling.temperature = 0.0f;
  job->spec.sampling.seed = 1;
  job->sink = sink;
  job->deadline = deadline;
  return job;
}

// `n` letters continuing after `last` (the fake model's greedy text).
std::string Continuation(char last, int n) {
  std::string s;
  for (int i = 1; i <= n; ++i) s += static_cast<char>('a' + (last - 'a' + i) % 26);
  return s;
}

// The result of a Score or Embed, delivered to a callback.
template <class T>
struct Result {
  absl::Notification done;
  absl::StatusOr<T> value = absl::UnknownError("not called");
  std::function<void(absl::StatusOr<T>)> Callback() {
    return [this](absl::StatusOr<T> v) {
      EXPECT_FALSE(done.HasBeenNotified()) << "called twice";
      value = std::move(v);
      done.Notify();
    };
  }
};

SchedulerOptions Options(int max_batch = 8) {
  SchedulerOptions o;
  o.max_batch = max_batch;
  o.step_join_max_prompt = 0;  // every prompt is prefilled unless a test says so
  o.prefix_cache_bytes = 0;    // the exact prefill calls (prefix_cache_server_test: the cache)
  return o;
}

// A Score or Embed's TextControl: named `id`, cancelled once `*cancelled`
// (may be null: never) is set.
TextControl Control(const std::string& id, const std::atomic<bool>* cancelled,
                    absl::Time deadline = absl::InfiniteFuture()) {
  TextControl control;
  control.request_id = id;
  control.deadline = deadline;
  if (cancelled != nullptr) control.cancelled = [cancelled] { return cancelled->load(); };
  return control;
}

// The fake model's log-probs of tokens[first..] given the tokens before.
std::vector<float> ExpectedLogprobs(const std::vector<int32_t>& tokens, int first) {
  std::vector<float> out;
  for (size_t j = first; j < tokens.size(); ++j) {
    out.push_back(FakeEngine::LogProb(tokens[j - 1], tokens[j]));
  }
  return out;
}

class SchedulerTest : public ::testing::Test {
 protected:
  void Start(const SchedulerOptions& options) {
    controls_ = std::make_shared<FakeEngine::Controls>();
    auto s = ModelScheduler::Create("fake", std::make_unique<FakeEngine>(controls_),
                                    tokenizer_.get(), options, &observer_);
    ASSERT_TRUE(s.ok()) << s.status();
    scheduler_ = *std::move(s);
  }
  void TearDown() override {
    if (controls_ != nullptr) {
      controls_->WedgeSteps(false);
      controls_->WedgePrefills(false);
    }
    scheduler_.reset();  // Stop: every remaining sink is closed
  }
  // Submits and expects OK.
  void Submit(RecordingSink* sink, const std::string& prompt, int max_tokens,
              absl::Time deadline = absl::InfiniteFuture()) {
    ASSERT_TRUE(scheduler_->SubmitGeneration(Job(sink, prompt, max_tokens, deadline)).ok());
  }
  // A sink that outlives the scheduler (closing order in log_).
  RecordingSink& NewSink(const std::string& name) {
    sinks_.push_back(std::make_unique<RecordingSink>(name, &log_));
    return *sinks_.back();
  }
  std::vector<std::vector<int>> CallsOf(Call kind) {
    std::vector<std::vector<int>> out;
    for (const auto& c : controls_->Calls()) {
      if (c.call == kind) out.push_back(c.lengths);
    }
    return out;
  }

  // Two Scores join a generating stream ("running", prompt "abcd", 40
  // tokens) and are prefilled together in chunks of 4: `control`'s (12
  // tokens) and another (8). Once their first chunk is inside the engine,
  // `end` runs (cancel, or wait out the deadline), then the engine goes on.
  // Expects `control`'s Score to stop there (done once with `code` and
  // `message`) and the others to be what they are without it.
  void ExpectScoreEndsAtTheNextChunkBoundary(TextControl control, const std::function<void()>& end,
                                             absl::StatusCode code, const std::string& message) {
    SchedulerOptions o = Options();
    o.prefill_chunk_tokens = 4;
    Start(o);
    RecordingSink& running = NewSink("running");
    controls_->WedgeSteps(true);
    Submit(&running, "abcd", 40);
    controls_->AwaitWedged();  // generating, inside a Step
    controls_->ClearCalls();
    Result<ScoreResult> ending;
    Result<ScoreResult> other;
    const std::vector<int32_t> other_tokens = Ids("qwertyui");
    ASSERT_TRUE(scheduler_->SubmitScore(Ids("abcdefghijkl"), 1, ending.Callback(),
                                        std::move(control))
                    .ok());
    ASSERT_TRUE(scheduler_->SubmitScore(other_tokens, 1, other.Callback()).ok());
    controls_->WedgePrefills(true);
    controls_->WedgeSteps(false);
    controls_->AwaitWedgedPrefill();  // both Scores' first chunk
    end();
    controls_->WedgePrefills(false);
    ending.done.WaitForNotification();
    EXPECT_EQ(ending.value.status().code(), code);
    EXPECT_EQ(ending.value.status().message(), message);
    other.done.WaitForNotification();
    ASSERT_TRUE(other.value.ok()) << other.value.status();
    EXPECT_EQ(other.value->logprobs, ExpectedLogprobs(other_tokens, 1));
    running.AwaitClosed();
    EXPECT_TRUE(running.status().ok()) << running.status();
    EXPECT_EQ(running.text(), Continuation('d', 40));
    ASSERT_TRUE(scheduler_->WaitUntilIdle(absl::InfiniteFuture()));
    // The ended Score's 4 tokens, then only the other one's last chunk.
    EXPECT_EQ(CallsOf(Call::kPrefill), (std::vector<std::vector<int>>{{4, 4}, {4}}));
    EXPECT_EQ(scheduler_->load().busy, 0);
  }

  std::unique_ptr<Tokenizer> tokenizer_ = FakeEngine::MakeTokenizer();
  CloseLog log_;
  std::vector<std::unique_ptr<RecordingSink>> sinks_;  // destroyed after scheduler_
  CountingObserver observer_;
  std::shared_ptr<FakeEngine::Controls> controls_;
  std::unique_ptr<ModelScheduler> scheduler_;
};

TEST_F(SchedulerTest, GeneratesGreedyTextWithUsage) {
  Start(Options());
  RecordingSink& sink = NewSink("sink");
  Submit(&sink, "abc", 4);
  sink.AwaitClosed();
  EXPECT_TRUE(sink.status().ok()) << sink.status();
  EXPECT_EQ(sink.text(), "defg");
  EXPECT_EQ(sink.last().finish_reason(), v1::FINISH_REASON_LENGTH);
  EXPECT_EQ(sink.last().usage().prompt_tokens(), 3);
  EXPECT_EQ(sink.last().usage().generated_tokens(), 4);
  EXPECT_TRUE(scheduler_->WaitUntilIdle(absl::InfiniteFuture()));
  EXPECT_EQ(observer_.finished(), 1);
}

TEST_F(SchedulerTest, RejectsAJobWithoutASink) {
  Start(Options());
  EXPECT_EQ(scheduler_->SubmitGeneration(nullptr).code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(SchedulerTest, OneSlotServesGenerationsInArrivalOrder) {
  Start(Options(/*max_batch=*/1));
  RecordingSink& a = NewSink("a");
  RecordingSink& b = NewSink("b");
  RecordingSink& c = NewSink("c");
  controls_->WedgePrefills(true);
  Submit(&a, "a", 3);
  controls_->AwaitWedged();
  Submit(&b, "b", 3);
  Submit(&c, "c", 3);
  controls_->WedgePrefills(false);
  c.AwaitClosed();
  b.AwaitClosed();
  a.AwaitClosed();
  EXPECT_EQ(log_.Names(), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(b.text(), "cde");
  for (const auto& step : CallsOf(Call::kStep)) EXPECT_EQ(step.size(), 1u);
}

TEST_F(SchedulerTest, AShortGenerationDoesNotWaitForALongOne) {
  Start(Options(/*max_batch=*/2));
  RecordingSink& long_one = NewSink("long_one");
  RecordingSink& short_one = NewSink("short_one");
  controls_->WedgeSteps(true);
  Submit(&long_one, "a", 100000);
  controls_->AwaitWedged();
  Submit(&short_one, "k", 2);
  controls_->WedgeSteps(false);
  short_one.AwaitClosed();
  EXPECT_TRUE(short_one.status().ok());
  EXPECT_EQ(short_one.text(), "lm");
  EXPECT_FALSE(long_one.closed());
  long_one.Cancel();
  scheduler_->Wake();
  long_one.AwaitClosed();
  EXPECT_EQ(long_one.status().code(), absl::StatusCode::kCancelled);
}

TEST_F(SchedulerTest, ScoreIsNotHeldUpByGenerationsWaitingForASlot) {
  Start(Options(/*max_batch=*/1));
  RecordingSink& running = NewSink("running");
  RecordingSink& waiting = NewSink("waiting");
  controls_->WedgeSteps(true);
  Submit(&running, "a", 100000);
  controls_->AwaitWedged();
  Submit(&waiting, "a", 1);  // no free slot: stays queued
  Result<ScoreResult> score;
  ASSERT_TRUE(scheduler_->SubmitScore(Ids("abc"), 1, score.Callback()).ok());
  EXPECT_EQ(scheduler_->load().queued, 2);
  EXPECT_EQ(scheduler_->load().busy, 1);
  controls_->WedgeSteps(false);
  score.done.WaitForNotification();
  ASSERT_TRUE(score.value.ok()) << score.value.status();
  EXPECT_FALSE(waiting.closed());
  running.Cancel();
  scheduler_->Wake();
  waiting.AwaitClosed();
  EXPECT_TRUE(waiting.status().ok());
  EXPECT_EQ(waiting.text(), "b");
}

TEST_F(SchedulerTest, NeverRunsMoreSequencesThanSlots) {
  Start(Options(/*max_batch=*/2));
  std::vector<RecordingSink*> sinks;
  for (int i = 0; i < 7; ++i) {
    sinks.push_back(&NewSink(""));
    Submit(sinks.back(), "a", 5 + i);
  }
  for (int i = 0; i < 7; ++i) {
    sinks[i]->AwaitClosed();
    EXPECT_TRUE(sinks[i]->status().ok());
    EXPECT_EQ(sinks[i]->text(), Continuation('a', 5 + i));
  }
  ASSERT_TRUE(scheduler_->WaitUntilIdle(absl::InfiniteFuture()));
  for (const auto& step : CallsOf(Call::kStep)) EXPECT_LE(step.size(), 2u);
  for (const auto& prefill : CallsOf(Call::kPrefill)) EXPECT_LE(prefill.size(), 2u);
  EXPECT_EQ(scheduler_->load().busy, 0);
  EXPECT_EQ(scheduler_->load().queued, 0);
  EXPECT_EQ(observer_.finished(), 7);
}

TEST_F(SchedulerTest, LoadCountsQueuedAndRunningWork) {
  Start(Options(/*max_batch=*/1));
  RecordingSink& a = NewSink("a");
  RecordingSink& b = NewSink("b");
  RecordingSink& c = NewSink("c");
  controls_->WedgeSteps(true);
  Submit(&a, "a", 100000);
  controls_->AwaitWedged();
  Submit(&b, "a", 1);
  Submit(&c, "a", 1);
  // The loop is inside Step: nothing moved since.
  EXPECT_EQ(scheduler_->load().busy, 1);
  EXPECT_EQ(scheduler_->load().queued, 2);
  a.Cancel();
  controls_->WedgeSteps(false);
  c.AwaitClosed();
  ASSERT_TRUE(scheduler_->WaitUntilIdle(absl::InfiniteFuture()));
  EXPECT_EQ(scheduler_->load().busy, 0);
  EXPECT_EQ(scheduler_->load().queued, 0);
}

TEST_F(SchedulerTest, AFullQueueRejectsWithoutTouchingTheSink) {
  SchedulerOptions o = Options(/*max_batch=*/1);
  o.max_queue = 1;
  Start(o);
  RecordingSink& a = NewSink("a");
  RecordingSink& b = NewSink("b");
  RecordingSink& c = NewSink("c");
  controls_->WedgeSteps(true);
  Submit(&a, "a", 100000);
  controls_->AwaitWedged();
  Submit(&b, "a", 1);
  const absl::Status s = scheduler_->SubmitGeneration(Job(&c, "a", 1));
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_NE(s.message().find("--max-queue"), std::string::npos) << s;
  Result<ScoreResult> score;
  EXPECT_EQ(scheduler_->SubmitScore(Ids("ab"), 1, score.Callback()).code(),
            absl::StatusCode::kResourceExhausted);
  EXPECT_FALSE(c.closed());
  EXPECT_FALSE(score.done.HasBeenNotified());
}

TEST_F(SchedulerTest, CancelledWhileQueuedEndsWithoutRunning) {
  Start(Options(/*max_batch=*/1));
  RecordingSink& a = NewSink("a");
  RecordingSink& b = NewSink("b");
  controls_->WedgeSteps(true);
  Submit(&a, "a", 100000);
  controls_->AwaitWedged();
  Submit(&b, "xyz", 5);
  b.Cancel();
  controls_->WedgeSteps(false);
  b.AwaitClosed();
  EXPECT_EQ(b.status().code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(b.last().finish_reason(), v1::FINISH_REASON_CANCELLED);
  EXPECT_EQ(b.last().usage().prompt_tokens(), 3);
  EXPECT_EQ(b.last().usage().generated_tokens(), 0);
  EXPECT_EQ(b.text(), "");
  EXPECT_FALSE(a.closed());  // the running one is not affected
  for (const auto& prefill : CallsOf(Call::kPrefill)) EXPECT_EQ(prefill, std::vector<int>{1});
}

TEST_F(SchedulerTest, ExpiredWhileQueuedEndsWithDeadline) {
  Start(Options(/*max_batch=*/1));
  RecordingSink& a = NewSink("a");
  RecordingSink& b = NewSink("b");
  controls_->WedgeSteps(true);
  Submit(&a, "a", 100000);
  controls_->AwaitWedged();
  Submit(&b, "a", 5, absl::Now());  // already expired when the loop looks
  controls_->WedgeSteps(false);
  b.AwaitClosed();
  EXPECT_EQ(b.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(b.last().finish_reason(), v1::FINISH_REASON_DEADLINE);
  EXPECT_EQ(b.last().usage().generated_tokens(), 0);
  EXPECT_FALSE(a.closed());
}

TEST_F(SchedulerTest, CancelledDuringPrefillStopsAtTheChunkBoundary) {
  SchedulerOptions o = Options();
  o.prefill_chunk_tokens = 4;
  Start(o);
  RecordingSink& a = NewSink("a");
  controls_->WedgePrefills(true);
  Submit(&a, "abcdefghij", 5);
  controls_->AwaitWedged();
  a.Cancel();
  controls_->WedgePrefills(false);
  a.AwaitClosed();
  EXPECT_EQ(a.status().code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(a.last().finish_reason(), v1::FINISH_REASON_CANCELLED);
  EXPECT_EQ(a.last().usage().generated_tokens(), 0);
  ASSERT_TRUE(scheduler_->WaitUntilIdle(absl::InfiniteFuture()));
  EXPECT_EQ(CallsOf(Call::kPrefill), (std::vector<std::vector<int>>{{4}}));
}

TEST_F(SchedulerTest, DeadlineDuringPrefillEndsIt) {
  SchedulerOptions o = Options();
  o.prefill_chunk_tokens = 4;
  Start(o);
  RecordingSink& a = NewSink("a");
  controls_->WedgePrefills(true);
  const absl::Time deadline = absl::Now() + absl::Milliseconds(20);
  Submit(&a, "abcdefghij", 5, deadline);
  controls_->AwaitWedged();
  while (absl::Now() <= deadline) absl::SleepFor(absl::Milliseconds(1));  // the clock, not a race
  controls_->WedgePrefills(false);
  a.AwaitClosed();
  EXPECT_EQ(a.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(a.last().finish_reason(), v1::FINISH_REASON_DEADLINE);
  EXPECT_EQ(a.last().usage().generated_tokens(), 0);
}

TEST_F(SchedulerTest, ScoreCancelledWhileQueuedNeverReachesTheEngine) {
  Start(Options(/*max_batch=*/1));
  RecordingSink& a = NewSink("a");
  controls_->WedgePrefills(true);
  Submit(&a, "abcdefgh", 5);
  controls_->AwaitWedged();  // `a` holds the one prefill place: the Score waits
  std::atomic<bool> cancelled{false};
  Result<ScoreResult> score;
  ASSERT_TRUE(
      scheduler_->SubmitScore(Ids("xyz"), 1, score.Callback(), Control("s-1", &cancelled)).ok());
  EXPECT_EQ(scheduler_->load().queued, 1);
  cancelled = true;
  controls_->WedgePrefills(false);
  score.done.WaitForNotification();
  EXPECT_EQ(score.value.status().code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(score.value.status().message(), "Score request 's-1': cancelled while queued");
  a.AwaitClosed();
  EXPECT_TRUE(a.status().ok()) << a.status();
  EXPECT_EQ(a.text(), "ijklm");
  ASSERT_TRUE(scheduler_->WaitUntilIdle(absl::InfiniteFuture()));
  EXPECT_EQ(CallsOf(Call::kPrefill), (std::vector<std::vector<int>>{{8}}));  // `a` only
}

TEST_F(SchedulerTest, ScoreExpiredWhileQueuedNeverReachesTheEngine) {
  Start(Options(/*max_batch=*/1));
  RecordingSink& a = NewSink("a");
  controls_->WedgePrefills(true);
  Submit(&a, "abcdefgh", 5);
  controls_->AwaitWedged();
  Result<ScoreResult> score;
  // Already expired when the loop looks.
  ASSERT_TRUE(scheduler_
                  ->SubmitScore(Ids("xyz"), 1, score.Callback(),
                                Control("s-2", nullptr, absl::Now()))
                  .ok());
  controls_->WedgePrefills(false);
  score.done.WaitForNotification();
  EXPECT_EQ(score.value.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(score.value.status().message(),
            "Score request 's-2': the deadline passed while queued");
  a.AwaitClosed();
  EXPECT_EQ(a.text(), "ijklm");
  ASSERT_TRUE(scheduler_->WaitUntilIdle(absl::InfiniteFuture()));
  EXPECT_EQ(CallsOf(Call::kPrefill), (std::vector<std::vector<int>>{{8}}));
}

TEST_F(SchedulerTest, ScoreCancelledDuringPrefillStopsAtTheNextChunkBoundary) {
  std::atomic<bool> cancelled{false};
  ExpectScoreEndsAtTheNextChunkBoundary(
      Control("s-3", &cancelled), [&] { cancelled = true; }, absl::StatusCode::kCancelled,
      "Score request 's-3': the client cancelled");
}

TEST_F(SchedulerTest, ScoreDeadlineDuringPrefillStopsAtTheNextChunkBoundary) {
  // Far enough for the Score to be admitted first (it is, within
  // microseconds: it was queued before the engine was released).
  const absl::Time deadline = absl::Now() + absl::Milliseconds(300);
  ExpectScoreEndsAtTheNextChunkBoundary(
      Control("s-4", nullptr, deadline),
      [&] {
        while (absl::Now() <= deadline) absl::SleepFor(absl::Milliseconds(1));  // the clock
      },
      absl::StatusCode::kDeadlineExceeded, "Score request 's-4': the request's deadline passed");
}

TEST_F(SchedulerTest, EmbedCancelledDuringPrefillStopsAtTheNextChunkBoundary) {
  SchedulerOptions o = Options();
  o.prefill_chunk_tokens = 4;
  Start(o);
  std::atomic<bool> cancelled{false};
  Result<EmbedResult> embed;
  controls_->WedgePrefills(true);
  ASSERT_TRUE(scheduler_
                  ->SubmitEmbed(Ids("abcdefghijkl"), embed.Callback(),
                                Control("e-1", &cancelled))
                  .ok());
  controls_->AwaitWedgedPrefill();  // its first chunk
  cancelled = true;
  controls_->WedgePrefills(false);
  embed.done.WaitForNotification();
  EXPECT_EQ(embed.value.status().code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(embed.value.status().message(), "Embed request 'e-1': the client cancelled");
  ASSERT_TRUE(scheduler_->WaitUntilIdle(absl::InfiniteFuture()));
  EXPECT_EQ(CallsOf(Call::kPrefill), (std::vector<std::vector<int>>{{4}}));
  // The slot is free: the next Embed runs whole.
  Result<EmbedResult> next;
  ASSERT_TRUE(scheduler_->SubmitEmbed(Ids("abcdefghij"), next.Callback()).ok());
  next.done.WaitForNotification();
  ASSERT_TRUE(next.value.ok()) << next.value.status();
  EXPECT_EQ(next.value->state.layers[0].h[0], 10.0f);
}

TEST_F(SchedulerTest, EmbedExpiredWhileQueuedNeverReachesTheEngine) {
  Start(Options());
  Result<EmbedResult> embed;
  ASSERT_TRUE(scheduler_
                  ->SubmitEmbed(Ids("abcd"), embed.Callback(),
                                Control("e-2", nullptr, absl::Now()))
                  .ok());
  embed.done.WaitForNotification();
  EXPECT_EQ(embed.value.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(embed.value.status().message(),
            "Embed request 'e-2': the deadline passed while queued");
  EXPECT_TRUE(CallsOf(Call::kPrefill).empty());
}

TEST_F(SchedulerTest, CancelledWhileGeneratingEndsWithinAStep) {
  Start(Options());
  RecordingSink& a = NewSink("a");
  RecordingSink& b = NewSink("b");
  controls_->WedgeSteps(true);
  Submit(&a, "a", 100000);
  Submit(&b, "a", 100000);
  controls_->AwaitWedged();
  a.Cancel();
  controls_->WedgeSteps(false);
  a.AwaitClosed();
  EXPECT_EQ(a.status().code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(a.last().finish_reason(), v1::FINISH_REASON_CANCELLED);
  EXPECT_GE(a.last().usage().generated_tokens(), 1);
  EXPECT_FALSE(b.closed());
  const int before = b.tokens();
  b.AwaitTokens(before + 3);  // the other stream goes on
}

TEST_F(SchedulerTest, DeadlineWhileGeneratingEndsIt) {
  Start(Options());
  RecordingSink& a = NewSink("a");
  Submit(&a, "a", 1 << 30, absl::Now() + absl::Milliseconds(50));
  a.AwaitClosed();
  EXPECT_EQ(a.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(a.last().finish_reason(), v1::FINISH_REASON_DEADLINE);
}

TEST_F(SchedulerTest, DeadlineOfAPausedSequenceStillApplies) {
  SchedulerOptions o = Options();
  o.max_pending_tokens = 4;
  Start(o);
  RecordingSink& a = NewSink("a");
  a.SetPending(4);  // the reader never reads: paused after the first token
  Submit(&a, "a", 1 << 30, absl::Now() + absl::Milliseconds(50));
  a.AwaitClosed();
  EXPECT_EQ(a.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_LE(a.tokens(), 2);
}

TEST_F(SchedulerTest, PrefillFailureFailsItsRequestsOnly) {
  Start(Options());
  RecordingSink& running = NewSink("running");
  RecordingSink& fresh = NewSink("fresh");
  controls_->WedgeSteps(true);
  Submit(&running, "a", 40);
  controls_->AwaitWedged();
  controls_->FailNextPrefills(1);
  Submit(&fresh, "abc", 5);
  Result<ScoreResult> score;
  ASSERT_TRUE(scheduler_->SubmitScore(Ids("abcd"), 1, score.Callback()).ok());
  Result<EmbedResult> embed;
  ASSERT_TRUE(scheduler_->SubmitEmbed(Ids("abcd"), embed.Callback()).ok());
  controls_->WedgeSteps(false);
  fresh.AwaitClosed();
  score.done.WaitForNotification();
  embed.done.WaitForNotification();
  // The loop was inside Step while all three arrived: they shared the one
  // failed Prefill call.
  EXPECT_EQ(fresh.status().code(), absl::StatusCode::kInternal);
  EXPECT_NE(fresh.status().message().find("prefill failed"), std::string::npos) << fresh.status();
  EXPECT_EQ(fresh.last().usage().generated_tokens(), 0);
  EXPECT_EQ(fresh.text(), "");
  EXPECT_EQ(score.value.status().code(), absl::StatusCode::kInternal);
  EXPECT_EQ(embed.value.status().code(), absl::StatusCode::kInternal);
  EXPECT_EQ(CallsOf(Call::kPrefill).back(), (std::vector<int>{3, 4, 4}));
  running.AwaitClosed();
  EXPECT_TRUE(running.status().ok()) << running.status();
  EXPECT_EQ(running.text(), Continuation('a', 40));
}

TEST_F(SchedulerTest, PrefillFailureMidPromptEndsTheGeneration) {
  SchedulerOptions o = Options();
  o.prefill_chunk_tokens = 2;
  Start(o);
  RecordingSink& a = NewSink("a");
  controls_->FailPrefillAfter(1);  // the first chunk passes, the second fails
  Submit(&a, "abcdefgh", 5);
  a.AwaitClosed();
  EXPECT_EQ(a.status().code(), absl::StatusCode::kInternal);
  EXPECT_NE(a.status().message().find("injected prefill failure"), std::string::npos);
  EXPECT_EQ(a.last().finish_reason(), v1::FINISH_REASON_UNSPECIFIED);
  EXPECT_EQ(a.last().usage().generated_tokens(), 0);
  EXPECT_EQ(CallsOf(Call::kPrefill), (std::vector<std::vector<int>>{{2}, {2}}));
  RecordingSink& b = NewSink("b");
  Submit(&b, "abcdefgh", 3);  // the scheduler goes on
  b.AwaitClosed();
  EXPECT_TRUE(b.status().ok()) << b.status();
  EXPECT_EQ(b.text(), "ijk");
}

TEST_F(SchedulerTest, StepFailureFailsTheStepsSequencesAndTheLoopGoesOn) {
  Start(Options());
  RecordingSink& a = NewSink("a");
  RecordingSink& b = NewSink("b");
  controls_->WedgeSteps(true);
  Submit(&a, "a", 100000);
  Submit(&b, "a", 100000);
  controls_->AwaitWedged();
  controls_->FailNextSteps(1);
  controls_->WedgeSteps(false);
  a.AwaitClosed();
  EXPECT_EQ(a.status().code(), absl::StatusCode::kInternal);
  EXPECT_NE(a.status().message().find("step failed"), std::string::npos) << a.status();
  EXPECT_EQ(a.last().finish_reason(), v1::FINISH_REASON_UNSPECIFIED);
  // b was in the failed step only if it had joined; either way it ends or
  // runs on, and a later request is served.
  RecordingSink& c = NewSink("c");
  Submit(&c, "m", 3);
  c.AwaitClosed();
  EXPECT_TRUE(c.status().ok()) << c.status();
  EXPECT_EQ(c.text(), "nop");
}

TEST_F(SchedulerTest, LongPromptsArePrefilledInAlignedChunksBetweenSteps) {
  SchedulerOptions o = Options();
  o.prefill_chunk_tokens = 4;
  Start(o);
  RecordingSink& running = NewSink("running");
  RecordingSink& a = NewSink("a");
  controls_->WedgeSteps(true);
  Submit(&running, "a", 100000);
  controls_->AwaitWedged();
  controls_->ClearCalls();
  Submit(&a, "abcdefghij", 3);  // 10 tokens: chunks 4, 4, 2
  Result<ScoreResult> score;
  ASSERT_TRUE(scheduler_->SubmitScore(Ids("abcdef"), 1, score.Callback()).ok());  // 4, 2
  controls_->WedgeSteps(false);
  a.AwaitClosed();
  score.done.WaitForNotification();
  EXPECT_TRUE(a.status().ok());
  EXPECT_EQ(a.text(), "klm");
  // Every prefill call carries at most one chunk per prompt, and the running
  // stream steps between two prefill calls.
  const auto calls = controls_->Calls();
  std::vector<int> a_chunks;
  bool last_was_prefill = false;
  for (const auto& c : calls) {
    if (c.call == Call::kPrefill) {
      EXPECT_FALSE(last_was_prefill) << "two prefill calls without a step between";
      for (int len : c.lengths) EXPECT_LE(len, 4);
    }
    last_was_prefill = c.call == Call::kPrefill;
  }
  int prefilled = 0;
  for (const auto& c : calls) {
    if (c.call != Call::kPrefill) continue;
    for (int len : c.lengths) prefilled += len;
  }
  EXPECT_EQ(prefilled, 16);
  ASSERT_TRUE(score.value.ok());
  EXPECT_EQ(score.value->logprobs.size(), 5u);
}

TEST_F(SchedulerTest, ChunkBoundariesAreMultiplesOfTheChunkSize) {
  SchedulerOptions o = Options();
  o.prefill_chunk_tokens = 3;
  Start(o);
  RecordingSink& a = NewSink("a");
  Submit(&a, "abcdefgh", 1);
  a.AwaitClosed();
  EXPECT_EQ(CallsOf(Call::kPrefill), (std::vector<std::vector<int>>{{3}, {3}, {2}}));
}

TEST_F(SchedulerTest, ChunkedAndWholeScoresAgree) {
  const std::vector<int32_t> tokens = Ids("abcdxyzabqrstuvw");
  std::vector<ScoreResult> results;
  for (int chunk : {0, 1, 4, 5}) {
    SchedulerOptions o = Options();
    o.prefill_chunk_tokens = chunk;
    Start(o);
    Result<ScoreResult> score;
    ASSERT_TRUE(scheduler_->SubmitScore(tokens, 3, score.Callback()).ok());
    score.done.WaitForNotification();
    ASSERT_TRUE(score.value.ok()) << score.value.status();
    results.push_back(*score.value);
    scheduler_.reset();
  }
  // Tokens 3.. given the ones before: d after c is likely, x after d not, ...
  std::vector<float> expected;
  double total = 0;
  for (size_t j = 3; j < tokens.size(); ++j) {
    expected.push_back(FakeEngine::LogProb(tokens[j - 1], tokens[j]));
    total += expected.back();
  }
  for (const ScoreResult& r : results) {
    EXPECT_EQ(r.token_ids, std::vector<int32_t>(tokens.begin() + 3, tokens.end()));
    EXPECT_EQ(r.logprobs, expected);
    EXPECT_DOUBLE_EQ(r.total, total);
  }
}

TEST_F(SchedulerTest, EmbedReturnsTheStateAfterEveryToken) {
  SchedulerOptions o = Options();
  o.prefill_chunk_tokens = 4;
  Start(o);
  Result<EmbedResult> embed;
  ASSERT_TRUE(scheduler_->SubmitEmbed(Ids("abcdefghij"), embed.Callback()).ok());
  embed.done.WaitForNotification();
  ASSERT_TRUE(embed.value.ok());
  EXPECT_EQ(embed.value->state.layers[0].h[0], 10.0f);  // tokens consumed
  EXPECT_EQ(embed.value->state.layers[0].h[1], 9.0f);   // the last one, 'j'
}

TEST_F(SchedulerTest, ShortPromptJoinsABusyBatchThroughSteps) {
  SchedulerOptions o = Options();
  o.step_join_min_active = 1;
  o.step_join_max_prompt = 8;
  Start(o);
  RecordingSink& running = NewSink("running");
  RecordingSink& joining = NewSink("joining");
  controls_->WedgeSteps(true);
  Submit(&running, "a", 100000);
  controls_->AwaitWedged();
  controls_->ClearCalls();
  Submit(&joining, "wxyz", 3);
  controls_->WedgeSteps(false);
  joining.AwaitClosed();
  EXPECT_TRUE(joining.status().ok());
  EXPECT_EQ(joining.text(), "abc");  // after 'z' comes 'a'
  EXPECT_TRUE(CallsOf(Call::kPrefill).empty());
}

TEST_F(SchedulerTest, ASlowReaderPausesItsSequenceUntilWoken) {
  SchedulerOptions o = Options();
  o.max_pending_tokens = 4;
  Start(o);
  RecordingSink& slow = NewSink("slow");
  RecordingSink& other = NewSink("other");
  slow.SetPending(4);  // paused from its first token on
  Submit(&slow, "a", 10);
  Submit(&other, "a", 30);
  other.AwaitClosed();
  EXPECT_TRUE(other.status().ok());
  EXPECT_FALSE(slow.closed());
  EXPECT_LE(slow.tokens(), 2);
  slow.SetPending(0);
  scheduler_->Wake();
  slow.AwaitClosed();
  EXPECT_TRUE(slow.status().ok());
  EXPECT_EQ(slow.text(), Continuation('a', 10));
}

TEST_F(SchedulerTest, StopEndsQueuedPrefillingAndRunningWork) {
  SchedulerOptions o = Options(/*max_batch=*/2);
  o.prefill_chunk_tokens = 2;
  o.max_queue = 1 << 20;
  Start(o);
  RecordingSink& running = NewSink("running");
  RecordingSink& prefilling = NewSink("prefilling");
  RecordingSink& queued = NewSink("queued");
  Submit(&running, "a", 100000);
  running.AwaitTokens(1);
  controls_->WedgePrefills(true);
  Submit(&prefilling, "abcdefghijkl", 5);
  controls_->AwaitWedged();  // its first chunk
  Submit(&queued, "a", 5);   // both slots are taken
  Result<ScoreResult> score;
  ASSERT_TRUE(scheduler_->SubmitScore(Ids("abcdefgh"), 1, score.Callback()).ok());
  std::thread stopper([&] { scheduler_->Stop(absl::UnavailableError("going away")); });
  // Once Stop took effect submissions are refused; the loop is still wedged,
  // so the probes queued until then cannot start either.
  std::vector<RecordingSink*> probes;
  for (;;) {
    RecordingSink& probe = NewSink("probe");
    const absl::Status s = scheduler_->SubmitGeneration(Job(&probe, "a", 1));
    if (s.code() == absl::StatusCode::kUnavailable) break;
    ASSERT_TRUE(s.ok()) << s;
    probes.push_back(&probe);
  }
  controls_->WedgePrefills(false);
  stopper.join();
  probes.push_back(&running);
  probes.push_back(&prefilling);
  probes.push_back(&queued);
  for (RecordingSink* s : probes) {
    ASSERT_TRUE(s->closed());
    EXPECT_EQ(s->status().code(), absl::StatusCode::kUnavailable);
    EXPECT_EQ(s->status().message(), "going away");
    EXPECT_EQ(s->last().finish_reason(), v1::FINISH_REASON_SHUTDOWN);
  }
  EXPECT_EQ(prefilling.last().usage().generated_tokens(), 0);
  ASSERT_TRUE(score.done.HasBeenNotified());
  EXPECT_EQ(score.value.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(observer_.finished(), static_cast<int>(probes.size()));
}

TEST_F(SchedulerTest, InvalidOptionsAreRefused) {
  controls_ = std::make_shared<FakeEngine::Controls>();
  SchedulerOptions o = Options();
  o.prefill_chunk_tokens = -1;
  auto s = ModelScheduler::Create("fake", std::make_unique<FakeEngine>(controls_),
                                  tokenizer_.get(), o);
  EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.status().message().find("prefill_chunk_tokens (-1)"), std::string::npos);
}

}  // namespace
}  // namespace lstmserve::testing
