// A model's weights fingerprint: SHA-256 (OpenSSL libcrypto), computed once
// at load. Portable LSTM states carry it (server/state_codec.h) so a state is
// refused by any other model, and by another version of the same model.
// Pure functions; thread-safe.
#ifndef LSTMSERVE_SERVER_MODEL_FINGERPRINT_H_
#define LSTMSERVE_SERVER_MODEL_FINGERPRINT_H_

#include <string>

#include "absl/status/statusor.h"
#include "models/model_config.h"
#include "models/model_package.h"

namespace lstmserve {

inline constexpr size_t kFingerprintBytes = 32;

// Over every regular file directly in a package directory, in name order
// (each as its name, size and bytes): config, weights and whatever else the
// package holds (a tokenizer model). NOT_FOUND / FAILED_PRECONDITION when the
// directory or a file cannot be read.
absl::StatusOr<std::string> PackageFingerprint(const std::string& directory);

// Over an in-memory package (one built by code, e.g. in tests): the config's
// shape, vocabulary and metadata and every tensor's f32 values.
std::string PackageFingerprint(const ModelPackage& package);

// Over a config's shape and vocabulary only: the fallback for an engine
// served without a fingerprint (two such engines of one shape cannot tell
// their states apart).
std::string ConfigFingerprint(const ModelConfig& config);

// The first `n` bytes of `fingerprint` as hex, for messages and logs.
std::string FingerprintPrefix(const std::string& fingerprint, int n = 6);

}  // namespace lstmserve

#endif  // LSTMSERVE_SERVER_MODEL_FINGERPRINT_H_
