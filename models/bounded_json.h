// ParseBoundedJson: nlohmann::json parsing for files a model package brings
// (config.json, the safetensors header), with a cap on nesting depth.
// nlohmann::json parses iteratively, but copying and dump() recurse once per
// level, so a hostile file nested a million levels deep would overflow the
// stack; it is rejected instead, without building the deep part. Stateless;
// thread-safe. Internal to the models layer (nlohmann is a private dependency).
#ifndef LSTMSERVE_MODELS_BOUNDED_JSON_H_
#define LSTMSERVE_MODELS_BOUNDED_JSON_H_

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"

namespace lstmserve {

// Arrays and objects may nest this many levels (the outermost is level 1).
inline constexpr int kMaxJsonDepth = 64;

// INVALID_ARGUMENT with the parser's message for malformed JSON, or
// "arrays and objects nest deeper than 64 levels".
absl::StatusOr<nlohmann::json> ParseBoundedJson(absl::string_view text);

}  // namespace lstmserve

#endif  // LSTMSERVE_MODELS_BOUNDED_JSON_H_
