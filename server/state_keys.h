// StateKeyRing: the HMAC-SHA256 keys that sign and verify portable LSTM
// states (server/state_codec.h). The first key signs; every key verifies, so
// a key can be rotated without refusing the states clients still hold:
// deploy the new key second (everyone verifies it), then first (everyone
// signs with it), then drop the old one.
//
// Key file (--state-key-file): one key per line as hexadecimal (at least
// kMinStateKeyBytes bytes, i.e. 32 hex digits; 32 bytes = 64 digits
// recommended, e.g. `openssl rand -hex 32`). Blank lines and lines starting
// with '#' are ignored; surrounding whitespace is trimmed. Any other content
// is an error naming the file and the line.
//
// Immutable after creation; thread-safe.
#ifndef LSTMSERVE_SERVER_STATE_KEYS_H_
#define LSTMSERVE_SERVER_STATE_KEYS_H_

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace lstmserve {

inline constexpr size_t kMinStateKeyBytes = 16;
inline constexpr size_t kMaxStateKeyBytes = 1024;
inline constexpr size_t kStateMacBytes = 32;  // HMAC-SHA256
using StateMac = std::array<uint8_t, kStateMacBytes>;

class StateKeyRing {
 public:
  // From `keys` (raw bytes, first signs): INVALID_ARGUMENT when empty or a
  // key is shorter than kMinStateKeyBytes or longer than kMaxStateKeyBytes.
  static absl::StatusOr<StateKeyRing> FromKeys(std::vector<std::string> keys);
  // Parses a key file (format above). NOT_FOUND / FAILED_PRECONDITION when it
  // cannot be read; INVALID_ARGUMENT naming the file and line when malformed.
  static absl::StatusOr<StateKeyRing> FromFile(const std::string& path);
  static absl::StatusOr<StateKeyRing> Parse(absl::string_view text, absl::string_view source);
  // One fresh random 32-byte key from OpenSSL's RAND_bytes: states then
  // verify only within this process.
  static absl::StatusOr<StateKeyRing> Random();

  // HMAC-SHA256 of `data` under the signing (first) key.
  StateMac Sign(absl::string_view data) const;
  // True when `mac` is the HMAC of `data` under any key (constant-time
  // comparison).
  bool Verify(absl::string_view data, const StateMac& mac) const;

  int size() const { return static_cast<int>(keys_.size()); }
  // A printable, non-secret name of the signing key: the first 8 hex digits
  // of SHA-256 over it (for logs).
  std::string signing_key_id() const;
  bool random() const { return random_; }

 private:
  StateKeyRing(std::vector<std::string> keys, bool random)
      : keys_(std::move(keys)), random_(random) {}
  std::vector<std::string> keys_;
  bool random_ = false;
};

}  // namespace lstmserve

#endif  // LSTMSERVE_SERVER_STATE_KEYS_H_
