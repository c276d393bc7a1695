// The playground page (server/playground/index.html), embedded into the
// binary at build time (server/playground/embed.cmake): served at GET / by
// the HTTP front, no file or network access needed. Thread-safe.
#ifndef LSTMSERVE_SERVER_PLAYGROUND_H_
#define LSTMSERVE_SERVER_PLAYGROUND_H_

#include "absl/strings/string_view.h"

namespace lstmserve {

absl::string_view PlaygroundHtml();

}  // namespace lstmserve

#endif  // LSTMSERVE_SERVER_PLAYGROUND_H_
