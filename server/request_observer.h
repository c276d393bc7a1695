// RequestObserver: the seam through which the service reports each finished
// RPC (for request metrics and the request log). RequestRecord is what is
// known about one request when it ends. Called once per Generate, Score and
// Embed RPC, from a gRPC thread or a scheduler thread (a unary result is
// finished where it is computed); implementations must be thread-safe,
// cheap, and must not block or do I/O on the calling thread.
#ifndef LSTMSERVE_SERVER_REQUEST_OBSERVER_H_
#define LSTMSERVE_SERVER_REQUEST_OBSERVER_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace lstmserve {

struct RequestRecord {
  absl::Time start;        // when the handler was called
  std::string request_id;  // the client's or the server's (empty if rejected before one)
  std::string peer;        // gRPC peer, e.g. "ipv4:127.0.0.1:5555"
  std::string model;       // a loaded model's name; empty when the request named none
  int64_t model_version = 0;  // the version that ran it; 0 when none did
  const char* rpc = "";    // "Generate", "Score", "Embed"
  absl::StatusCode code = absl::StatusCode::kUnknown;
  std::string message;    // the status message (empty when OK)
  int prompt_tokens = 0;  // Generate: prompt; Score/Embed: tokens processed
  int generated_tokens = 0;
  std::optional<absl::Duration> time_to_first_token;  // Generate with >= 1 token
  std::optional<absl::Duration> queue_wait;           // Generate once admitted
  absl::Duration duration;                            // start to the end of the RPC
  std::string finish_reason;                          // Generate: "length", "stop", ...; else empty
};

class RequestObserver {
 public:
  virtual ~RequestObserver() = default;
  virtual void OnRequestDone(const RequestRecord& record) = 0;
};

// Forwards to several observers (borrowed; they outlive this). Thread-safe
// once built.
class RequestObservers final : public RequestObserver {
 public:
  void Add(RequestObserver* observer) {
    if (observer != nullptr) observers_.push_back(observer);
  }
  bool empty() const { return observers_.empty(); }
  void OnRequestDone(const RequestRecord& record) override {
    for (RequestObserver* o : observers_) o->OnRequestDone(record);
  }

 private:
  std::vector<RequestObserver*> observers_;
};

// "length", "stop", "cancelled", "deadline", "shutdown", or "error"
// (FINISH_REASON_UNSPECIFIED: the generation failed).
const char* FinishReasonLabel(int finish_reason);

}  // namespace lstmserve

#endif  // LSTMSERVE_SERVER_REQUEST_OBSERVER_H_
