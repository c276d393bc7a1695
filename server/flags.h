// Command-line flags of lstmserve, parsed into typed options. Only
// lstmserve_main.cc calls this; everything else takes the options structs.
#ifndef LSTMSERVE_SERVER_FLAGS_H_
#define LSTMSERVE_SERVER_FLAGS_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "models/engine_factory.h"
#include "server/model_loader.h"
#include "server/options.h"

namespace lstmserve {

// Everything the flags decide (the engine: server.loading).
struct ServerConfig {
  ServerOptions server;
  std::vector<ModelSpec> models;  // --model NAME=DIR
};

// Parses argv (exits on --help or an unknown flag, as absl does). Flag names
// may use dashes or underscores; --model may repeat. INVALID_ARGUMENT naming
// the flag for a bad value.
absl::StatusOr<ServerConfig> ParseServerFlags(int argc, char** argv);

}  // namespace lstmserve

#endif  // LSTMSERVE_SERVER_FLAGS_H_
