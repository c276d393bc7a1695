// Sequence: one generation while it is in a scheduler's batch — its LSTM
// state, sampler, text assembly and stop matching, and the bookkeeping for
// the final message. Owned and used only by the scheduler thread;
// thread-compatible.
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
  // The token to feed to the next Step: the next prompt token while the
  // prompt is fed through steps (BeginPromptInSteps), then the last sampled.
  int32_t next_input() const {
    return prompt_pos_ < prompt_end_ ? job_->spec.prompt[prompt_pos_] : last_token_;
  }
  // Feeds the prompt through Steps instead of a prefill: until the last
  // prompt token has been stepped, StepDone only advances.
  void BeginPromptInSteps() { prompt_end_ = static_cast<int>(job_->spec.prompt.size()); }
  bool in_prompt() const { return prompt_pos_ < prompt_end_; }
  bool finished() const { return finished_; }

  // Samples the next token from `logprobs` (a [V] row: the prompt's after
  // prefill, then each Step's), sends the new text to the sink and, when the
  // generation is complete (max_tokens or a stop string), finishes it.
  void Consume(const float* logprobs, int vocab_size, absl::Time now);
  // After a Step fed next_input(): advances through the prompt, or (after
  // the last prompt token, and for every generated token) Consumes.
  void StepDone(const float* logprobs, int vocab_size, absl::Time now);

  // Ends the generation early: sends the last message with `reason` and ends
  // the RPC with `status`. No-op when already finished.
  void Finish(v1::FinishReason reason, const absl::Status& status, absl::Time now);

  // Pausing for a slow reader (see SchedulerOptions::max_pending_tokens).
  bool paused = false;

 private:
  v1::GenerateResponse NewDelta() const;
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
  int32_t last_token_ = 0;
  int prompt_pos_ = 0;  // prompt tokens stepped so far (prompt fed through steps)
  int prompt_end_ = 0;  // prompt length when fed through steps, else 0
  bool finished_ = false;
};

}  // namespace lstmserve

#endif  // LSTMSERVE_SERVER_SEQUENCE_H_
