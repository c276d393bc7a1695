#include "server/scheduler.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"

namespace lstmserve {

// What one iteration took off the queue.
struct ModelScheduler::Batch {
  std::vector<std::unique_ptr<GenerationJob>> generations;
  std::vector<std::unique_ptr<GenerationJob>> cancelled;  // cancelled while queued
  std::vector<std::unique_ptr<ScoreWork>> scores;
  std::vector<std::unique_ptr<EmbedWork>> embeds;
  bool empty() const {
    return generations.empty() && cancelled.empty() && scores.empty() && embeds.empty();
  }
};

absl::StatusOr<std::unique_ptr<ModelScheduler>> ModelScheduler::Create(
    std::string model_name, std::unique_ptr<InferenceEngine> engine, const Tokenizer* tokenizer,
    const SchedulerOptions& options, SchedulerObserver* observer) {
  if (engine == nullptr || tokenizer == nullptr) {
    return absl::InvalidArgumentError("ModelScheduler needs an engine and a tokenizer");
  }
  if (options.max_batch < 1 || options.max_queue < 1 || options.max_pending_tokens < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_batch (", options.max_batch, "), max_queue (", options.max_queue,
                     ") and max_pending_tokens (", options.max_pending_tokens,
                     ") must be >= 1"));
  }
  if (options.step_join_max_prompt < 0 || options.step_join_min_active < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("step_join_max_prompt (", options.step_join_max_prompt,
                     ") and step_join_min_active (", options.step_join_min_active,
                     ") must be >= 0"));
  }
  if (tokenizer->vocab_size() != engine->config().vocab_size) {
    return absl::InvalidArgumentError(
        absl::StrCat("model '", model_name, "': tokenizer has ", tokenizer->vocab_size(),
                     " tokens but the engine ", engine->config().vocab_size));
  }
  std::unique_ptr<ModelScheduler> s(new ModelScheduler(std::move(model_name), std::move(engine),
                                                       tokenizer, options, observer));
  s->thread_ = std::thread([p = s.get()] { p->Loop(); });
  return s;
}

ModelScheduler::ModelScheduler(std::string model_name, std::unique_ptr<InferenceEngine> engine,
                               const Tokenizer* tokenizer, const SchedulerOptions& options,
                               SchedulerObserver* observer)
    : model_name_(std::move(model_name)),
      engine_(std::move(engine)),
      tokenizer_(tokenizer),
      options_([&] {
        SchedulerOptions o = options;
        o.max_batch = std::min(o.max_batch, engine_->max_batch());
        return o;
      }()),
      observer_(observer != nullptr ? observer : &default_observer_),
      vocab_size_(engine_->config().vocab_size),
      free_slots_(options_.max_batch) {}

ModelScheduler::~ModelScheduler() {
  Stop(absl::UnavailableError("the server is shutting down"));
}

absl::Status ModelScheduler::Enqueue(Work work) {
  absl::MutexLock lock(&mu_);
  if (stop_) return absl::UnavailableError("the server is shutting down");
  if (static_cast<int>(queue_.size()) >= options_.max_queue) {
    observer_->OnRejected();
    return absl::ResourceExhaustedError(
        absl::StrCat("model '", model_name_, "' has ", queue_.size(),
                     " requests waiting; the limit is ", options_.max_queue,
                     " (--max-queue); retry later"));
  }
  if (work.generation == nullptr) ++queued_prefills_;
  queue_.push_back(std::move(work));
  return absl::OkStatus();
}

absl::Status ModelScheduler::SubmitGeneration(std::unique_ptr<GenerationJob> job) {
  Work work;
  work.generation = std::move(job);
  return Enqueue(std::move(work));
}

absl::Status ModelScheduler::SubmitScore(std::vector<int32_t> tokens, int first_scored,
                                         ScoreDone done) {
  if (first_scored < 1 || first_scored > static_cast<int>(tokens.size())) {
    return absl::InvalidArgumentError("SubmitScore: first_scored out of range");
  }
  Work work;
  work.score = std::make_unique<ScoreWork>(ScoreWork{std::move(tokens), first_scored,
                                                     std::move(done)});
  return Enqueue(std::move(work));
}

absl::Status ModelScheduler::SubmitEmbed(std::vector<int32_t> tokens, EmbedDone done) {
  if (tokens.empty()) return absl::InvalidArgumentError("SubmitEmbed: no tokens");
  Work work;
  work.embed = std::make_unique<EmbedWork>(EmbedWork{std::move(tokens), std::move(done)});
  return Enqueue(std::move(work));
}

void ModelScheduler::Wake() {
  absl::MutexLock lock(&mu_);
  wake_ = true;
}

bool ModelScheduler::HasWorkLocked() const {
  return stop_ || wake_ || queued_prefills_ > 0 || (!queue_.empty() && free_slots_ > 0);
}

bool ModelScheduler::IdleLocked() const { return queue_.empty() && busy_ == 0; }

bool ModelScheduler::WaitUntilIdle(absl::Time deadline) {
  absl::MutexLock lock(&mu_);
  return mu_.AwaitWithDeadline(absl::Condition(this, &ModelScheduler::IdleLocked), deadline);
}

