// Loading models: a package directory -> an engine ready for a scheduler,
// and the signature that says whether a directory's files changed since it
// was last looked at. No registry, no flags: the registry
// (server/model_registry.h) holds what this builds, the repository
// (server/model_repository.h) decides what to build. Thread-safe (no state).
#ifndef LSTMSERVE_SERVER_MODEL_LOADER_H_
#define LSTMSERVE_SERVER_MODEL_LOADER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "models/engine.h"
#include "server/options.h"

namespace lstmserve {

// An engine ready to serve under `name` (a --model flag, or a test's
// in-memory model): served as version 1 of that model, never rescanned.
struct NamedEngine {
  std::string name;
  std::unique_ptr<InferenceEngine> engine;
  // SHA-256 of its package files (server/model_fingerprint.h), carried by
  // its portable states. LoadEngines fills it; empty: a fingerprint of the
  // config only (engines built in memory).
  std::string fingerprint = {};
};

// A model to load from a package directory (a --model NAME=DIR flag).
struct ModelSpec {
  std::string name;
  std::string directory;
};

// Each model's compute threads: options.threads when set; otherwise all
// cores split evenly over `models` models (at least 1 each), so that several
// busy models never oversubscribe the machine.
int ThreadsPerModel(const EngineOptions& options, int models);

// The cores this process may use: its CPU affinity (a container's cpuset,
// taskset), at least 1.
int UsableCores();

// Loads and validates the package in `directory` and builds its engine with
// `threads` compute threads. Errors name the directory and say what was
// wrong (the package loader's message, or the engine's).
absl::StatusOr<std::unique_ptr<InferenceEngine>> LoadEngine(const std::string& directory,
                                                            const ModelLoadOptions& options,
                                                            int threads);

// LoadEngine for each spec, the threads split by ThreadsPerModel. The first
// failure is returned (naming the model), so a server never starts with a
// model missing or on another engine than asked for.
absl::StatusOr<std::vector<NamedEngine>> LoadEngines(const std::vector<ModelSpec>& specs,
                                                     EngineKind kind,
                                                     const EngineOptions& options);

// What a directory holds, for change detection: every regular file below it
// (relative path, size, modification time in ns), sorted by path, as one
// string. Equal signatures: nothing was written, renamed in or removed
// since. NOT_FOUND when `directory` does not exist.
absl::StatusOr<std::string> DirectorySignature(const std::string& directory);

}  // namespace lstmserve

#endif  // LSTMSERVE_SERVER_MODEL_LOADER_H_
