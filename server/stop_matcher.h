// StopMatcher: finds stop strings in streamed text and holds back text that
// could still turn out to be the start of one, so that a stop string never
// reaches the client. Thread-compatible (one per sequence).
#ifndef LSTMSERVE_SERVER_STOP_MATCHER_H_
#define LSTMSERVE_SERVER_STOP_MATCHER_H_

#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace lstmserve {

class StopMatcher {
 public:
  // Non-empty stop strings (empty ones are ignored).
  explicit StopMatcher(std::vector<std::string> stops);

  // Adds `text`; appends to *released the text now known not to be part of a
  // stop string. Returns true when a stop string was found: *released then
  // ends just before it, and everything after is dropped.
  bool Push(absl::string_view text, std::string* released);
  // End of stream: releases what is still held.
  void Flush(std::string* released);

 private:
  std::vector<std::string> stops_;
  std::string held_;  // never longer than the longest stop string - 1
};

}  // namespace lstmserve

#endif  // LSTMSERVE_SERVER_STOP_MATCHER_H_