ModelScheduler::Load ModelScheduler::load() const {
  absl::MutexLock lock(&mu_);
  return Load{static_cast<int>(queue_.size()), busy_};
}

void ModelScheduler::Stop(const absl::Status& status) {
  {
    absl::MutexLock lock(&mu_);
    if (!stop_) {
      stop_ = true;
      stop_status_ = status;
    }
  }
  if (thread_.joinable()) thread_.join();
}

bool ModelScheduler::TakeWork(Batch* batch) {
  const bool runnable = std::any_of(active_.begin(), active_.end(),
                                    [](const auto& s) { return !s->paused; });
  absl::MutexLock lock(&mu_);
  free_slots_ = options_.max_batch - static_cast<int>(active_.size());
  if (!runnable) {
    // Nothing to step: sleep until there is work. The timeout bounds how late
    // a paused sequence notices its deadline if no cancellation arrives.
    mu_.AwaitWithTimeout(absl::Condition(this, &ModelScheduler::HasWorkLocked),
                         absl::Milliseconds(100));
  }
  wake_ = false;
  if (stop_) return false;
  int prefill_items = 0;
  for (auto it = queue_.begin(); it != queue_.end() && prefill_items < options_.max_batch;) {
    if (it->generation != nullptr) {
      if (it->generation->sink->cancelled()) {
        batch->cancelled.push_back(std::move(it->generation));
      } else if (free_slots_ > 0) {
        batch->generations.push_back(std::move(it->generation));
        --free_slots_;
        ++prefill_items;
      } else {
        ++it;
        continue;
      }
    } else {
      if (it->score != nullptr) batch->scores.push_back(std::move(it->score));
      if (it->embed != nullptr) batch->embeds.push_back(std::move(it->embed));
      --queued_prefills_;
      ++prefill_items;
    }
    it = queue_.erase(it);
  }
  busy_ = static_cast<int>(active_.size() + batch->generations.size() + batch->scores.size() +
                           batch->embeds.size());
  return true;
}

void ModelScheduler::Loop() {
  for (;;) {
    last_progress_ns_.store(absl::ToUnixNanos(absl::Now()), std::memory_order_relaxed);
    Batch batch;
    if (!TakeWork(&batch)) break;
    for (auto& job : batch.cancelled) {
      const absl::Time now = absl::Now();
      const bool expired = now >= job->deadline;  // gRPC cancels expired calls too
      Sequence(std::move(job), tokenizer_, observer_, 1, 1, 0, now)
          .Finish(expired ? v1::FINISH_REASON_DEADLINE : v1::FINISH_REASON_CANCELLED,
                  expired ? absl::DeadlineExceededError("the deadline passed while queued")
                          : absl::CancelledError("cancelled while queued"),
                  now);
    }
    if (!batch.empty()) Prefill(&batch);
    Sweep(absl::Now());
    Step();
    Sweep(absl::Now());
    int queued;
    {
      absl::MutexLock lock(&mu_);
      busy_ = static_cast<int>(active_.size());
      free_slots_ = options_.max_batch - busy_;
      queued = static_cast<int>(queue_.size());
    }
    observer_->OnLoad(queued, static_cast<int>(active_.size()));
  }
  Shutdown();
}

