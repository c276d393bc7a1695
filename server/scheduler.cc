#include "server/scheduler.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"

namespace lstmserve {
namespace {

template <class... F>
struct Overloaded : F... {
  using F::operator()...;
};
template <class... F>
Overloaded(F...) -> Overloaded<F...>;

// The end of the chunk that starts at `pos` of a `size`-token prompt: the
// next multiple of `chunk` (0: no chunking), or the prompt's end.
int ChunkEnd(int pos, int size, int chunk) {
  if (chunk <= 0) return size;
  return std::min(size, (pos / chunk + 1) * chunk);
}

// Moves `s` out of an optional into another (empty stays empty).
std::optional<SequenceState> Take(std::optional<SequenceState>& s) {
  std::optional<SequenceState> out = std::move(s);
  s.reset();
  return out;
}

// Why a Score or Embed (`work`) is no longer wanted at `now`, or OK. The
// deadline first: gRPC also cancels a call whose deadline passed, and that
// is an expiry, not a client cancellation. The wording is the generations'.
template <class W>
absl::Status Unwanted(const W& work, absl::Time now, bool queued) {
  const TextControl& control = work.control;
  const bool expired = now >= control.deadline;
  if (!expired && !(control.cancelled && control.cancelled())) return absl::OkStatus();
  const std::string request = control.request_id.empty()
                                  ? absl::StrCat(W::kKind, " request")
                                  : absl::StrCat(W::kKind, " request '", control.request_id, "'");
  if (expired) {
    return absl::DeadlineExceededError(
        absl::StrCat(request, ": ", queued ? "the deadline passed while queued"
                                           : "the request's deadline passed"));
  }
  return absl::CancelledError(
      absl::StrCat(request, ": ", queued ? "cancelled while queued" : "the client cancelled"));
}

}  // namespace

// A request whose prompt is being prefilled. `pos` tokens of it are in the
// state: a generation's Sequence holds its own state (and counts its prompt
// tokens), Score and Embed use `state`. A Score collects its log-probs chunk
// by chunk in `result`. The state may start from a cached prefix (pos > 0
// before the first chunk) or from a client's state (start_state).
struct ModelScheduler::PrefillTask {
  std::variant<std::unique_ptr<Sequence>, ScoreWork, EmbedWork> work;
  SequenceState state;
  ScoreResult result;
  int pos = 0;
  // return_state (Score, Embed): a chunk ends after this many tokens and
  // the state there is copied to before_last.
  int capture_at = -1;
  std::optional<SequenceState> before_last;
  // The text starts at its first token (no client state) and the request
  // may use the prefix cache: states at interval multiples and at the end
  // are collected here and stored when the prompt completes.
  bool use_cache = false;
  std::vector<int> checkpoint_lengths;
  std::vector<SequenceState> checkpoint_states;
  // A Score or Embed that Sweep ended (cancelled, expired): leaves prefill.
  bool ended = false;

