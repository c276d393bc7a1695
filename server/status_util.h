// ToGrpcStatus: the one place where absl::Status becomes a gRPC status on the
// wire. Thread-safe (pure function).
#ifndef LSTMSERVE_SERVER_STATUS_UTIL_H_
#define LSTMSERVE_SERVER_STATUS_UTIL_H_

#include <grpcpp/support/status.h>

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace lstmserve {

// Messages longer than this are cut (with "...") so a hostile input cannot
// make an error message large.
inline constexpr size_t kMaxStatusMessageBytes = 1024;

// `message` cut to kMaxStatusMessageBytes (on a UTF-8 boundary, ending in
// "..."): what every wire (gRPC, HTTP) carries.
std::string BoundedStatusMessage(absl::string_view message);

// Maps the code one to one (absl and gRPC share the numbering) and bounds the
// message length.
grpc::Status ToGrpcStatus(const absl::Status& status);

}  // namespace lstmserve

#endif  // LSTMSERVE_SERVER_STATUS_UTIL_H_
