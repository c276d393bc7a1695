#include "server/http_status_util.h"

#include <cctype>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "nlohmann/json.hpp"
#include "server/status_util.h"

namespace lstmserve {
namespace {

const char* ErrorType(int http_status) {
  switch (http_status) {
    case 401:
      return "authentication_error";
    case 403:
      return "permission_error";
    case 429:
      return "rate_limit_error";
    default:
      return http_status >= 500 ? "server_error" : "invalid_request_error";
  }
}

}  // namespace

int HttpStatusCode(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kOk:
      return 200;
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kOutOfRange:
      return 400;
    case absl::StatusCode::kUnauthenticated:
      return 401;
    case absl::StatusCode::kPermissionDenied:
      return 403;
    case absl::StatusCode::kNotFound:
      return 404;
    case absl::StatusCode::kResourceExhausted:
      return 429;
    case absl::StatusCode::kCancelled:
      return 499;
    case absl::StatusCode::kUnimplemented:
      return 501;
    case absl::StatusCode::kUnavailable:
      return 503;
    case absl::StatusCode::kDeadlineExceeded:
      return 504;
    default:
      return 500;
  }
}

std::string ErrorParam(const absl::Status& status) {
  if (status.code() != absl::StatusCode::kInvalidArgument) return "";
  const absl::string_view message = status.message();
  const size_t end = message.find(' ');
  if (end == absl::string_view::npos || end == 0) return "";
  const absl::string_view word = message.substr(0, end);
  // "<field> is ...", "<field> must ...", "<field> has ...", "<field>
  // contains ..." (the tokenizer's).
  const absl::string_view rest = message.substr(end + 1);
  bool verb = false;
  for (absl::string_view v : {"is ", "must ", "has ", "contains "}) verb |= absl::StartsWith(rest, v);
  if (!verb) return "";
  if (!std::islower(static_cast<unsigned char>(word[0]))) return "";
  for (char c : word) {
    if (!(std::islower(static_cast<unsigned char>(c)) || std::isdigit(static_cast<unsigned char>(c)) ||
          c == '_' || c == '[' || c == ']' || c == '.')) {
      return "";
    }
  }
  return std::string(word);
}

HttpError ToHttpError(const absl::Status& status, int http_status) {
  HttpError error;
  error.http_status = http_status != 0 ? http_status : HttpStatusCode(status.code());
  const std::string param = ErrorParam(status);
  nlohmann::json object = {
      {"message", BoundedStatusMessage(status.message())},
      {"type", ErrorType(error.http_status)},
      {"param", param.empty() ? nlohmann::json(nullptr) : nlohmann::json(param)},
      {"code", absl::AsciiStrToLower(absl::StatusCodeToString(status.code()))},
  };
  error.body = nlohmann::json{{"error", std::move(object)}}.dump(
      -1, ' ', false, nlohmann::json::error_handler_t::replace);
  return error;
}

}  // namespace lstmserve
