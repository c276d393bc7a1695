// CompletionSink: the GenerationSink of one POST /v1/completions request.
// Streaming ("stream": true), each Send becomes one Server-Sent Event
// `data: {text_completion chunk}` written as soon as the connection can take
// it (output not yet written is merged into the next write, so a slow reader
// gets fewer, bigger writes and its pending tokens pause the sequence, as for
// gRPC); Close writes the event with finish_reason (and usage when asked
// for) and `data: [DONE]`. The response starts with the first event, so a
// request that fails before its first token still gets an HTTP error
// status; a failure after that is an `data: {"error": ...}` event and the
// stream ends without [DONE]. Not streaming, the text is collected and
// answered in one JSON object.
//
// cancelled() is the connection's client_gone(): a client that disconnects
// ends its sequence at the scheduler's next step (the connection wakes the
// scheduler when it notices).
//
// Lifetime: Run creates the sink; after a successful Submit the scheduler
// borrows it until Close, and Close deletes it. Send/Close run on the
// scheduler thread; cancelled/pending_tokens from any thread.
#ifndef LSTMSERVE_SERVER_SSE_SINK_H_
#define LSTMSERVE_SERVER_SSE_SINK_H_

#include <memory>
#include <string>
#include <vector>

#include "models/tokenizer.h"
#include "server/generation.h"
#include "server/http_server.h"
#include "server/model_version.h"
#include "server/openai_json.h"
#include "server/request_observer.h"
#include "server/scheduler.h"

namespace lstmserve {

class CompletionSink final : public GenerationSink {
 public:
  struct Params {
    CompletionHeader header;
    bool stream = false;
    bool include_usage = false;
    bool logprobs = false;
    // The version this request runs on, held until the sink is destroyed so
    // that `tokenizer` and `scheduler` (both the version's) outlive the
    // request even when a swap retires the version meanwhile.
    ModelHandle version;
    const Tokenizer* tokenizer = nullptr;  // borrowed: the version's
    ModelScheduler* scheduler = nullptr;   // borrowed: the version's
    RequestObserver* observer = nullptr;   // borrowed; may be null
    RequestRecord record;                  // completed and reported at the end
  };

  // Submits `job` with a new sink as its sink; if the scheduler refuses it
  // (queue full, stopping), answers that error at once.
  static void Run(Params params, std::shared_ptr<HttpExchange> exchange,
                  std::unique_ptr<GenerationJob> job);

  void Send(v1::GenerateResponse delta, int tokens) override;
  void Close(v1::GenerateResponse last, const absl::Status& status) override;
  bool cancelled() const override { return exchange_->client_gone(); }
  int pending_tokens() const override { return exchange_->pending_tokens(); }

 private:
  CompletionSink(Params params, std::shared_ptr<HttpExchange> exchange)
      : p_(std::move(params)), exchange_(std::move(exchange)) {}
  void StartStreamOnce();
  // One `data: ...` event for `delta`'s text and tokens.
  std::string Event(const v1::GenerateResponse& delta, const std::string& finish_reason,
                    const v1::Usage* usage);
  // Completes the record and reports it (just before the last write).
  void Report(const v1::GenerateResponse& last, const absl::Status& status);

  Params p_;
  const std::shared_ptr<HttpExchange> exchange_;
  // Scheduler thread only.
  bool started_ = false;
  int64_t text_bytes_ = 0;  // text already sent (the next piece's text_offset)
  std::string text_;        // not streaming: everything so far
  std::vector<v1::GeneratedToken> tokens_;
};

}  // namespace lstmserve

#endif  // LSTMSERVE_SERVER_SSE_SINK_H_
