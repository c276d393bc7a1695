// The one place where an absl::Status becomes an HTTP answer: the HTTP status
// code and the OpenAI error object {"error": {"message", "type", "param",
// "code"}}. The counterpart of ToGrpcStatus (server/status_util.h); messages
// are the same, bounded the same way. Pure functions; thread-safe.
#ifndef LSTMSERVE_SERVER_HTTP_STATUS_UTIL_H_
#define LSTMSERVE_SERVER_HTTP_STATUS_UTIL_H_

#include <string>

#include "absl/status/status.h"

namespace lstmserve {

// INVALID_ARGUMENT 400, UNAUTHENTICATED 401, PERMISSION_DENIED 403,
// NOT_FOUND 404, RESOURCE_EXHAUSTED 429, UNAVAILABLE 503, DEADLINE_EXCEEDED
// 504, CANCELLED 499, UNIMPLEMENTED 501, FAILED_PRECONDITION 400; anything
// else 500.
int HttpStatusCode(absl::StatusCode code);

// The field an INVALID_ARGUMENT message names: its first word when that
// looks like a field and is followed by "is", "must", "has" or "contains" (`max_tokens
// is 0; ...`, `stop[1] is empty`, the form server/validation.h and
// server/openai_json.h write); else "".
std::string ErrorParam(const absl::Status& status);

// An error answer: the HTTP status and the OpenAI error object as compact JSON
// {"error": {"message": <bounded message>, "type": <from the HTTP status>,
// "param": <ErrorParam or null>, "code": <lower-case status code name>}}.
struct HttpError {
  int http_status = 500;
  std::string body;
};
// `status` must not be OK. `http_status` overrides HttpStatusCode (e.g. 413
// for a body over the limit, which is RESOURCE_EXHAUSTED like a full queue).
HttpError ToHttpError(const absl::Status& status, int http_status = 0);

}  // namespace lstmserve

#endif  // LSTMSERVE_SERVER_HTTP_STATUS_UTIL_H_