  const std::vector<int32_t>& tokens() const {
    return std::visit(Overloaded{[](const std::unique_ptr<Sequence>& s)
                                     -> const std::vector<int32_t>& { return s->spec().prompt; },
                                 [](const auto& w) -> const std::vector<int32_t>& {
                                   return w.input.tokens;
                                 }},
                      work);
  }
  int size() const { return static_cast<int>(tokens().size()); }
  SequenceState* mutable_state() {
    if (auto* seq = std::get_if<std::unique_ptr<Sequence>>(&work)) return (*seq)->state();
    return &state;
  }
  Sequence* sequence() {
    auto* seq = std::get_if<std::unique_ptr<Sequence>>(&work);
    return seq != nullptr ? seq->get() : nullptr;
  }
  // Why a Score or Embed is no longer wanted (see Unwanted); OK for a
  // generation (Sweep looks at its Sequence).
  absl::Status Unwanted(absl::Time now) const {
    return std::visit(Overloaded{[](const std::unique_ptr<Sequence>&) { return absl::OkStatus(); },
                                 [&](const auto& w) { return lstmserve::Unwanted(w, now, false); }},
                      work);
  }
  // Ends the request with `status` (a generation: `reason` too).
  void Fail(v1::FinishReason reason, const absl::Status& status, absl::Time now) {
    std::visit(Overloaded{[&](std::unique_ptr<Sequence>& s) { s->Finish(reason, status, now); },
                          [&](auto& w) { w.done(status); }},
               work);
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
  if (options.prefix_cache_bytes < 0 || options.prefix_cache_interval < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("prefix_cache_bytes (", options.prefix_cache_bytes,
                     ") must be >= 0 (0 = off) and prefix_cache_interval (",
                     options.prefix_cache_interval, ") >= 1"));
  }
  if (options.prefill_chunk_tokens < 0) {
    return absl::InvalidArgumentError(absl::StrCat("prefill_chunk_tokens (",
                                                   options.prefill_chunk_tokens,
                                                   ") must be >= 0 (0 = no chunking)"));
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
      free_slots_(options_.max_batch),
      prefill_room_(options_.max_batch) {}

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
  if (!std::holds_alternative<std::unique_ptr<GenerationJob>>(work)) ++queued_prefills_;
  queue_.push_back(std::move(work));
  return absl::OkStatus();
}

absl::Status ModelScheduler::SubmitGeneration(std::unique_ptr<GenerationJob> job) {
  if (job == nullptr || job->sink == nullptr) {
    return absl::InvalidArgumentError("SubmitGeneration: a job with a sink is required");
  }
  return Enqueue(std::move(job));
}

absl::Status ModelScheduler::SubmitScore(TextInput input, int first_scored, ScoreDone done,
                                         TextControl control) {
  if (first_scored < 1 || first_scored > static_cast<int>(input.tokens.size())) {
    return absl::InvalidArgumentError("SubmitScore: first_scored out of range");
  }
  return Enqueue(ScoreWork{std::move(input), first_scored, std::move(done), std::move(control)});
}

absl::Status ModelScheduler::SubmitEmbed(TextInput input, EmbedDone done, TextControl control) {
  if (input.tokens.empty()) return absl::InvalidArgumentError("SubmitEmbed: no tokens");
  return Enqueue(EmbedWork{std::move(input), std::move(done), std::move(control)});
}

void ModelScheduler::Wake() {
  absl::MutexLock lock(&mu_);
  wake_ = true;
}

bool ModelScheduler::HasWorkLocked() const {
  return stop_ || wake_ || (queued_prefills_ > 0 && prefill_room_ > 0) ||
         (!queue_.empty() && free_slots_ > 0);
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

int ModelScheduler::SlotsInUse() const {
  int slots = static_cast<int>(active_.size());
  for (const auto& task : prefill_) slots += task->sequence() != nullptr ? 1 : 0;
  return slots;
}

void ModelScheduler::UpdateLoadLocked(int taken, int taken_slots) {
  busy_ = static_cast<int>(active_.size() + prefill_.size()) + taken;
  free_slots_ = options_.max_batch - SlotsInUse() - taken_slots;
  prefill_room_ = options_.max_batch - static_cast<int>(prefill_.size()) - taken;
}

void ModelScheduler::Loop() {
  for (;;) {
    last_progress_ns_.store(absl::ToUnixNanos(absl::Now()), std::memory_order_relaxed);
    std::vector<Work> taken;
    if (!TakeWork(&taken)) break;
    if (!taken.empty()) Admit(std::move(taken));
    if (!prefill_.empty()) PrefillChunk();
    Sweep(absl::Now());
    Step();
    Sweep(absl::Now());
    int queued;
    {
      absl::MutexLock lock(&mu_);
      UpdateLoadLocked(0, 0);
      queued = static_cast<int>(queue_.size());
    }
    observer_->OnLoad(queued, static_cast<int>(active_.size()));
  }
  Shutdown();
}

bool ModelScheduler::TakeWork(std::vector<Work>* taken) {
  const bool runnable = !prefill_.empty() || std::any_of(active_.begin(), active_.end(),
                                                         [](const auto& s) { return !s->paused; });
  absl::MutexLock lock(&mu_);
  UpdateLoadLocked(0, 0);
  if (!runnable) {
    // Nothing to step: sleep until there is work. The timeout bounds how late
    // a paused sequence notices its deadline if no cancellation arrives.
    mu_.AwaitWithTimeout(absl::Condition(this, &ModelScheduler::HasWorkLocked),
                         absl::Milliseconds(100));
  }
  wake_ = false;
  if (stop_) return false;
  const absl::Time now = absl::Now();
  int free_slots = free_slots_;
  int room = prefill_room_;
  int starting = 0;       // taken requests that will run
  int starting_slots = 0;  // of which generations
  for (auto it = queue_.begin(); it != queue_.end();) {
    bool take = false;
    if (auto* job = std::get_if<std::unique_ptr<GenerationJob>>(&*it)) {
      if ((*job)->sink->cancelled() || now >= (*job)->deadline) {
        take = true;  // ends in Admit without running
      } else if (free_slots > 0 && room > 0) {
        take = true;
        --free_slots;
        --room;
        ++starting;
        ++starting_slots;
      }
    } else {
      const bool ended = std::visit(
          Overloaded{[](const std::unique_ptr<GenerationJob>&) { return false; },
                     [&](const auto& w) { return !Unwanted(w, now, true).ok(); }},
          *it);
      if (ended) {
        take = true;  // ends in Admit without running
      } else if (room > 0) {
        take = true;
        --room;
        ++starting;
      }
      if (take) --queued_prefills_;
    }
    if (!take) {
      ++it;
      continue;
    }
    taken->push_back(std::move(*it));
    it = queue_.erase(it);
  }
  UpdateLoadLocked(starting, starting_slots);
  return true;
}

bool ModelScheduler::JoinsThroughSteps(int prompt_tokens) const {
  // A busy batch takes short prompts through its steps (see
  // SchedulerOptions::step_join_max_prompt) instead of stalling for a prefill.
  return static_cast<int>(active_.size()) >= options_.step_join_min_active &&
         prompt_tokens <= options_.step_join_max_prompt;
}

void ModelScheduler::LookUpPrefix(PrefillTask* task, int max_length) {
  if (prefix_cache_ == nullptr || !task->use_cache) return;
  const int hit = prefix_cache_->Lookup(task->tokens(), max_length, task->mutable_state());
  if (hit > 0) {
    task->pos = hit;
    // The cache fed the first `hit` prompt tokens (never the whole prompt).
    if (Sequence* seq = task->sequence()) seq->PrefillDone(hit, nullptr, vocab_size_, absl::Now());
  }
  observer_->OnPrefixCacheLookup(task->size(), hit);
}

void ModelScheduler::StoreCheckpoints(PrefillTask* task) {
  if (prefix_cache_ == nullptr || task->checkpoint_lengths.empty()) return;
  std::vector<PrefixCache::Checkpoint> checkpoints;
  for (size_t i = 0; i < task->checkpoint_lengths.size(); ++i) {
    checkpoints.push_back({task->checkpoint_lengths[i], &task->checkpoint_states[i]});
  }
  prefix_cache_->Insert(task->tokens(), checkpoints);
  observer_->OnPrefixCacheBytes(prefix_cache_->bytes());
}

void ModelScheduler::Admit(std::vector<Work> taken) {
  const ModelConfig& config = engine_->config();
  // Score and Embed: from the client's state or zeros.
  auto StartText = [&](const TextInput& input, PrefillTask* task) {
    task->state = input.start_state
                      ? *input.start_state
                      : SequenceState::Zeros(config.num_layers, config.hidden_size,
                                             config.proj_size);
    task->use_cache = !input.start_state.has_value();
    if (input.return_state) task->capture_at = static_cast<int>(input.tokens.size()) - 1;
  };
  const absl::Time now = absl::Now();
  for (Work& work : taken) {
    auto task = std::make_unique<PrefillTask>();
    const bool runs = std::visit(
        Overloaded{
            [&](std::unique_ptr<GenerationJob>& job) {
              if (job->sink->cancelled() || now >= job->deadline) {
                // gRPC cancels expired calls too: the deadline decides.
                const bool expired = now >= job->deadline;
                FinishUnstarted(
                    *job, expired ? v1::FINISH_REASON_DEADLINE : v1::FINISH_REASON_CANCELLED,
                    expired ? absl::DeadlineExceededError("the deadline passed while queued")
                            : absl::CancelledError("cancelled while queued"),
                    observer_, now);
                return false;
              }
              const int prompt = static_cast<int>(job->spec.prompt.size());
              // The client's prompt tokens (a start state's last token is not one).
              observer_->OnAdmitted(prompt - (job->spec.start_state ? 1 : 0), now - job->arrival);
              auto seq = std::make_unique<Sequence>(std::move(job), tokenizer_, observer_,
                                                    config.num_layers, config.hidden_size,
                                                    config.proj_size, now);
              if (JoinsThroughSteps(prompt)) {
                active_.push_back(std::move(seq));
                return false;
              }
              task->use_cache = seq->spec().use_prefix_cache && !seq->spec().start_state;
              task->work = std::move(seq);
              // At least the last prompt token is fed: its row gives the first token.
              LookUpPrefix(task.get(), prompt - 1);
              return true;
            },
            [&](ScoreWork& w) {
              if (absl::Status s = Unwanted(w, now, true); !s.ok()) {
                w.done(std::move(s));
                return false;
              }
              StartText(w.input, task.get());
              const int first_scored = w.first_scored;
              task->work = std::move(w);
              // Rows from token first_scored - 1 on are needed.
              LookUpPrefix(task.get(), first_scored - 1);
              return true;
            },
            [&](EmbedWork& w) {
              if (absl::Status s = Unwanted(w, now, true); !s.ok()) {
                w.done(std::move(s));
                return false;
              }
              StartText(w.input, task.get());
              const int size = static_cast<int>(w.input.tokens.size());
              task->work = std::move(w);
              LookUpPrefix(task.get(), size - 1);
              return true;
            }},
        work);
    if (runs) {
      if (task->capture_at == task->pos) task->before_last = *task->mutable_state();
      prefill_.push_back(std::move(task));
    }
  }
}

void ModelScheduler::PrefillChunk() {
  const int V = vocab_size_;
  const int chunk = options_.prefill_chunk_tokens;
  const int interval = options_.prefix_cache_interval;
  // Build: the next chunk of every prompt in prefill (at most max_batch).
  const size_t n = prefill_.size();
  std::vector<PrefillItem> items(n);
  std::vector<int> ends(n);
  // A chunk's log-probs: [V] after a generation's prompt; for a Score only
  // each next token's log-prob (next_token_logprobs, [T-1]) and the last
  // row ([V], whose next token starts the next chunk), never [T, V].
  std::vector<std::vector<float>> rows(n);
  int tokens = 0;
  for (size_t i = 0; i < n; ++i) {
    PrefillTask& task = *prefill_[i];
    const int size = task.size();
    // Chunks also end at the cache's checkpoints (multiples of the interval
    // from the first token), cache on or off, so a state computed after a
    // cache hit is the one a cold prefill computes; and where return_state
    // needs the state before the last token.
    ends[i] = std::min(ChunkEnd(task.pos, size, chunk), ChunkEnd(task.pos, size, interval));
    if (task.capture_at > task.pos) ends[i] = std::min(ends[i], task.capture_at);
    const int T = ends[i] - task.pos;
    items[i].tokens = absl::MakeConstSpan(task.tokens()).subspan(task.pos, T);
    items[i].state = task.mutable_state();
    if (std::holds_alternative<ScoreWork>(task.work)) {
      rows[i].resize(static_cast<size_t>(T - 1) + V);
      items[i].next_token_logprobs = T > 1 ? rows[i].data() : nullptr;
      items[i].last_logprobs = rows[i].data() + (T - 1);
    } else if (task.sequence() != nullptr && ends[i] == size) {
      rows[i].resize(V);
      items[i].last_logprobs = rows[i].data();
    }
    tokens += T;
  }

  // Run.
  const absl::Time start = absl::Now();
  absl::Status status = engine_->Prefill(items);
  const absl::Time now = absl::Now();
  observer_->OnPrefill(static_cast<int>(n), tokens, now - start);
  if (!status.ok()) {
    status = absl::InternalError(absl::StrCat("prefill failed: ", status.message()));
    for (auto& task : prefill_) task->Fail(v1::FINISH_REASON_UNSPECIFIED, status, now);
    prefill_.clear();
    return;
  }

  // Deliver: advance every task; those whose prompt is complete leave prefill.
  std::vector<std::unique_ptr<PrefillTask>> still;
  for (size_t i = 0; i < n; ++i) {
    std::unique_ptr<PrefillTask> task = std::move(prefill_[i]);
    const int begin = task->pos;
    task->pos = ends[i];
    const bool complete = task->pos == task->size();
    if (task->pos == task->capture_at) task->before_last = *task->mutable_state();
    if (prefix_cache_ != nullptr && task->use_cache &&
        (task->pos % interval == 0 || complete)) {
      task->checkpoint_lengths.push_back(task->pos);
      task->checkpoint_states.push_back(*task->mutable_state());
    }
    if (complete) StoreCheckpoints(task.get());
    std::visit(
        Overloaded{[&](std::unique_ptr<Sequence>& seq) {
                     seq->PrefillDone(ends[i] - begin, rows[i].data(), V, now);
                     if (complete && !seq->finished()) active_.push_back(std::move(seq));
                   },
                   [&](ScoreWork& w) {
                     // Token j's log-prob comes from the row after token j-1:
                     // next_token_logprobs within the chunk, the last row
                     // ([V], after rows[i][T-1]) for the first token of the next.
                     const int first = std::max(begin + 1, w.first_scored);
                     const int last = std::min(task->pos + 1, task->size());
                     const int T = task->pos - begin;
                     for (int j = first; j < last; ++j) {
                       const int32_t token = w.input.tokens[j];
                       const int t = j - 1 - begin;
                       const float lp = t < T - 1 ? rows[i][t] : rows[i][T - 1 + token];
                       task->result.token_ids.push_back(token);
                       task->result.logprobs.push_back(lp);
                       task->result.total += lp;
                     }
                     if (complete) {
                       task->result.before_last = Take(task->before_last);
                       w.done(std::move(task->result));
                     }
                   },
                   [&](EmbedWork& w) {
                     if (complete) {
                       w.done(EmbedResult{std::move(task->state), Take(task->before_last)});
                     }
                   }},
        task->work);
    if (!complete) still.push_back(std::move(task));
  }
  prefill_ = std::move(still);
}

void ModelScheduler::Sweep(absl::Time now) {
  // Prompts in prefill end on cancellation and deadline too, at this chunk
  // boundary: Score and Embed with their done callback, generations here.
  for (auto& task : prefill_) {
    Sequence* seq = task->sequence();
    if (seq == nullptr) {
      if (absl::Status s = task->Unwanted(now); !s.ok()) {
        task->Fail(v1::FINISH_REASON_UNSPECIFIED, s, now);
        task->ended = true;
      }
      continue;
    }
    if (seq->finished()) continue;
    if (now >= seq->deadline()) {
      seq->Finish(v1::FINISH_REASON_DEADLINE,
                  absl::DeadlineExceededError("the request's deadline passed"), now);
    } else if (seq->sink()->cancelled()) {
      seq->Finish(v1::FINISH_REASON_CANCELLED, absl::CancelledError("the client cancelled"), now);
    }
  }
  prefill_.erase(std::remove_if(prefill_.begin(), prefill_.end(),
                                [](const auto& t) {
                                  return t->ended || (t->sequence() != nullptr &&
                                                      t->sequence()->finished());
                                }),
                 prefill_.end());
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
  if (!status.ok()) status = absl::InternalError(absl::StrCat("step failed: ", status.message()));
  for (size_t i = 0; i < stepping.size(); ++i) {
    if (status.ok()) {
      stepping[i]->StepDone(&step_logprobs_[i * V], V, now);
    } else {
      stepping[i]->Finish(v1::FINISH_REASON_UNSPECIFIED, status, now);
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
  for (auto& task : prefill_) task->Fail(v1::FINISH_REASON_SHUTDOWN, status, now);
  prefill_.clear();
  for (Work& work : queued) {
    std::visit(Overloaded{[&](std::unique_ptr<GenerationJob>& job) {
                            FinishUnstarted(*job, v1::FINISH_REASON_SHUTDOWN, status, observer_,
                                            now);
                          },
                          [&](auto& w) { w.done(status); }},
               work);
  }
  absl::MutexLock lock(&mu_);
  UpdateLoadLocked(0, 0);
}

}  // namespace lstmserve
