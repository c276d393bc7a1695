// ToGrpcStatus: the one place where absl::Status becomes a gRPC status on the
// wire. Thread-safe (pure function).
#ifndef LSTMSERVE_SERVER_STATUS_UTIL_H_
#define LSTMSERVE_SERVER_STATUS_UTIL_H_

#include <grpcpp/support/status.h>

#include "absl/status/status.h"

namespace lstmserve {

// Messages longer than this are cut (with "...") so a hostile input cannot
// make an error message large.
inline constexpr size_t kMaxStatusMessageBytes = 1024;

// Maps the code one to one (absl and gRPC share the numbering) and bounds the
// message length.
grpc::Status ToGrpcStatus(const absl::Status& status);

}  // namespace lstmserve

#endif  // LSTMSERVE_SERVER_STATUS_UTIL_H_
