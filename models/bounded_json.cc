#include "models/bounded_json.h"

#include "absl/strings/str_cat.h"

namespace lstmserve {

absl::StatusOr<nlohmann::json> ParseBoundedJson(absl::string_view text) {
  using json = nlohmann::json;
  bool too_deep = false;
  // `depth` counts the containers around the event (0 at the top level).
  // Returning false discards a container and everything in it.
  const json::parser_callback_t limit_depth = [&too_deep](int depth, json::parse_event_t event,
                                                          json& /*parsed*/) {
    if ((event == json::parse_event_t::object_start ||
         event == json::parse_event_t::array_start) &&
        depth >= kMaxJsonDepth) {
      too_deep = true;
      return false;
    }
    return true;
  };
  json parsed;
  try {
    parsed = json::parse(text.begin(), text.end(), limit_depth);
  } catch (const json::exception& e) {
    return absl::InvalidArgumentError(e.what());
  }
  if (too_deep) {
    return absl::InvalidArgumentError(
        absl::StrCat("arrays and objects nest deeper than ", kMaxJsonDepth, " levels"));
  }
  return parsed;
}

}  // namespace lstmserve
