// The types a generation passes through between the service and a model's
// scheduler: the validated request (GenerationSpec), the stream it reports
// to (GenerationSink), and the unit of work the scheduler owns
// (GenerationJob).
#ifndef LSTMSERVE_SERVER_GENERATION_H_
#define LSTMSERVE_SERVER_GENERATION_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "lstmserve/v1/lstmserve.pb.h"
#include "models/lstm_state.h"
#include "models/sampler.h"

namespace lstmserve {

// A GenerateRequest after validation (server/validation.h). Plain value.
struct GenerationSpec {
  std::string request_id;
  std::vector<int32_t> prompt;  // >= 1 token ids (with start_state: its last token first)
  // The state the prompt continues (a client's portable state,
  // server/state_codec.h), which covers `tokens_before` tokens before
  // prompt[0]; none: zeros and 0.
  std::optional<SequenceState> start_state;
  int64_t tokens_before = 0;
  // Store and look up prompt states in the model's prefix cache (the
  // server's warm-up does not, so the metrics count clients' requests).
  bool use_prefix_cache = true;
  int max_tokens = 1;
  // Tokens per message after the first (GenerateRequest.stream_interval
  // resolved): >= 1.
  int stream_interval = 1;
  SamplingParams sampling;  // seed resolved (drawn when the request had none)
  std::vector<std::string> stops;  // non-empty strings
  int top_logprobs = 0;
  bool return_tokens = false;  // report token ids and log-probs
};

// Where a generation's output goes: implemented by the Generate reactor (and
// by test and warm-up sinks). The scheduler calls Send and Close from its
// thread, never holding its own lock; they must not block. cancelled() and
// pending_tokens() may be called from any thread.
class GenerationSink {
 public:
  virtual ~GenerationSink() = default;
  // Queues `delta` (`tokens` newly generated tokens) for the client; a sink
  // may merge it with output not yet written.
  virtual void Send(v1::GenerateResponse delta, int tokens) = 0;
  // The last call for this generation: `last` (finish_reason, usage) is
  // written if the stream still can be, then the RPC ends with `status`.
  // The scheduler never touches the sink after Close.
  virtual void Close(v1::GenerateResponse last, const absl::Status& status) = 0;
  // True once the client cancelled, the deadline passed or a write failed.
  virtual bool cancelled() const = 0;
  // Generated tokens queued but not yet written to the client.
  virtual int pending_tokens() const = 0;
};

class ModelStateCodec;

// One generation request owned by a scheduler from a successful Submit until
// it calls sink->Close.
struct GenerationJob {
  GenerationSpec spec;
  GenerationSink* sink = nullptr;  // borrowed; outlives the job (see above)
  // return_state: encodes the state into the last message (borrowed; the
  // model's, outlives the job). Null: no state returned.
  const ModelStateCodec* return_state = nullptr;
  absl::Time arrival = absl::Now();
  absl::Time deadline = absl::InfiniteFuture();
};

}  // namespace lstmserve

#endif  // LSTMSERVE_SERVER_GENERATION_H_
