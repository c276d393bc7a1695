#include "server/scheduler.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"

namespace lstmserve {

// One text being prefilled: tokens[pos, end) still to feed into *state.
struct ModelScheduler::PrefillTask {
  absl::Span<const int32_t> tokens;  // the whole text
  int pos = 0;                       // tokens already in *state
  int end = 0;
  SequenceState* state = nullptr;
  float* last_logprobs = nullptr;  // [V] after tokens[end - 1], or null
  float* all_logprobs = nullptr;   // [tokens.size(), V], row j after tokens[j]; or null
  bool use_cache = false;          // look up / store prefixes (text from its first token)
  int capture_at = -1;             // copy the state after this many tokens to *capture
  std::optional<SequenceState>* capture = nullptr;
  std::vector<SequenceState> checkpoint_states;
  std::vector<int> checkpoint_lengths;
};

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
  if (options.prefix_cache_bytes < 0 || options.prefix_cache_interval < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("prefix_cache_bytes (", options.prefix_cache_bytes,
                     ") must be >= 0 and prefix_cache_interval (",
                     options.prefix_cache_interval, ") >= 1"));
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
      prefix_cache_(options.prefix_cache_bytes > 0
                        ? std::make_unique<PrefixCache>(options.prefix_cache_bytes)
                        : nullptr),
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

absl::Status ModelScheduler::SubmitScore(TextInput input, int first_scored, ScoreDone done) {
  if (first_scored < 1 || first_scored > static_cast<int>(input.tokens.size())) {
    return absl::InvalidArgumentError("SubmitScore: first_scored out of range");
  }
  Work work;
  work.score = std::make_unique<ScoreWork>(ScoreWork{std::move(input), first_scored,
                                                     std::move(done)});
  return Enqueue(std::move(work));
}

absl::Status ModelScheduler::SubmitEmbed(TextInput input, EmbedDone done) {
  if (input.tokens.empty()) return absl::InvalidArgumentError("SubmitEmbed: no tokens");
  Work work;
  work.embed = std::make_unique<EmbedWork>(EmbedWork{std::move(input), std::move(done)});
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
      Sequence(std::move(job), tokenizer_, observer_, 1, 1, now)
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

void ModelScheduler::LookUpPrefix(PrefillTask* task, int max_length) {
  if (prefix_cache_ == nullptr || !task->use_cache) return;
  const int hit = prefix_cache_->Lookup(task->tokens, max_length, task->state);
  task->pos = hit;
  observer_->OnPrefixCacheLookup(static_cast<int>(task->tokens.size()), hit);
}

absl::Status ModelScheduler::RunPrefill(std::vector<PrefillTask>& tasks) {
  const int V = vocab_size_;
  const int interval = options_.prefix_cache_interval;
  std::vector<PrefillItem> items;
  std::vector<PrefillTask*> running;
  std::vector<int> chunk_ends;
  for (PrefillTask& t : tasks) {
    if (t.capture_at == t.pos) *t.capture = *t.state;
  }
  for (;;) {
    items.clear();
    running.clear();
    chunk_ends.clear();
    int tokens = 0;
    for (PrefillTask& t : tasks) {
      if (t.pos >= t.end) continue;
      // Chunks end at multiples of the interval counted from the text's
      // first token, whatever the cache holds: a state computed after a
      // cache hit is then the one a cold prefill computes.
      int chunk_end = std::min(t.end, (t.pos / interval + 1) * interval);
      if (t.capture_at > t.pos) chunk_end = std::min(chunk_end, t.capture_at);
      items.push_back({t.tokens.subspan(t.pos, chunk_end - t.pos), t.state,
                       chunk_end == t.end ? t.last_logprobs : nullptr,
                       t.all_logprobs != nullptr ? t.all_logprobs + int64_t{t.pos} * V : nullptr});
      running.push_back(&t);
      chunk_ends.push_back(chunk_end);
      tokens += chunk_end - t.pos;
    }
    if (items.empty()) break;
    const absl::Time start = absl::Now();
    absl::Status status = engine_->Prefill(items);
    observer_->OnPrefill(static_cast<int>(items.size()), tokens, absl::Now() - start);
    if (!status.ok()) return status;
    for (size_t i = 0; i < running.size(); ++i) {
      PrefillTask& t = *running[i];
      t.pos = chunk_ends[i];
      if (t.pos == t.capture_at) *t.capture = *t.state;
      if (prefix_cache_ != nullptr && t.use_cache && (t.pos % interval == 0 || t.pos == t.end)) {
        t.checkpoint_lengths.push_back(t.pos);
        t.checkpoint_states.push_back(*t.state);
      }
    }
  }
  bool stored = false;
  for (PrefillTask& t : tasks) {
    if (t.checkpoint_lengths.empty()) continue;
    std::vector<PrefixCache::Checkpoint> checkpoints;
    for (size_t i = 0; i < t.checkpoint_lengths.size(); ++i) {
      checkpoints.push_back({t.checkpoint_lengths[i], &t.checkpoint_states[i]});
    }
    prefix_cache_->Insert(t.tokens, checkpoints);
    stored = true;
  }
  if (stored) observer_->OnPrefixCacheBytes(prefix_cache_->bytes());
  return absl::OkStatus();
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
    // The client's prompt tokens (a start state's last token is not one).
    const int prompt_tokens =
        static_cast<int>(job->spec.prompt.size()) - (job->spec.start_state ? 1 : 0);
    observer_->OnAdmitted(prompt_tokens, admitted - job->arrival);
    auto seq = std::make_unique<Sequence>(std::move(job), tokenizer_, observer_,
                                          config.num_layers, config.hidden_size, admitted);
    if (busy && static_cast<int>(seq->spec().prompt.size()) <= options_.step_join_max_prompt) {
      seq->BeginPromptInSteps();
      active_.push_back(std::move(seq));
    } else {
      fresh.push_back(std::move(seq));
    }
  }
  if (fresh.empty() && batch->scores.empty() && batch->embeds.empty()) return;
  const size_t texts = batch->scores.size() + batch->embeds.size();
  std::vector<SequenceState> states(texts);
  std::vector<float> last(fresh.size() * V);
  std::vector<std::vector<float>> all(batch->scores.size());
  std::vector<std::optional<SequenceState>> before_last(texts);
  std::vector<PrefillTask> tasks;
  tasks.reserve(fresh.size() + texts);
  // Generations: the prompt; the first token comes from its last row.
  for (size_t i = 0; i < fresh.size(); ++i) {
    PrefillTask t;
    t.tokens = fresh[i]->spec().prompt;
    t.end = static_cast<int>(t.tokens.size());
    t.state = fresh[i]->state();
    t.last_logprobs = &last[i * V];
    t.use_cache = fresh[i]->spec().use_prefix_cache && !fresh[i]->spec().start_state;
    LookUpPrefix(&t, t.end - 1);
    tasks.push_back(std::move(t));
  }
  // Score and Embed: from the client's state or zeros.
  auto text_task = [&](const TextInput& input, size_t k) {
    states[k] = input.start_state ? *input.start_state
                                  : SequenceState::Zeros(config.num_layers, config.hidden_size);
    PrefillTask t;
    t.tokens = input.tokens;
    t.state = &states[k];
    t.use_cache = !input.start_state.has_value();
    if (input.return_state) {
      t.capture_at = static_cast<int>(input.tokens.size()) - 1;
      t.capture = &before_last[k];
    }
    return t;
  };
  for (size_t i = 0; i < batch->scores.size(); ++i) {
    const ScoreWork& w = *batch->scores[i];
    PrefillTask t = text_task(w.input, i);
    // Row j is needed for j in [first_scored - 1, T - 2]: the last token is
    // never an input, and tokens before first_scored - 1 may come from the
    // cache.
    t.end = static_cast<int>(w.input.tokens.size()) - 1;
    all[i].resize(w.input.tokens.size() * V);
    t.all_logprobs = all[i].data();
    LookUpPrefix(&t, w.first_scored - 1);
    tasks.push_back(std::move(t));
  }
  for (size_t i = 0; i < batch->embeds.size(); ++i) {
    const size_t k = batch->scores.size() + i;
    PrefillTask t = text_task(batch->embeds[i]->input, k);
    t.end = static_cast<int>(batch->embeds[i]->input.tokens.size());
    LookUpPrefix(&t, t.end - 1);
    tasks.push_back(std::move(t));
  }
  absl::Status status = RunPrefill(tasks);
  const absl::Time now = absl::Now();
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
    const std::vector<int32_t>& tokens = w.input.tokens;
    for (size_t j = w.first_scored; j < tokens.size(); ++j) {
      const float lp = all[i][(j - 1) * V + tokens[j]];
      r.token_ids.push_back(tokens[j]);
      r.logprobs.push_back(lp);
      r.total += lp;
    }
    r.before_last = std::move(before_last[i]);
    w.done(std::move(r));
  }
  for (size_t i = 0; i < batch->embeds.size(); ++i) {
    const size_t k = batch->scores.size() + i;
    if (!status.ok()) {
      batch->embeds[i]->done(status);
    } else {
      batch->embeds[i]->done(EmbedResult{std::move(states[k]), std::move(before_last[k])});
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
      Sequence(std::move(w.generation), tokenizer_, observer_, 1, 1, now)
          .Finish(v1::FINISH_REASON_SHUTDOWN, status, now);
    }
    if (w.score != nullptr) w.score->done(status);
    if (w.embed != nullptr) w.embed->done(status);
  }
  absl::MutexLock lock(&mu_);
  busy_ = 0;
}

}  // namespace lstmserve
