// WriteDispatcher: one thread that starts the gRPC writes and finishes of
// Generate streams on behalf of the scheduler thread.
//
// gRPC's StartWrite often serializes the message and writes it to the
// socket inline, on the calling thread: tens of microseconds per stream.
// Done by the scheduler thread for every stream after every step, that
// serial work sat between engine steps (a 64-stream step spent ~2 ms
// starting writes). Posted here instead, it overlaps the next step.
// Ordering per stream is kept by the reactor's own state machine (one write
// in flight; later output merges into the pending message), so tasks of
// different streams may run in any order.
//
// Thread-safe. The destructor runs every task already posted, then joins.
#ifndef LSTMSERVE_SERVER_WRITE_DISPATCHER_H_
#define LSTMSERVE_SERVER_WRITE_DISPATCHER_H_

#include <deque>
#include <functional>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace lstmserve {

class WriteDispatcher {
 public:
  WriteDispatcher();
  ~WriteDispatcher();
  WriteDispatcher(const WriteDispatcher&) = delete;
  WriteDispatcher& operator=(const WriteDispatcher&) = delete;

  // Runs `task` soon on the dispatcher thread. Tasks must not block.
  void Post(std::function<void()> task);

 private:
  void Loop();

  absl::Mutex mu_;
  std::deque<std::function<void()>> tasks_ ABSL_GUARDED_BY(mu_);
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;  // last
};

}  // namespace lstmserve

#endif  // LSTMSERVE_SERVER_WRITE_DISPATCHER_H_
