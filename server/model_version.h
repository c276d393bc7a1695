// ModelVersion: one loaded version of a model -- its tokenizer, its scheduler
// (which owns the engine) and its ListModels description. Immutable once
// created and shared (std::shared_ptr<const ModelVersion>, a ModelHandle):
// the registry holds the loaded versions, and every request holds the
// version it started on until it ends, so a version that is swapped out or
// removed keeps serving its sequences and is unloaded (engine and weights
// freed, scheduler thread joined) when the last handle goes away.
//
// The last handle must not be dropped on this version's own scheduler thread
// (a Score/Embed callback runs there): the registry keeps a handle of every
// version it retires and destroys them on its own thread (see
// ModelRegistry::ReleaseRetired), so a request's handle is never the last.
//
// Thread-safe: every accessor is const; the scheduler's methods are
// thread-safe.
#ifndef LSTMSERVE_SERVER_MODEL_VERSION_H_
#define LSTMSERVE_SERVER_MODEL_VERSION_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "lstmserve/v1/lstmserve.pb.h"
#include "models/engine.h"
#include "models/tokenizer.h"
#include "server/options.h"
#include "server/scheduler.h"
#include "server/state_codec.h"
#include "server/state_keys.h"

namespace lstmserve {

class ModelVersion {
 public:
  // What identifies the package a version was built from.
  struct Source {
    std::string directory;  // empty: an in-memory engine
    // DirectorySignature of the package when it was loaded (empty: in-memory).
    std::string signature;
    // SHA-256 of the package files (server/model_fingerprint.h), carried by
    // the version's portable states; empty: a fingerprint of the config
    // only (engines built in memory).
    std::string fingerprint;
  };

  // Gives the observer for a version's scheduler (may return null: none);
  // what it returns must outlive the version.
  using ObserverFactory = std::function<SchedulerObserver*(const v1::ModelInfo& info)>;

  // Starts a scheduler for `engine` serving `name` version `version` (>= 1).
  // `state_keys` (borrowed, not null; outlives the version) signs and
  // verifies its portable states, which carry source.fingerprint (or, when
  // that is empty, a fingerprint of the config): a state made by another
  // version (other weights) is refused.
  static absl::StatusOr<std::shared_ptr<const ModelVersion>> Create(
      std::string name, int64_t version, std::unique_ptr<InferenceEngine> engine, Source source,
      const SchedulerOptions& options, const StateKeyRing* state_keys,
      const ObserverFactory& observer_for = nullptr);
  // Stops the scheduler (anything still queued or running ends UNAVAILABLE)
  // and frees the engine.
  ~ModelVersion();

  const std::string& name() const { return name_; }
  int64_t version() const { return version_; }
  const Tokenizer& tokenizer() const { return *tokenizer_; }
  ModelScheduler* scheduler() const { return scheduler_.get(); }
  // name, shape, engine, version (loaded_versions is filled by the registry).
  const v1::ModelInfo& info() const { return info_; }
  const Source& source() const { return source_; }
  // Signs and verifies this version's portable states (server/state_codec.h).
  const ModelStateCodec& state_codec() const { return *state_codec_; }
  // "NAME/VERSION", for log lines and messages.
  std::string identity() const;

 private:
  ModelVersion() = default;
  std::string name_;
  int64_t version_ = 0;
  Source source_;
  v1::ModelInfo info_;
  std::unique_ptr<Tokenizer> tokenizer_;
  std::unique_ptr<ModelStateCodec> state_codec_;
  std::unique_ptr<ModelScheduler> scheduler_;  // destroyed before tokenizer_ and state_codec_
};

using ModelHandle = std::shared_ptr<const ModelVersion>;

// A short generation through `scheduler` (4 greedy tokens), so the first
// request does not pay for lazily built kernels; the error names `what`.
absl::Status WarmUp(ModelScheduler* scheduler, const std::string& what);

}  // namespace lstmserve

#endif  // LSTMSERVE_SERVER_MODEL_VERSION_H_
