#include "server/sse_sink.h"

#include <utility>

#include "server/http_status_util.h"

namespace lstmserve {
namespace {

constexpr char kEventStream[] = "text/event-stream";

std::string SseEvent(const std::string& data) { return "data: " + data + "\n\n"; }

std::string OpenAiFinishReason(v1::FinishReason reason) {
  switch (reason) {
    case v1::FINISH_REASON_LENGTH:
      return "length";
    case v1::FINISH_REASON_STOP:
      return "stop";
    default:
      return FinishReasonLabel(reason);
  }
}

absl::Duration ToDuration(const google::protobuf::Duration& d) {
  return absl::Seconds(d.seconds()) + absl::Nanoseconds(d.nanos());
}

}  // namespace

void CompletionSink::Run(Params params, std::shared_ptr<HttpExchange> exchange,
                         std::unique_ptr<GenerationJob> job) {
  ModelScheduler* scheduler = params.scheduler;
  std::unique_ptr<CompletionSink> sink(new CompletionSink(std::move(params), std::move(exchange)));
  job->sink = sink.get();
  if (absl::Status submitted = scheduler->SubmitGeneration(std::move(job)); !submitted.ok()) {
    sink->Report(v1::GenerateResponse(), submitted);
    HttpError error = ToHttpError(submitted);
    sink->exchange_->Reply(HttpReply{error.http_status, "application/json", std::move(error.body)});
    return;
  }
  sink.release();  // Close deletes it
}

void CompletionSink::StartStreamOnce() {
  if (started_) return;
  started_ = true;
  ModelScheduler* scheduler = p_.scheduler;
  exchange_->StartStream(kEventStream, [scheduler] { scheduler->Wake(); },
                         scheduler->resume_threshold());
}

std::string CompletionSink::Event(const v1::GenerateResponse& delta,
                                  const std::string& finish_reason, const v1::Usage* usage) {
  CompletionPiece piece;
  piece.text = delta.text();
  piece.finish_reason = finish_reason;
  std::vector<v1::GeneratedToken> tokens(delta.tokens().begin(), delta.tokens().end());
  if (p_.logprobs) piece.tokens = &tokens;
  piece.text_offset = text_bytes_;
  piece.usage = usage;
  text_bytes_ += static_cast<int64_t>(delta.text().size());
  return SseEvent(CompletionJson(p_.header, piece, p_.tokenizer));
}

void CompletionSink::Send(v1::GenerateResponse delta, int tokens) {
  if (cancelled()) return;
  if (!p_.stream) {
    text_ += delta.text();
    for (auto& t : *delta.mutable_tokens()) tokens_.push_back(std::move(t));
    return;
  }
  if (delta.text().empty() && (delta.tokens_size() == 0 || !p_.logprobs)) return;
  StartStreamOnce();
  exchange_->StreamWrite(Event(delta, "", nullptr), tokens);
}

void CompletionSink::Report(const v1::GenerateResponse& last, const absl::Status& status) {
  RequestRecord& r = p_.record;
  r.code = status.code();
  r.message = std::string(status.message());
  r.finish_reason = FinishReasonLabel(last.finish_reason());
  r.prompt_tokens = last.usage().prompt_tokens();
  r.generated_tokens = last.usage().generated_tokens();
  if (last.usage().has_time_to_first_token()) {
    r.time_to_first_token = ToDuration(last.usage().time_to_first_token());
  }
  if (last.usage().has_queue_time()) r.queue_wait = ToDuration(last.usage().queue_time());
  r.duration = absl::Now() - r.start;
  if (p_.observer != nullptr) p_.observer->OnRequestDone(r);
}

void CompletionSink::Close(v1::GenerateResponse last, const absl::Status& status) {
  std::unique_ptr<CompletionSink> self(this);  // the scheduler is done with it
  Report(last, status);
  const std::string finish = OpenAiFinishReason(last.finish_reason());
  if (!p_.stream) {
    if (!status.ok()) {
      HttpError error = ToHttpError(status);
      exchange_->Reply(HttpReply{error.http_status, "application/json", std::move(error.body)});
      return;
    }
    text_ += last.text();
    for (auto& t : *last.mutable_tokens()) tokens_.push_back(std::move(t));
    CompletionPiece piece;
    piece.text = std::move(text_);
    piece.finish_reason = finish;
    if (p_.logprobs) piece.tokens = &tokens_;
    piece.usage = &last.usage();
    exchange_->Reply(HttpReply{200, "application/json", CompletionJson(p_.header, piece, p_.tokenizer)});
    return;
  }
  if (!status.ok() && !started_) {
    HttpError error = ToHttpError(status);
    exchange_->Reply(HttpReply{error.http_status, "application/json", std::move(error.body)});
    return;
  }
  StartStreamOnce();
  if (cancelled()) {
    exchange_->EndStream();
    return;
  }
  if (status.ok()) {
    exchange_->StreamWrite(
        Event(last, finish, p_.include_usage ? &last.usage() : nullptr) + SseEvent("[DONE]"), 0);
  } else {
    // Text sent so far stays valid; the error says why the rest is missing.
    exchange_->StreamWrite(SseEvent(ToHttpError(status).body), 0);
  }
  exchange_->EndStream();
}

}  // namespace lstmserve
