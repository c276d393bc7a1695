#include "server/request_log.h"

#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"

namespace lstmserve {
namespace {

void AppendJsonString(absl::string_view s, std::string* out) {
  out->push_back('"');
  for (const char c : s) {
    switch (c) {
      case '"':
        out->append("\\\"");
        break;
      case '\\':
        out->append("\\\\");
        break;
      case '\n':
        out->append("\\n");
        break;
      case '\r':
        out->append("\\r");
        break;
      case '\t':
        out->append("\\t");
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          absl::StrAppendFormat(out, "\\u%04x", static_cast<unsigned char>(c));
        } else {
          out->push_back(c);
        }
    }
  }
  out->push_back('"');
}

void AppendField(const char* key, absl::string_view value, std::string* out) {
  absl::StrAppend(out, ",\"", key, "\":");
  AppendJsonString(value, out);
}

double Ms(absl::Duration d) { return absl::ToDoubleMilliseconds(d); }

}  // namespace

LogLevel RequestLog::LevelOf(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kOk:
      return LogLevel::kInfo;
    case absl::StatusCode::kUnknown:
    case absl::StatusCode::kInternal:
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDataLoss:
    case absl::StatusCode::kUnimplemented:
    case absl::StatusCode::kAborted:
      return LogLevel::kError;
    default:
      return LogLevel::kWarning;
  }
}

std::string RequestLog::Format(const RequestRecord& r) {
  std::string out = "{\"time\":";
  AppendJsonString(absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", r.start, absl::UTCTimeZone()), &out);
  AppendField("level", LogLevelName(LevelOf(r.code)), &out);
  AppendField("request_id", r.request_id, &out);
  AppendField("peer", r.peer, &out);
  AppendField("model", r.model, &out);
  AppendField("rpc", r.rpc, &out);
  AppendField("code", absl::StatusCodeToString(r.code), &out);
  absl::StrAppend(&out, ",\"prompt_tokens\":", r.prompt_tokens,
                  ",\"generated_tokens\":", r.generated_tokens);
  if (r.time_to_first_token) {
    absl::StrAppendFormat(&out, ",\"ttft_ms\":%.3f", Ms(*r.time_to_first_token));
  }
  if (r.queue_wait) absl::StrAppendFormat(&out, ",\"queue_ms\":%.3f", Ms(*r.queue_wait));
  absl::StrAppendFormat(&out, ",\"duration_ms\":%.3f", Ms(r.duration));
  if (!r.finish_reason.empty()) AppendField("finish_reason", r.finish_reason, &out);
  if (!r.message.empty()) AppendField("message", r.message, &out);
  out.push_back('}');
  return out;
}

absl::StatusOr<std::unique_ptr<RequestLog>> RequestLog::Create(const std::string& path,
                                                               LogLevel level, int max_queued,
                                                               std::function<void()> on_drop) {
  if (max_queued < 1) return absl::InvalidArgumentError("RequestLog: max_queued must be >= 1");
  if (path == "-" || path == "stderr") {
    return std::unique_ptr<RequestLog>(
        new RequestLog(stderr, false, level, max_queued, std::move(on_drop)));
  }
  std::FILE* f = std::fopen(path.c_str(), "a");
  if (f == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--request-log '", path, "': cannot open for appending: ", std::strerror(errno)));
  }
  return std::unique_ptr<RequestLog>(
      new RequestLog(f, true, level, max_queued, std::move(on_drop)));
}

RequestLog::RequestLog(std::FILE* out, bool owned, LogLevel level, int max_queued,
                       std::function<void()> on_drop)
    : out_(out),
      owned_(owned),
      level_(level),
      max_queued_(static_cast<size_t>(max_queued)),
      on_drop_(std::move(on_drop)) {
  writer_ = std::thread([this] { Run(); });
}

RequestLog::~RequestLog() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  writer_.join();
  if (owned_) std::fclose(out_);
}

void RequestLog::OnRequestDone(const RequestRecord& record) {
  if (LevelOf(record.code) < level_) return;
  {
    absl::MutexLock lock(&mu_);
    if (queue_.size() < max_queued_) {
      queue_.push_back(record);
      ++enqueued_;
      return;
    }
  }
  dropped_.fetch_add(1, std::memory_order_relaxed);
  if (on_drop_) on_drop_();
}

void RequestLog::Flush() {
  absl::MutexLock lock(&mu_);
  std::pair<RequestLog*, int64_t> until(this, enqueued_);
  mu_.Await(absl::Condition(
      +[](std::pair<RequestLog*, int64_t>* a)
           ABSL_NO_THREAD_SAFETY_ANALYSIS { return a->first->written_ >= a->second; },
      &until));
}

void RequestLog::Run() {
  for (;;) {
    std::deque<RequestRecord> batch;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(
          +[](RequestLog* l)
               ABSL_NO_THREAD_SAFETY_ANALYSIS { return l->stop_ || !l->queue_.empty(); },
          this));
      if (queue_.empty() && stop_) return;
      batch.swap(queue_);
    }
    std::string text;
    for (const RequestRecord& r : batch) absl::StrAppend(&text, Format(r), "\n");
    std::fwrite(text.data(), 1, text.size(), out_);
    std::fflush(out_);
    absl::MutexLock lock(&mu_);
    written_ += static_cast<int64_t>(batch.size());
  }
}

}  // namespace lstmserve
