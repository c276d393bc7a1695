#include "server/model_loader.h"

#include <sched.h>

#include <algorithm>
#include <filesystem>
#include <system_error>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "models/engine_factory.h"
#include "models/model_package.h"
#include "server/model_fingerprint.h"

namespace lstmserve {

int UsableCores() {
  // The CPUs this process may run on (a container's cpuset, taskset), which
  // OpenMP's default team also follows; hardware_concurrency() counts the
  // whole machine's.
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) return std::max(1, CPU_COUNT(&set));
  return static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

int ThreadsPerModel(const EngineOptions& options, int models) {
  if (options.threads != 0 || models <= 1) return options.threads;
  // Each model's scheduler runs its engine on its own thread, with its own
  // OpenMP team: all cores each would oversubscribe the machine as soon as
  // two models are busy. Split the cores instead.
  return std::max(1, UsableCores() / models);
}

absl::StatusOr<std::unique_ptr<InferenceEngine>> LoadEngine(const std::string& directory,
                                                            const ModelLoadOptions& options,
                                                            int threads) {
  auto package = LoadModelPackage(directory);
  if (!package.ok()) return package.status();
  EngineOptions engine_options = options.engine;
  engine_options.threads = threads;
  auto engine = CreateEngine(options.kind, *std::move(package), engine_options);
  if (!engine.ok()) {
    return absl::Status(engine.status().code(),
                        absl::StrCat("package '", directory, "' on the ",
                                     EngineKindName(options.kind),
                                     " engine: ", engine.status().message()));
  }
  return engine;
}

absl::StatusOr<std::vector<NamedEngine>> LoadEngines(const std::vector<ModelSpec>& specs,
                                                     EngineKind kind,
                                                     const EngineOptions& options) {
  const int threads = ThreadsPerModel(options, static_cast<int>(specs.size()));
  std::vector<NamedEngine> engines;
  for (const ModelSpec& spec : specs) {
    ModelLoadOptions loading;
    loading.kind = kind;
    loading.engine = options;
    auto engine = LoadEngine(spec.directory, loading, threads);
    if (!engine.ok()) {
      return absl::Status(engine.status().code(),
                          absl::StrCat("model '", spec.name, "': ", engine.status().message()));
    }
    auto fingerprint = PackageFingerprint(spec.directory);
    if (!fingerprint.ok()) {
      return absl::Status(fingerprint.status().code(),
                          absl::StrCat("model '", spec.name, "': ", fingerprint.status().message()));
    }
    engines.push_back({spec.name, *std::move(engine), *std::move(fingerprint)});
  }
  return engines;
}

absl::StatusOr<std::string> DirectorySignature(const std::string& directory) {
  namespace fs = std::filesystem;
  std::error_code error;
  if (!fs::is_directory(directory, error)) {
    return absl::NotFoundError(absl::StrCat("'", directory, "' is not a directory"));
  }
  std::vector<std::string> entries;
  for (fs::recursive_directory_iterator it(directory, error), end; !error && it != end;
       it.increment(error)) {
    std::error_code e;
    if (!it->is_regular_file(e)) continue;
    const auto size = it->file_size(e);
    const auto mtime = it->last_write_time(e);
    if (e) continue;  // vanished meanwhile: the next scan sees the new state
    entries.push_back(absl::StrFormat(
        "%s:%d:%d", fs::relative(it->path(), directory, e).string(), size,
        static_cast<int64_t>(mtime.time_since_epoch().count())));
  }
  if (error) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot list '", directory, "': ", error.message()));
  }
  std::sort(entries.begin(), entries.end());
  std::string signature;
  for (const std::string& e : entries) absl::StrAppend(&signature, e, "\n");
  return signature;
}

}  // namespace lstmserve
