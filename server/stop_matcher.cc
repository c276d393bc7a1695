#include "server/stop_matcher.h"

#include <algorithm>

namespace lstmserve {

StopMatcher::StopMatcher(std::vector<std::string> stops) {
  for (std::string& s : stops) {
    if (!s.empty()) stops_.push_back(std::move(s));
  }
}

bool StopMatcher::Push(absl::string_view text, std::string* released) {
  if (stops_.empty()) {
    released->append(text.data(), text.size());
    return false;
  }
  held_.append(text.data(), text.size());
  // Earliest full match. Every match starts inside held_: text released
  // earlier had no suffix that begins a stop string.
  size_t first = std::string::npos;
  for (const std::string& s : stops_) first = std::min(first, held_.find(s));
  if (first != std::string::npos) {
    released->append(held_, 0, first);
    held_.clear();
    return true;
  }
  // Keep the longest suffix of held_ that is a proper prefix of a stop string.
  size_t keep = 0;
  for (const std::string& s : stops_) {
    for (size_t n = std::min(s.size() - 1, held_.size()); n > keep; --n) {
      if (absl::string_view(held_).substr(held_.size() - n) == absl::string_view(s).substr(0, n)) {
        keep = n;
        break;
      }
    }
  }
  released->append(held_, 0, held_.size() - keep);
  held_.erase(0, held_.size() - keep);
  return false;
}

void StopMatcher::Flush(std::string* released) {
  released->append(held_);
  held_.clear();
}

}  // namespace lstmserve
