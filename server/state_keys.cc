#include "server/state_keys.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace lstmserve {
namespace {

StateMac Hmac(const std::string& key, absl::string_view data) {
  StateMac mac{};
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), mac.data(), &len);
  return mac;
}

bool IsHex(absl::string_view s) {
  for (char c : s) {
    if (!absl::ascii_isxdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

}  // namespace

absl::StatusOr<StateKeyRing> StateKeyRing::FromKeys(std::vector<std::string> keys) {
  if (keys.empty()) return absl::InvalidArgumentError("the state key ring has no key");
  for (size_t i = 0; i < keys.size(); ++i) {
    if (keys[i].size() < kMinStateKeyBytes || keys[i].size() > kMaxStateKeyBytes) {
      return absl::InvalidArgumentError(absl::StrCat(
          "state key ", i + 1, " is ", keys[i].size(), " bytes; keys must have ",
          kMinStateKeyBytes, " to ", kMaxStateKeyBytes, " bytes (32 recommended)"));
    }
  }
  return StateKeyRing(std::move(keys), /*random=*/false);
}

absl::StatusOr<StateKeyRing> StateKeyRing::Parse(absl::string_view text,
                                                 absl::string_view source) {
  std::vector<std::string> keys;
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_number;
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line[0] == '#') continue;
    if (line.size() % 2 != 0 || !IsHex(line)) {
      return absl::InvalidArgumentError(
          absl::StrCat(source, " line ", line_number,
                       ": not a hexadecimal key (an even number of 0-9a-f digits)"));
    }
    if (line.size() / 2 < kMinStateKeyBytes || line.size() / 2 > kMaxStateKeyBytes) {
      return absl::InvalidArgumentError(absl::StrCat(
          source, " line ", line_number, ": the key is ", line.size() / 2,
          " bytes; keys must have ", kMinStateKeyBytes, " to ", kMaxStateKeyBytes,
          " bytes (e.g. openssl rand -hex 32)"));
    }
    keys.push_back(absl::HexStringToBytes(line));
  }
  if (keys.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(source, " holds no key"));
  }
  return StateKeyRing(std::move(keys), /*random=*/false);
}

absl::StatusOr<StateKeyRing> StateKeyRing::FromFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open the state key file ", path));
  std::stringstream text;
  text << in.rdbuf();
  if (in.bad()) {
    return absl::FailedPreconditionError(absl::StrCat("cannot read the state key file ", path));
  }
  return Parse(text.str(), absl::StrCat("state key file ", path));
}

absl::StatusOr<StateKeyRing> StateKeyRing::Random() {
  std::string key(32, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(key.data()), static_cast<int>(key.size())) !=
      1) {
    return absl::InternalError("OpenSSL RAND_bytes failed to make a state key");
  }
  return StateKeyRing({std::move(key)}, /*random=*/true);
}

StateMac StateKeyRing::Sign(absl::string_view data) const { return Hmac(keys_.front(), data); }

bool StateKeyRing::Verify(absl::string_view data, const StateMac& mac) const {
  bool ok = false;
  for (const std::string& key : keys_) {
    const StateMac expected = Hmac(key, data);
    ok |= CRYPTO_memcmp(expected.data(), mac.data(), kStateMacBytes) == 0;
  }
  return ok;
}

std::string StateKeyRing::signing_key_id() const {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(keys_.front().data()), keys_.front().size(),
         digest);
  return absl::BytesToHexString(absl::string_view(reinterpret_cast<char*>(digest), 4));
}

}  // namespace lstmserve
