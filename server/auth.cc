#include "server/auth.h"

#include <fstream>
#include <sstream>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace lstmserve {
namespace {

// Compares without an early exit, so the time taken does not tell how many
// leading bytes of a guess were right. (The length still shows; tokens are
// meant to be long random strings.)
bool ConstantTimeEquals(absl::string_view a, absl::string_view b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    diff |= static_cast<unsigned char>(a[i]) ^ static_cast<unsigned char>(b[i]);
  }
  return diff == 0;
}

}  // namespace

absl::StatusOr<std::unique_ptr<BearerTokenAuth>> BearerTokenAuth::Load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::InvalidArgumentError(
        absl::StrCat("--auth-token-file: cannot read '", path, "'"));
  }
  std::stringstream text;
  text << in.rdbuf();
  std::vector<std::string> tokens;
  for (absl::string_view line : absl::StrSplit(text.str(), '\n')) {
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line.front() == '#') continue;
    tokens.emplace_back(line);
  }
  if (tokens.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--auth-token-file: '", path, "' holds no token (one per line)"));
  }
  return FromTokens(std::move(tokens));
}

std::unique_ptr<BearerTokenAuth> BearerTokenAuth::FromTokens(std::vector<std::string> tokens) {
  return std::unique_ptr<BearerTokenAuth>(new BearerTokenAuth(std::move(tokens)));
}

absl::Status BearerTokenAuth::Check(const grpc::CallbackServerContext& context) const {
  const auto& metadata = context.client_metadata();
  auto it = metadata.find("authorization");
  if (it == metadata.end()) return CheckHeader("", false);
  return CheckHeader(absl::string_view(it->second.data(), it->second.size()), true);
}

absl::Status BearerTokenAuth::CheckHeader(absl::string_view authorization, bool present) const {
  if (!present) {
    return absl::UnauthenticatedError(
        "missing 'authorization: Bearer <token>' metadata (the server requires a token)");
  }
  constexpr absl::string_view kScheme = "Bearer ";
  if (authorization.size() < kScheme.size() ||
      !absl::EqualsIgnoreCase(authorization.substr(0, kScheme.size()), kScheme)) {
    return absl::UnauthenticatedError(
        "the 'authorization' metadata must be 'Bearer <token>'");
  }
  const absl::string_view token =
      absl::StripAsciiWhitespace(authorization.substr(kScheme.size()));
  bool match = false;
  for (const std::string& t : tokens_) match |= ConstantTimeEquals(token, t);
  if (!match) return absl::UnauthenticatedError("the bearer token is not valid");
  return absl::OkStatus();
}

}  // namespace lstmserve
