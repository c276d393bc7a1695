// The process's own TCP sockets on the server's port, seen through
// /proc/self/fd: what a drain needs and gRPC 1.51's C++ API lacks.
// grpc::Server::Shutdown closes the listener and sends GOAWAY in one step,
// and from then on gRPC core cancels every stream that still arrives (its
// "zombie" calls: a trailers-only CANCELLED response). A proxy that sent a
// call on a pooled connection just before it read that GOAWAY cannot retry
// it. StopAccepting closes only the listener; open connections go on
// serving until --max-connection-age sends their GOAWAY (streams racing that
// GOAWAY are still served), and ConnectionCount tells when none is left.
//
// Linux only. Thread-safe (no state; each call scans the descriptor table).
#ifndef LSTMSERVE_SERVER_LISTEN_SOCKETS_H_
#define LSTMSERVE_SERVER_LISTEN_SOCKETS_H_

#include "absl/status/statusor.h"

namespace lstmserve {

// shutdown(2)s every listening TCP socket of this process bound to `port`:
// new connections are refused at once, accepted ones are untouched. gRPC's
// accept loop then sees EINVAL, logs "Failed accept4: Invalid argument" once
// and stops polling the socket; grpc::Server::Shutdown still closes it.
// Returns how many sockets it stopped (0: none found, e.g. a unix: address).
absl::StatusOr<int> StopAccepting(int port);

// The number of connected (accepted) TCP sockets of this process whose local
// port is `port`.
int ConnectionCount(int port);

}  // namespace lstmserve

#endif  // LSTMSERVE_SERVER_LISTEN_SOCKETS_H_
