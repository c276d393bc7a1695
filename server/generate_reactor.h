// GenerateReactor: the server side of one Generate stream (gRPC callback
// API). It hands its GenerationJob to the model's scheduler and is that
// job's GenerationSink: the scheduler thread posts text with Send/Close, the
// reactor queues it and writes it, one write in flight at a time, the next
// started from OnWriteDone. Reactions never block or compute.
//
// Backpressure: output that is not yet written is merged into one pending
// message, so a slow reader receives bigger messages rather than more of
// them. When its pending tokens reach SchedulerOptions::max_pending_tokens
// the scheduler pauses the sequence (it keeps its slot and state but skips
// Steps, so the batch never waits for it) and resumes it once the reader has
// drained to half of that; the deadline still applies while paused.
//
// Accounting: the reactor carries the request's RequestRecord, completes it
// from Reject or from the final message (Close), and hands it to the
// RequestObserver just before it calls Finish — so a client that has the
// RPC's status can already see it counted. That may be on the scheduler
// thread (Close with no write in flight): observers never block.
//
// Lifetime: created by the service, deleted by OnDone. After a successful
// Submit the scheduler holds the sink until Close, and the reactor calls
// Finish only after Close, so it never dies under the scheduler; but once
// Close has released mu_ another thread may finish and delete it, so Close
// touches nothing after that unless it is the one writing or finishing.
// Thread-safe: sink calls (scheduler thread) and reactions (gRPC threads)
// meet under mu_. What sink calls make due (a write, or Finish) runs on the
// WriteDispatcher thread; a write marked in flight keeps the reactor alive
// until that task has run.
#ifndef LSTMSERVE_SERVER_GENERATE_REACTOR_H_
#define LSTMSERVE_SERVER_GENERATE_REACTOR_H_

#include <atomic>
#include <deque>
#include <memory>
#include <optional>

#include <grpcpp/grpcpp.h>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "lstmserve/v1/lstmserve.pb.h"
#include "server/generation.h"
#include "server/model_version.h"
#include "server/request_observer.h"
#include "server/scheduler.h"
#include "server/write_dispatcher.h"

namespace lstmserve {

class GenerateReactor final : public grpc::ServerWriteReactor<v1::GenerateResponse>,
                              public GenerationSink {
 public:
  // `model`'s scheduler runs the job, and the reactor holds `model` until
  // it is deleted, so the version outlives the RPC even if it is swapped
  // out meanwhile; every message carries its version (model_version). Null
  // for a reactor that will only Reject. `observer` (borrowed, may be null)
  // is told of `record`, completed, when the RPC is done.
  // `dispatcher` (borrowed, may be null: inline) starts the writes and the
  // Finish that Send/Close make due, off the scheduler thread.
  GenerateReactor(ModelHandle model, RequestObserver* observer, RequestRecord record,
                  WriteDispatcher* dispatcher = nullptr)
      : model_(std::move(model)),
        scheduler_(model_ != nullptr ? model_->scheduler() : nullptr),
        model_version_(model_ != nullptr ? model_->version() : 0),
        observer_(observer),
        dispatcher_(dispatcher),
        record_(std::move(record)) {}

  // Queues `job` (job->sink must be this) on the scheduler; if the scheduler
  // refuses it, ends the RPC with that status.
  void Submit(std::unique_ptr<GenerationJob> job);
  // Ends the RPC at once with `status` (invalid request, draining...).
  void Reject(const absl::Status& status);

  // GenerationSink (scheduler thread).
  void Send(v1::GenerateResponse delta, int tokens) override;
  void Close(v1::GenerateResponse last, const absl::Status& status) override;
  bool cancelled() const override { return cancelled_.load(std::memory_order_relaxed); }
  int pending_tokens() const override { return pending_tokens_.load(std::memory_order_relaxed); }

  // Reactions (gRPC threads).
  void OnWriteDone(bool ok) override;
  void OnCancel() override;
  void OnDone() override;

 private:
  // What to do once mu_ is released: at most one of the two.
  struct Next {
    const v1::GenerateResponse* write = nullptr;
    std::optional<grpc::Status> finish;
  };
  void Queue(v1::GenerateResponse message, int tokens) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  Next NextLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Run(const Next& next);
  // Run, on the dispatcher thread when there is one.
  void Dispatch(Next next);
  // Completes record_ and tells observer_ (once: right before Finish).
  void Report() ABSL_LOCKS_EXCLUDED(mu_);

  const ModelHandle model_;  // null: Reject only
  ModelScheduler* const scheduler_;
  const int64_t model_version_;
  RequestObserver* const observer_;
  WriteDispatcher* const dispatcher_;
  std::atomic<bool> cancelled_{false};
  std::atomic<int> pending_tokens_{0};  // tokens in pending_ and writing_

  absl::Mutex mu_;
  std::deque<v1::GenerateResponse> pending_ ABSL_GUARDED_BY(mu_);  // at most one, see Queue
  std::deque<int> pending_counts_ ABSL_GUARDED_BY(mu_);
  v1::GenerateResponse writing_ ABSL_GUARDED_BY(mu_);  // the write in flight
  int writing_tokens_ ABSL_GUARDED_BY(mu_) = 0;
  bool write_in_flight_ ABSL_GUARDED_BY(mu_) = false;
  std::optional<grpc::Status> final_status_ ABSL_GUARDED_BY(mu_);  // set by Close
  bool finished_ ABSL_GUARDED_BY(mu_) = false;  // Finish called
  RequestRecord record_ ABSL_GUARDED_BY(mu_);
};

}  // namespace lstmserve

#endif  // LSTMSERVE_SERVER_GENERATE_REACTOR_H_