void ModelScheduler::Prefill(Batch* batch) {
  const ModelConfig& config = engine_->config();
  const int V = vocab_size_;
  const absl::Time admitted = absl::Now();
  std::vector<std::unique_ptr<Sequence>> fresh;
  // A busy batch takes short prompts through its steps (see
  // SchedulerOptions::step_join_max_prompt) instead of stalling for a prefill.
  const bool busy = static_cast<int>(active_.size()) >= options_.step_join_min_active;
  for (auto& job : batch->generations) {
    observer_->OnAdmitted(static_cast<int>(job->spec.prompt.size()), admitted - job->arrival);
    auto seq = std::make_unique<Sequence>(std::move(job), tokenizer_, observer_,
                                          config.num_layers, config.hidden_size,
                                          config.proj_size, admitted);
    if (busy && static_cast<int>(seq->spec().prompt.size()) <= options_.step_join_max_prompt) {
      seq->BeginPromptInSteps();
      active_.push_back(std::move(seq));
    } else {
      fresh.push_back(std::move(seq));
    }
  }
  if (fresh.empty() && batch->scores.empty() && batch->embeds.empty()) return;
  std::vector<SequenceState> states(batch->scores.size() + batch->embeds.size(),
                                    SequenceState::Zeros(config.num_layers, config.hidden_size,
                                                         config.proj_size));
  std::vector<float> last(fresh.size() * V);
  // Score: only each next token's log-prob (PrefillItem::next_token_logprobs),
  // never a [T, V] matrix.
  std::vector<std::vector<float>> next(batch->scores.size());
  std::vector<PrefillItem> items;
  int tokens = 0;
  for (size_t i = 0; i < fresh.size(); ++i) {
    items.push_back({fresh[i]->spec().prompt, fresh[i]->state(), &last[i * V], nullptr});
    tokens += static_cast<int>(fresh[i]->spec().prompt.size());
  }
  for (size_t i = 0; i < batch->scores.size(); ++i) {
    next[i].resize(batch->scores[i]->tokens.size() - 1);
    items.push_back({batch->scores[i]->tokens, &states[i], nullptr, nullptr, next[i].data()});
    tokens += static_cast<int>(batch->scores[i]->tokens.size());
  }
  for (size_t i = 0; i < batch->embeds.size(); ++i) {
    items.push_back(
        {batch->embeds[i]->tokens, &states[batch->scores.size() + i], nullptr, nullptr});
    tokens += static_cast<int>(batch->embeds[i]->tokens.size());
  }
  const absl::Time start = absl::Now();
  absl::Status status = engine_->Prefill(items);
  const absl::Time now = absl::Now();
  observer_->OnPrefill(static_cast<int>(items.size()), tokens, now - start);
  if (!status.ok()) status = absl::InternalError(absl::StrCat("prefill failed: ", status.message()));

  for (size_t i = 0; i < fresh.size(); ++i) {
    if (!status.ok()) {
      fresh[i]->Finish(v1::FINISH_REASON_UNSPECIFIED, status, now);
      continue;
    }
    fresh[i]->Consume(&last[i * V], V, now);
    if (!fresh[i]->finished()) active_.push_back(std::move(fresh[i]));
  }
  for (size_t i = 0; i < batch->scores.size(); ++i) {
    ScoreWork& w = *batch->scores[i];
    if (!status.ok()) {
      w.done(status);
      continue;
    }
    ScoreResult r;
    for (size_t j = w.first_scored; j < w.tokens.size(); ++j) {
      const float lp = next[i][j - 1];
      r.token_ids.push_back(w.tokens[j]);
      r.logprobs.push_back(lp);
      r.total += lp;
    }
    w.done(std::move(r));
  }
  for (size_t i = 0; i < batch->embeds.size(); ++i) {
    if (!status.ok()) {
      batch->embeds[i]->done(status);
    } else {
      batch->embeds[i]->done(std::move(states[batch->scores.size() + i]));
    }
  }
}

void ModelScheduler::Sweep(absl::Time now) {
  for (auto& seq : active_) {
    if (seq->finished()) continue;
    // The deadline first: gRPC also cancels a call whose deadline passed,
    // and that is an expiry, not a client cancellation.
    if (now >= seq->deadline()) {
      seq->Finish(v1::FINISH_REASON_DEADLINE,
                  absl::DeadlineExceededError("the request's deadline passed"), now);
    } else if (seq->sink()->cancelled()) {
      seq->Finish(v1::FINISH_REASON_CANCELLED, absl::CancelledError("the client cancelled"), now);
    } else {
      const int pending = seq->sink()->pending_tokens();
      if (!seq->paused && pending >= options_.max_pending_tokens) {
        seq->paused = true;
      } else if (seq->paused && pending <= resume_threshold()) {
        seq->paused = false;
      }
    }
  }
  active_.erase(std::remove_if(active_.begin(), active_.end(),
                               [](const auto& s) { return s->finished(); }),
                active_.end());
}

void ModelScheduler::Step() {
  std::vector<Sequence*> stepping;
  step_tokens_.clear();
  step_states_.clear();
  for (auto& seq : active_) {
    if (seq->paused) continue;
    stepping.push_back(seq.get());
    step_tokens_.push_back(seq->next_input());
    step_states_.push_back(seq->state());
  }
  if (stepping.empty()) return;
  const int V = vocab_size_;
  step_logprobs_.resize(stepping.size() * V);
  const absl::Time start = absl::Now();
  absl::Status status = engine_->Step(step_tokens_, step_states_, step_logprobs_.data());
  const absl::Time now = absl::Now();
  observer_->OnStep(static_cast<int>(stepping.size()), now - start);
  for (size_t i = 0; i < stepping.size(); ++i) {
    if (status.ok()) {
      stepping[i]->StepDone(&step_logprobs_[i * V], V, now);
    } else {
      stepping[i]->Finish(v1::FINISH_REASON_UNSPECIFIED,
                          absl::InternalError(absl::StrCat("step failed: ", status.message())),
                          now);
    }
  }
}

void ModelScheduler::Shutdown() {
  std::deque<Work> queued;
  absl::Status status;
  {
    absl::MutexLock lock(&mu_);
    queued.swap(queue_);
    queued_prefills_ = 0;
    status = stop_status_;
  }
  const absl::Time now = absl::Now();
  for (auto& seq : active_) seq->Finish(v1::FINISH_REASON_SHUTDOWN, status, now);
  active_.clear();
  for (Work& w : queued) {
    if (w.generation != nullptr) {
      Sequence(std::move(w.generation), tokenizer_, observer_, 1, 1, 0, now)
          .Finish(v1::FINISH_REASON_SHUTDOWN, status, now);
    }
    if (w.score != nullptr) w.score->done(status);
    if (w.embed != nullptr) w.embed->done(status);
  }
  absl::MutexLock lock(&mu_);
  busy_ = 0;
}

}  // namespace lstmserve
