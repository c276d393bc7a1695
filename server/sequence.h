// Sequence: one generation while it is in a scheduler's batch — its LSTM
// state, how much of its prompt the state holds, its sampler, text assembly,
// stop matching and stream interval, and the bookkeeping for the final
// message. Owned and used only by the scheduler thread; thread-compatible.
//
// The prompt reaches the state in one of two ways, which the scheduler picks
// (ModelScheduler::JoinsThroughSteps): in prefill chunks (PrefillDone), or one
// token per batched Step alongside the running streams (StepDone while
// in_prompt()). Either way prompt_fed() counts the prompt tokens in the
// state, and the first token is sampled once the whole prompt is in.
#ifndef LSTMSERVE_SERVER_SEQUENCE_H_
#define LSTMSERVE_SERVER_SEQUENCE_H_

#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "models/lstm_state.h"
#include "models/sampler.h"
#include "models/tokenizer.h"
#include "server/generation.h"
#include "server/scheduler_observer.h"
#include "server/stop_matcher.h"

namespace lstmserve {

class Sequence {
 public:
  // `tokenizer` and `observer` (told of each token and of the end) are
  // borrowed and outlive the sequence.
  // `proj_size` > 0: a projected LSTM (h has proj_size floats).
  Sequence(std::unique_ptr<GenerationJob> job, const Tokenizer* tokenizer,
           SchedulerObserver* observer, int num_layers, int hidden_size, int proj_size,
           absl::Time admitted);

  const GenerationSpec& spec() const { return job_->spec; }
  SequenceState* state() { return &state_; }
  GenerationSink* sink() const { return job_->sink; }
  absl::Time deadline() const { return job_->deadline; }
  int prompt_size() const { return static_cast<int>(job_->spec.prompt.size()); }
  // Prompt tokens already in state().
  int prompt_fed() const { return prompt_fed_; }
  bool in_prompt() const { return prompt_fed_ < prompt_size(); }
  // The token the next Step feeds: the next prompt token while in_prompt(),
  // then the last sampled one.
  int32_t next_input() const {
    return in_prompt() ? job_->spec.prompt[prompt_fed_] : last_token_;
  }
  bool finished() const { return finished_; }

  // After a Prefill fed the next `tokens` prompt tokens into state():
  // advances; when that completes the prompt, samples the first token from
  // `last_logprobs` (the [V] row after the prompt's last token) as Consume.
  void PrefillDone(int tokens, const float* last_logprobs, int vocab_size, absl::Time now);
  // After a Step fed next_input(): advances through the prompt, or (after
  // the last prompt token, and for every generated token) Consumes.
  void StepDone(const float* logprobs, int vocab_size, absl::Time now);

  // Ends the generation early: sends the last message with `reason` and ends
  // the RPC with `status`. No-op when already finished.
  void Finish(v1::FinishReason reason, const absl::Status& status, absl::Time now);

  // Pausing for a slow reader (see SchedulerOptions::max_pending_tokens).
  bool paused = false;

 private:
  // Samples the next token from `logprobs` (a [V] row), sends the new text
  // to the sink and, when the generation is complete (max_tokens or a stop
  // string), finishes it.
  void Consume(const float* logprobs, int vocab_size, absl::Time now);
  v1::GenerateResponse NewDelta() const;
  // Sends `delta` (one generated token's output) now, or holds it until
  // the stream interval is full (GenerationSpec::stream_interval); the
  // first token is never held.
  void Deliver(v1::GenerateResponse delta);
  void Finish(v1::FinishReason reason, const absl::Status& status, absl::Time now,
              v1::GenerateResponse last);
  void AddToken(int32_t id, const float* logprobs, int vocab_size, v1::GenerateResponse* delta);

  std::unique_ptr<GenerationJob> job_;
  const Tokenizer* tokenizer_;
  SchedulerObserver* observer_;
  SequenceState state_;
  Sampler sampler_;
  std::unique_ptr<TextDecoder> text_;  // this generation's streamed text
  StopMatcher stop_;
  absl::Time admitted_;
  std::optional<absl::Time> first_token_;
  absl::Time last_token_time_;
  int generated_ = 0;
  // Output not yet sent (stream interval) and the tokens it covers; what is
  // held when the generation ends goes out with the last message.
  std::optional<v1::GenerateResponse> held_;
  int held_tokens_ = 0;
  int32_t last_token_ = 0;
  int prompt_fed_ = 0;
  bool finished_ = false;
};

// Ends a generation that never joined a batch (cancelled, expired or shut
// down while queued) without building a Sequence: the same last message
// (`reason`, usage with no generated tokens, queue time up to `now`) and the
// same observer call as Sequence::Finish, then job->sink->Close(status).
void FinishUnstarted(const GenerationJob& job, v1::FinishReason reason, const absl::Status& status,
                     SchedulerObserver* observer, absl::Time now);

}  // namespace lstmserve

#endif  // LSTMSERVE_SERVER_SEQUENCE_H_
