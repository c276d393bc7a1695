// Server transport credentials from SecurityOptions: plaintext, TLS
// (--tls-cert + --tls-key) or mutual TLS (+ --tls-client-ca: clients must
// present a certificate signed by that CA, or the handshake fails).
// Files are read once at start-up; stateless functions.
#ifndef LSTMSERVE_SERVER_CREDENTIALS_H_
#define LSTMSERVE_SERVER_CREDENTIALS_H_

#include <memory>
#include <string>

#include <grpcpp/security/server_credentials.h>

#include "absl/status/statusor.h"
#include "server/options.h"

namespace lstmserve {

// INVALID_ARGUMENT naming the flag and the path when a file is missing,
// unreadable or not PEM, or when only one of cert/key is given, or a client
// CA without a certificate.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const SecurityOptions& options);

// The whole file, or INVALID_ARGUMENT naming `flag` and the path.
absl::StatusOr<std::string> ReadPemFile(const std::string& path, const char* flag);

}  // namespace lstmserve

#endif  // LSTMSERVE_SERVER_CREDENTIALS_H_
