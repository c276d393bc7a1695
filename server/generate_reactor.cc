#include "server/generate_reactor.h"

#include <utility>

#include "server/response_merge.h"
#include "server/status_util.h"

namespace lstmserve {

void GenerateReactor::Submit(std::unique_ptr<GenerationJob> job) {
  if (absl::Status s = scheduler_->SubmitGeneration(std::move(job)); !s.ok()) Reject(s);
}

void GenerateReactor::Reject(const absl::Status& status) {
  {
    absl::MutexLock lock(&mu_);
    finished_ = true;
    record_.code = status.code();
    record_.message = std::string(status.message());
  }
  Report();
  Finish(ToGrpcStatus(status));
}

void GenerateReactor::Queue(v1::GenerateResponse message, int tokens) {
  message.set_model_version(model_version_);
  pending_tokens_.fetch_add(tokens, std::memory_order_relaxed);
  if (pending_.empty()) {
    pending_.push_back(std::move(message));
    pending_counts_.push_back(tokens);
  } else {
    MergeResponse(std::move(message), &pending_.back());
    pending_counts_.back() += tokens;
  }
}

GenerateReactor::Next GenerateReactor::NextLocked() {
  Next next;
  if (write_in_flight_ || finished_) return next;
  if (!pending_.empty() && !cancelled()) {
    writing_ = std::move(pending_.front());
    writing_tokens_ = pending_counts_.front();
    pending_.pop_front();
    pending_counts_.pop_front();
    write_in_flight_ = true;
    next.write = &writing_;
  } else if (final_status_.has_value()) {
    finished_ = true;
    next.finish = *final_status_;
  }
  return next;
}

void GenerateReactor::Run(const Next& next) {
  // Outside mu_: these may run reactions. After Finish, `this` may be gone.
  if (next.write != nullptr) {
    StartWrite(next.write);
  } else if (next.finish.has_value()) {
    Report();
    Finish(*next.finish);
  }
}

void GenerateReactor::Dispatch(Next next) {
  if (next.write == nullptr && !next.finish.has_value()) return;
  if (dispatcher_ == nullptr) {
    Run(next);
  } else {
    dispatcher_->Post([this, next = std::move(next)] { Run(next); });
  }
}

void GenerateReactor::Send(v1::GenerateResponse delta, int tokens) {
  Next next;
  {
    absl::MutexLock lock(&mu_);
    if (cancelled() || final_status_.has_value()) return;
    Queue(std::move(delta), tokens);
    next = NextLocked();
  }
  Dispatch(std::move(next));
}

void GenerateReactor::Close(v1::GenerateResponse last, const absl::Status& status) {
  Next next;
  {
    absl::MutexLock lock(&mu_);
    record_.code = status.code();
    record_.message = std::string(status.message());
    record_.finish_reason = FinishReasonLabel(last.finish_reason());
    record_.prompt_tokens = last.usage().prompt_tokens();
    record_.generated_tokens = last.usage().generated_tokens();
    if (last.usage().has_time_to_first_token()) {
      const auto& d = last.usage().time_to_first_token();
      record_.time_to_first_token = absl::Seconds(d.seconds()) + absl::Nanoseconds(d.nanos());
    }
    if (last.usage().has_queue_time()) {
      const auto& d = last.usage().queue_time();
      record_.queue_wait = absl::Seconds(d.seconds()) + absl::Nanoseconds(d.nanos());
    }
    if (!cancelled()) Queue(std::move(last), 0);
    final_status_ = ToGrpcStatus(status);
    next = NextLocked();
  }
  // Close runs on the scheduler thread, outside any reaction: with nothing
  // to do here, OnWriteDone/OnCancel finishes the RPC and OnDone may delete
  // this reactor as soon as mu_ is released, so `this` must not be touched,
  // not even to call Dispatch (UBSan's vptr check caught that under load).
  if (next.write == nullptr && !next.finish.has_value()) return;
  Dispatch(std::move(next));
}

void GenerateReactor::OnWriteDone(bool ok) {
  Next next;
  bool wake = false;
  {
    absl::MutexLock lock(&mu_);
    write_in_flight_ = false;
    const int before = pending_tokens_.fetch_sub(writing_tokens_, std::memory_order_relaxed);
    writing_tokens_ = 0;
    if (!ok) {
      // The stream is broken (client gone): stop generating for it.
      cancelled_.store(true, std::memory_order_relaxed);
      pending_.clear();
      pending_counts_.clear();
      pending_tokens_.store(0, std::memory_order_relaxed);
    }
    // Tell the scheduler when a paused sequence can resume, or must end.
    const bool open = !final_status_.has_value();
    wake = open && scheduler_ != nullptr &&
           (!ok || (before > scheduler_->resume_threshold() &&
                    pending_tokens_.load(std::memory_order_relaxed) <=
                        scheduler_->resume_threshold()));
    next = NextLocked();
  }
  if (wake) scheduler_->Wake();
  Run(next);
}

void GenerateReactor::OnCancel() {
  cancelled_.store(true, std::memory_order_relaxed);
  Next next;
  {
    absl::MutexLock lock(&mu_);
    next = NextLocked();  // finishes now if Close already came
  }
  if (!next.finish.has_value() && scheduler_ != nullptr) scheduler_->Wake();
  Run(next);
}

void GenerateReactor::Report() {
  if (observer_ == nullptr) return;
  absl::MutexLock lock(&mu_);
  record_.duration = absl::Now() - record_.start;
  observer_->OnRequestDone(record_);
}

void GenerateReactor::OnDone() { delete this; }

}  // namespace lstmserve
