// Start here (server layer): ModelScheduler runs one model's engine on its
// own thread with continuous batching. Each loop iteration
//   1. admits queued work (TakeWork, Admit): new generations while batch
//      slots are free, Score/Embed requests while fewer than max_batch
//      prompts are being prefilled; queued requests that were cancelled
//      or expired end here without running;
//   2. prefills ONE CHUNK of every prompt in prefill (PrefillChunk: build
//      the batched engine call, run it, deliver what completed) — see
//      SchedulerOptions::prefill_chunk_tokens; a prompt starts from the
//      longest prefix of it in the prefix-state cache (PrefixCache: states
//      stored every SchedulerOptions::prefix_cache_interval tokens and at
//      each prompt's end, chunks ending at those points cache on or off),
//      or from the client's portable state;
//   3. ends sequences that were cancelled, passed their deadline, or
//      finished (prompts in prefill too, Score and Embed included: they stop
//      at this chunk boundary); pauses those whose reader is behind (see
//      SchedulerOptions::max_pending_tokens) and resumes them when it catches up;
//   4. advances every other active sequence by one token in ONE engine Step,
//      samples each with its own Sampler and posts the text to its sink.
// A new request therefore joins at the next step, no request waits for
// another to finish, and a long prompt stalls the running streams for one
// chunk per step rather than for its whole length.
//
// Thread-safety: Submit*, Wake, WaitUntilIdle, load and Stop are
// thread-safe and never wait for inference (they take a short lock). The
// engine, the sequences and every sink/callback invocation live on the
// scheduler thread.
#ifndef LSTMSERVE_SERVER_SCHEDULER_H_
#define LSTMSERVE_SERVER_SCHEDULER_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "models/engine.h"
#include "models/tokenizer.h"
#include "server/generation.h"
#include "server/options.h"
#include "server/prefix_cache.h"
#include "server/scheduler_observer.h"
#include "server/sequence.h"

namespace lstmserve {

// A Score or Embed text after validation: the tokens fed to the model, from
// `start_state` (a client's portable state, whose last token is then
// tokens[0]) or from zeros. Plain value.
struct TextInput {
  std::vector<int32_t> tokens;  // >= 1
  std::optional<SequenceState> start_state;
  // Fill the result's `before_last`: the state after every token but the
  // last (a portable state's content, server/state_codec.h).
  bool return_state = false;
};

struct ScoreResult {
  std::vector<int32_t> token_ids;   // the scored tokens
  std::vector<float> logprobs;      // one per scored token
  double total = 0.0;
  std::optional<SequenceState> before_last;  // with return_state
};
struct EmbedResult {
  SequenceState state;                       // after every token
  std::optional<SequenceState> before_last;  // with return_state
};
// When a Score or Embed is no longer wanted: the client went away or its
// deadline passed. The scheduler looks while the request is queued and at
// every prefill chunk boundary, and then ends it (CANCELLED or
// DEADLINE_EXCEEDED, naming `request_id`) without computing the rest. Plain
// value; `cancelled` (empty: never) is called on the scheduler thread, at
// times under the scheduler's lock, never after the request's done callback:
// it must be cheap, thread-safe and must not call into the scheduler.
struct TextControl {
  std::string request_id;  // names the request in the error
  absl::Time deadline = absl::InfiniteFuture();
  std::function<bool()> cancelled;
};

// Called once, on the scheduler thread; must not block.
using ScoreDone = std::function<void(absl::StatusOr<ScoreResult>)>;
using EmbedDone = std::function<void(absl::StatusOr<EmbedResult>)>;

class ModelScheduler {
 public:
  // Starts the scheduling thread. Owns `engine`; `tokenizer` and `observer`
  // (may be null) are borrowed and must outlive the scheduler.
  static absl::StatusOr<std::unique_ptr<ModelScheduler>> Create(
      std::string model_name, std::unique_ptr<InferenceEngine> engine,
      const Tokenizer* tokenizer, const SchedulerOptions& options,
      SchedulerObserver* observer = nullptr);
  // Stops (as Stop with UNAVAILABLE) if not stopped yet.
  ~ModelScheduler();

  ModelScheduler(const ModelScheduler&) = delete;
  ModelScheduler& operator=(const ModelScheduler&) = delete;

  // Queues a generation. OK: the scheduler owns the job and will call
  // job->sink->Close exactly once. Otherwise the job is dropped without
  // touching its sink and the caller ends the RPC: RESOURCE_EXHAUSTED when
  // max_queue requests already wait, UNAVAILABLE after Stop.
  absl::Status SubmitGeneration(std::unique_ptr<GenerationJob> job);
  // Scores input.tokens[first_scored..] given the tokens before each (1 <=
  // first_scored <= tokens.size()). OK: `done` will be called once (with
  // CANCELLED or DEADLINE_EXCEEDED when `control` says it ended first).
  absl::Status SubmitScore(TextInput input, int first_scored, ScoreDone done,
                           TextControl control = {});
  // The state after input.tokens. OK: `done` will be called once (as above).
  absl::Status SubmitEmbed(TextInput input, EmbedDone done, TextControl control = {});
  // The same from zeros, without a returned state.
  absl::Status SubmitScore(std::vector<int32_t> tokens, int first_scored, ScoreDone done,
                           TextControl control = {}) {
    return SubmitScore(TextInput{std::move(tokens), std::nullopt, false}, first_scored,
                       std::move(done), std::move(control));
  }
  absl::Status SubmitEmbed(std::vector<int32_t> tokens, EmbedDone done,
                           TextControl control = {}) {
    return SubmitEmbed(TextInput{std::move(tokens), std::nullopt, false}, std::move(done),
                       std::move(control));
  }

