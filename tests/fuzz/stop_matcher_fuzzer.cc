// Fuzz target: request stop strings against streamed text -> StopMatcher
// (server/stop_matcher.h), compared with a plain reference: the stream ends
// at the first chunk after which the text so far contains a stop string, and
// the client gets exactly the text before that string's earliest occurrence
// (or, with no match, all the text after Flush); before that, what was
// released is a prefix of the text and at most (longest stop - 1) bytes are
// held back.
// Input: byte 0 % 4 = number of stop strings n; the rest split at 0xFF bytes:
// the first n pieces are the stop strings, the others the streamed chunks.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "server/stop_matcher.h"
#include "tests/fuzz/fuzz_support.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace lstmserve;
  if (size < 1) return 0;
  const size_t num_stops = data[0] % 4;
  const std::vector<std::string> pieces = absl::StrSplit(
      absl::string_view(reinterpret_cast<const char*>(data + 1), size - 1), '\xff');
  std::vector<std::string> stops, chunks;
  for (size_t i = 0; i < pieces.size(); ++i) (i < num_stops ? stops : chunks).push_back(pieces[i]);
  size_t longest = 0;
  for (const std::string& s : stops) longest = std::max(longest, s.size());

  StopMatcher matcher(stops);
  std::string text, released;
  for (const std::string& chunk : chunks) {
    text += chunk;
    const bool stopped = matcher.Push(chunk, &released);
    size_t first = std::string::npos;
    for (const std::string& s : stops) {
      if (!s.empty()) first = std::min(first, text.find(s));
    }
    FUZZ_CHECK(stopped == (first != std::string::npos));
    if (stopped) {
      FUZZ_CHECK(released == text.substr(0, first));
      return 0;
    }
    FUZZ_CHECK(released.size() <= text.size() && text.compare(0, released.size(), released) == 0);
    FUZZ_CHECK(text.size() - released.size() <= (longest == 0 ? 0 : longest - 1));
  }
  matcher.Flush(&released);
  FUZZ_CHECK(released == text);
  return 0;
}
