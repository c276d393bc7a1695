// RequestLog: one JSON line per finished request, e.g.
//   {"time":"2024-05-01T12:00:00.123Z","level":"info","request_id":"5f3a-7",
//    "peer":"ipv4:127.0.0.1:40112","model":"shakespeare","rpc":"Generate",
//    "code":"OK","prompt_tokens":6,"generated_tokens":128,"ttft_ms":14.2,
//    "queue_ms":0.1,"duration_ms":771.0,"finish_reason":"length"}
// ("message" is added when the status has one). Levels: OK is "info";
// errors the client caused (INVALID_ARGUMENT, NOT_FOUND, CANCELLED,
// DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, ...) "warning"; server-side ones
// (INTERNAL, UNAVAILABLE, UNKNOWN, DATA_LOSS, ...) "error". Lines below the
// configured level are not written.
//
// Never blocks its caller on I/O: OnRequestDone (any thread, including a
// scheduler thread for Score/Embed) only appends the record to a bounded
// queue under a short lock; one writer thread formats and writes. When the
// queue is full the record is dropped and counted (dropped()).
//
// Thread-safe. The destructor writes what is queued, then joins the writer.
#ifndef LSTMSERVE_SERVER_REQUEST_LOG_H_
#define LSTMSERVE_SERVER_REQUEST_LOG_H_

#include <atomic>
#include <cstdio>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "server/log_level.h"
#include "server/options.h"
#include "server/request_observer.h"

namespace lstmserve {

class RequestLog final : public RequestObserver {
 public:
  // `path`: "-" or "stderr" for standard error, otherwise a file opened for
  // appending (NOT_FOUND/PERMISSION_DENIED-style errors name it).
  // `on_drop` (may be empty) is called for each dropped record, on the
  // caller's thread; it must be cheap (a counter increment).
  static absl::StatusOr<std::unique_ptr<RequestLog>> Create(
      const std::string& path, LogLevel level, int max_queued = 4096,
      std::function<void()> on_drop = nullptr);
  ~RequestLog() override;

  void OnRequestDone(const RequestRecord& record) override;

  // Records dropped because the queue was full.
  int64_t dropped() const { return dropped_.load(std::memory_order_relaxed); }
  // Blocks until every queued record is written and flushed (tests).
  void Flush();

  // The JSON line for `record` (no newline).
  static std::string Format(const RequestRecord& record);
  static LogLevel LevelOf(absl::StatusCode code);

 private:
  RequestLog(std::FILE* out, bool owned, LogLevel level, int max_queued,
             std::function<void()> on_drop);
  void Run();

  std::FILE* const out_;
  const bool owned_;  // fclose in the destructor
  const LogLevel level_;
  const size_t max_queued_;
  const std::function<void()> on_drop_;
  std::atomic<int64_t> dropped_{0};

  absl::Mutex mu_;
  std::deque<RequestRecord> queue_ ABSL_GUARDED_BY(mu_);
  int64_t enqueued_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t written_ ABSL_GUARDED_BY(mu_) = 0;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread writer_;  // last
};

}  // namespace lstmserve

#endif  // LSTMSERVE_SERVER_REQUEST_LOG_H_