  // Makes the loop look at its queue and sequences now (after a
  // cancellation, or when a paused stream's reader caught up).
  void Wake();
  // A stream's sink calls Wake when its pending tokens fall to this.
  int resume_threshold() const { return options_.max_pending_tokens / 2; }

  // Waits until nothing is queued or running, or `deadline`; true if idle.
  bool WaitUntilIdle(absl::Time deadline);
  // Ends every queued and active request with `status` (generations get
  // FINISH_REASON_SHUTDOWN) and joins the thread. Later submissions get
  // UNAVAILABLE. Idempotent.
  void Stop(const absl::Status& status);

  struct Load {
    int queued = 0;
    int busy = 0;  // admitted and not finished (prefilling or generating)
  };
  Load load() const;
  const std::string& model_name() const { return model_name_; }
  // When the scheduling loop last started an iteration (it iterates at least
  // every 100 ms while running, idle or not), or the start time before the
  // first one. A loop stuck in an engine call stops moving this: the
  // liveness check (server/liveness.h) reads it. Thread-safe.
  absl::Time last_progress() const {
    return absl::FromUnixNanos(last_progress_ns_.load(std::memory_order_relaxed));
  }
  int max_batch() const { return options_.max_batch; }
  // The prefix-state cache; null when SchedulerOptions::prefix_cache_bytes
  // is 0. Thread-safe.
  const PrefixCache* prefix_cache() const { return prefix_cache_.get(); }

 private:
  struct ScoreWork {
    static constexpr const char* kKind = "Score";
    TextInput input;
    int first_scored = 1;
    ScoreDone done;
    TextControl control;
  };
  struct EmbedWork {
    static constexpr const char* kKind = "Embed";
    TextInput input;
    EmbedDone done;
    TextControl control;
  };
  // One queued request.
  using Work = std::variant<std::unique_ptr<GenerationJob>, ScoreWork, EmbedWork>;
  // A request whose prompt is being prefilled chunk by chunk (scheduler.cc).
  struct PrefillTask;

  ModelScheduler(std::string model_name, std::unique_ptr<InferenceEngine> engine,
                 const Tokenizer* tokenizer, const SchedulerOptions& options,
                 SchedulerObserver* observer);
  absl::Status Enqueue(Work work);
  bool HasWorkLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool IdleLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Loop();
  // Waits for work when nothing can run, then takes off the queue what may
  // start now (and queued requests that ended: cancelled or expired);
  // false when stopping.
  bool TakeWork(std::vector<Work>* taken);
  // Turns taken work into running work: ends the requests that ended
  // while queued, puts prompts that join through steps into the batch and
  // the rest into prefill.
  void Admit(std::vector<Work> taken);
  // Whether a new generation's prompt is fed through the batch's Steps
  // (SchedulerOptions::step_join_max_prompt) rather than prefilled.
  bool JoinsThroughSteps(int prompt_tokens) const;
  // One chunk of every prompt in prefill_: builds the engine call, runs it,
  // delivers what completed (first tokens, Score and Embed results).
  void PrefillChunk();
  // Starts `task` (not yet run) from the longest prefix of at most
  // `max_length` of its tokens in the prefix cache, and counts the lookup.
  void LookUpPrefix(PrefillTask* task, int max_length);
  // Stores a completed task's checkpoints in the prefix cache.
  void StoreCheckpoints(PrefillTask* task);
  void Sweep(absl::Time now);
  void Step();
  // Slots held (generating and prefilling generations) and requests in work.
  int SlotsInUse() const;
  // The load figures (busy_, free_slots_), with `taken` requests just taken
  // off the queue of which `taken_slots` hold a slot. The one place they
  // are computed.
  void UpdateLoadLocked(int taken, int taken_slots) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Shutdown();

  const std::string model_name_;
  const std::unique_ptr<InferenceEngine> engine_;
  const Tokenizer* const tokenizer_;
  const SchedulerOptions options_;  // max_batch clamped to the engine's
  SchedulerObserver* const observer_;
  SchedulerObserver default_observer_;
  const int vocab_size_;
  const std::unique_ptr<PrefixCache> prefix_cache_;  // null: off

  mutable absl::Mutex mu_;
  std::deque<Work> queue_ ABSL_GUARDED_BY(mu_);
  int queued_prefills_ ABSL_GUARDED_BY(mu_) = 0;  // Score/Embed entries in queue_
  int free_slots_ ABSL_GUARDED_BY(mu_);            // batch slots not held
  int prefill_room_ ABSL_GUARDED_BY(mu_);          // prefill tasks that may still start
  int busy_ ABSL_GUARDED_BY(mu_) = 0;
  bool wake_ ABSL_GUARDED_BY(mu_) = false;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status stop_status_ ABSL_GUARDED_BY(mu_);

  // Scheduler thread only.
  std::vector<std::unique_ptr<Sequence>> active_;  // generating (or joining through steps)
  std::vector<std::unique_ptr<PrefillTask>> prefill_;  // at most max_batch, oldest first
  std::vector<float> step_logprobs_;  // [N, V]
  std::vector<int32_t> step_tokens_;
  std::vector<SequenceState*> step_states_;

  std::atomic<int64_t> last_progress_ns_{absl::ToUnixNanos(absl::Now())};

  std::thread thread_;  // last: starts after everything above exists
};

}  // namespace lstmserve

#endif  // LSTMSERVE_SERVER_SCHEDULER_H_
