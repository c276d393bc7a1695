#include "server/sequence.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "server/response_merge.h"
#include "server/state_codec.h"

namespace lstmserve {
namespace {

void SetDuration(absl::Duration d, google::protobuf::Duration* out) {
  const int64_t ns = absl::ToInt64Nanoseconds(d);
  out->set_seconds(ns / 1000000000);
  out->set_nanos(static_cast<int32_t>(ns % 1000000000));
}

// The fields of the last message every generation ends with.
void FillLast(const GenerationJob& job, v1::FinishReason reason, int generated,
              const std::optional<absl::Time>& first_token, absl::Time admitted, absl::Time now,
              v1::GenerateResponse* last) {
  last->set_request_id(job.spec.request_id);
  last->set_finish_reason(reason);
  last->set_seed(job.spec.sampling.seed);
  v1::Usage* usage = last->mutable_usage();
  // The client's prompt: a start state's last token is not part of it.
  usage->set_prompt_tokens(static_cast<int32_t>(job.spec.prompt.size()) -
                           (job.spec.start_state ? 1 : 0));
  usage->set_generated_tokens(generated);
  if (first_token) SetDuration(*first_token - job.arrival, usage->mutable_time_to_first_token());
  SetDuration(now - job.arrival, usage->mutable_total_time());
  SetDuration(admitted - job.arrival, usage->mutable_queue_time());
}

}  // namespace

void FinishUnstarted(const GenerationJob& job, v1::FinishReason reason, const absl::Status& status,
                     SchedulerObserver* observer, absl::Time now) {
  v1::GenerateResponse last;
  FillLast(job, reason, /*generated=*/0, std::nullopt, /*admitted=*/now, now, &last);
  observer->OnFinished(reason, status.code(), 0);
  job.sink->Close(std::move(last), status);
}

Sequence::Sequence(std::unique_ptr<GenerationJob> job, const Tokenizer* tokenizer,
                   SchedulerObserver* observer, int num_layers, int hidden_size,
                   int proj_size, absl::Time admitted)
    : job_(std::move(job)),
      tokenizer_(tokenizer),
      observer_(observer),
      state_(job_->spec.start_state ? *job_->spec.start_state
                                    : SequenceState::Zeros(num_layers, hidden_size, proj_size)),
      sampler_(job_->spec.sampling),
      text_(tokenizer->NewDecoder()),
      stop_(job_->spec.stops),
      admitted_(admitted) {}

v1::GenerateResponse Sequence::NewDelta() const {
  v1::GenerateResponse delta;
  delta.set_request_id(job_->spec.request_id);
  return delta;
}

void Sequence::AddToken(int32_t id, const float* logprobs, int vocab_size,
                        v1::GenerateResponse* delta) {
  const GenerationSpec& spec = job_->spec;
  if (!spec.return_tokens && spec.top_logprobs == 0) return;
  v1::GeneratedToken* token = delta->add_tokens();
  token->set_token_id(id);
  token->set_logprob(logprobs[id]);
  if (spec.top_logprobs == 0) return;
  // The k most likely ids, best first (ties by id, as the sampler orders).
  const int k = std::min(spec.top_logprobs, vocab_size);
  std::vector<int32_t> ids(vocab_size);
  for (int i = 0; i < vocab_size; ++i) ids[i] = i;
  std::partial_sort(ids.begin(), ids.begin() + k, ids.end(), [&](int32_t a, int32_t b) {
    return logprobs[a] > logprobs[b] || (logprobs[a] == logprobs[b] && a < b);
  });
  for (int i = 0; i < k; ++i) {
    v1::TokenAlternative* alt = token->add_top_logprobs();
    alt->set_token_id(ids[i]);
    alt->set_token_text(tokenizer_->TokenText(ids[i]));
    alt->set_logprob(logprobs[ids[i]]);
  }
}

void Sequence::Consume(const float* logprobs, int vocab_size, absl::Time now) {
  if (finished_) return;
  const int32_t id = sampler_.Sample(logprobs, vocab_size);
  last_token_ = id;
  ++generated_;
  if (!first_token_) {
    first_token_ = now;
    observer_->OnFirstToken(now - job_->arrival);
  } else {
    observer_->OnToken(now - last_token_time_);
  }
  last_token_time_ = now;
  v1::GenerateResponse delta = NewDelta();
  AddToken(id, logprobs, vocab_size, &delta);
  std::string* text = delta.mutable_text();
  if (stop_.Push(text_->Push(id), text)) {
    delta.set_finish_reason(v1::FINISH_REASON_STOP);
  } else if (generated_ >= job_->spec.max_tokens) {
    // A byte model may end inside a character: Flush yields U+FFFD for it.
    if (stop_.Push(text_->Flush(), text)) {
      delta.set_finish_reason(v1::FINISH_REASON_STOP);
    } else {
      stop_.Flush(text);
      delta.set_finish_reason(v1::FINISH_REASON_LENGTH);
    }
  }
  if (delta.finish_reason() == v1::FINISH_REASON_UNSPECIFIED) {
    Deliver(std::move(delta));
    return;
  }
  const v1::FinishReason reason = delta.finish_reason();
  Finish(reason, absl::OkStatus(), now, std::move(delta));
}

void Sequence::Deliver(v1::GenerateResponse delta) {
  ++held_tokens_;
  if (held_.has_value()) {
    MergeResponse(std::move(delta), &*held_);
  } else {
    held_ = std::move(delta);
  }
  // The first token goes at once, later ones when the interval is full.
  if (generated_ > 1 && held_tokens_ < job_->spec.stream_interval) return;
  if (!held_->text().empty() || held_->tokens_size() > 0) {
    job_->sink->Send(std::move(*held_), held_tokens_);
  }
  held_.reset();
  held_tokens_ = 0;
}

void Sequence::PrefillDone(int tokens, const float* last_logprobs, int vocab_size,
                           absl::Time now) {
  prompt_fed_ = std::min(prompt_fed_ + tokens, prompt_size());
  if (!in_prompt()) Consume(last_logprobs, vocab_size, now);
}

void Sequence::StepDone(const float* logprobs, int vocab_size, absl::Time now) {
  if (in_prompt() && ++prompt_fed_ < prompt_size()) return;
  Consume(logprobs, vocab_size, now);
}

void Sequence::Finish(v1::FinishReason reason, const absl::Status& status, absl::Time now) {
  Finish(reason, status, now, NewDelta());
}

void Sequence::Finish(v1::FinishReason reason, const absl::Status& status, absl::Time now,
                      v1::GenerateResponse last) {
  if (finished_) return;
  finished_ = true;
  FillLast(*job_, reason, generated_, first_token_, admitted_, now, &last);
  // The state after everything consumed: the prompt and every generated
  // token, the last one (which state_ has not been fed) included. Also when
  // a stop string ended the generation: then the tokens that made the stop
  // string (and any text after it in the last token) are part of the text
  // the state continues, although the response's text omits them.
  if (job_->return_state != nullptr && status.ok() && generated_ > 0 &&
      (reason == v1::FINISH_REASON_LENGTH || reason == v1::FINISH_REASON_STOP)) {
    last.set_state(job_->return_state->Encode(
        {job_->spec.tokens_before + static_cast<int64_t>(job_->spec.prompt.size()) + generated_,
         last_token_, state_}));
  }
  // Output held for the stream interval goes first, in the same message.
  if (held_.has_value()) {
    MergeResponse(std::move(last), &*held_);
    last = std::move(*held_);
    held_.reset();
  }
  observer_->OnFinished(reason, status.code(), generated_);
  job_->sink->Close(std::move(last), status);
}

}  // namespace lstmserve
