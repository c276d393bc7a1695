// ModelRegistry: the models being served, by name, each a set of loaded
// versions (ModelVersion, newest first; the newest serves requests that
// name no version), plus the versions retired from that set that still
// finish their sequences. Requests look a version up with Find and hold the
// handle it returns until they end.
//
// The registry decides nothing about what to load: the fixed models of
// Start (--model, version 1) and the repository (server/model_repository.h)
// Publish versions into it and Retire them. A retired version is no longer
// found; it stays resident until no request holds it, and ReleaseRetired
// (called by the repository's thread) then destroys it -- never on a request's
// or a scheduler's thread.
//
// Thread-safe: every method takes a short lock (Find: a map lookup and a
// shared_ptr copy); nothing waits for inference but WaitUntilIdle.
#ifndef LSTMSERVE_SERVER_MODEL_REGISTRY_H_
#define LSTMSERVE_SERVER_MODEL_REGISTRY_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "lstmserve/v1/lstmserve.pb.h"
#include "server/model_version.h"

namespace lstmserve {

class ModelRegistry {
 public:
  // Keeps the `keep_versions` (>= 1) newest published versions of each model
  // loaded; publishing another retires the oldest.
  explicit ModelRegistry(int keep_versions = 1);
  // Stops every version (StopAll with UNAVAILABLE) and destroys them; no
  // handle may be held by then.
  ~ModelRegistry();

  ModelRegistry(const ModelRegistry&) = delete;
  ModelRegistry& operator=(const ModelRegistry&) = delete;

  // The version of `name` to run: `version` == 0, the serving (newest
  // loaded) one; otherwise that loaded version. NOT_FOUND naming the model
  // and the loaded models, or the version and the model's loaded versions.
  absl::StatusOr<ModelHandle> Find(absl::string_view name, int64_t version = 0) const;

  // ListModels: the serving version's info of each model, by name, with
  // version and loaded_versions (newest first) filled in.
  std::vector<v1::ModelInfo> List() const;
  // Loaded versions of `name`, newest first (empty: not served).
  std::vector<int64_t> LoadedVersions(absl::string_view name) const;
  // Loaded plus retired-and-still-resident versions of `name`.
  int Resident(absl::string_view name) const;
  int keep_versions() const { return keep_versions_; }

  // Adds `version` to its model's loaded versions (the model appears if it
  // was not served) and, in the same step, retires the loaded versions
  // listed in `retire`; if more than keep_versions are then loaded, the
  // oldest are retired. ALREADY_EXISTS when that version is already loaded.
  absl::Status Publish(ModelHandle version, const std::vector<int64_t>& retire = {});
  // Retires a loaded version (nothing if not loaded). Retiring the last one
  // removes the model: requests for it get NOT_FOUND from then on.
  void Retire(absl::string_view name, int64_t version);
  // Retires every loaded version of `name`.
  void RemoveModel(absl::string_view name);

  // Destroys the retired versions that no request holds any more (waits for
  // their scheduler threads to end); returns their descriptions. Call from a
  // thread that is no version's scheduler thread.
  std::vector<v1::ModelInfo> ReleaseRetired();
  // True while some retired version is still resident.
  bool HasRetired() const;

  // Every resident version, loaded and retired (liveness, drain, stop).
  std::vector<ModelHandle> AllVersions() const;
  // True when every resident version's scheduler went idle before `deadline`.
  bool WaitUntilIdle(absl::Time deadline) const;
  // Stops every resident version's scheduler (ModelScheduler::Stop).
  void StopAll(const absl::Status& status) const;

 private:
  const int keep_versions_;
  mutable absl::Mutex mu_;
  // Loaded versions by model name, newest first; never an empty vector.
  std::map<std::string, std::vector<ModelHandle>, std::less<>> models_ ABSL_GUARDED_BY(mu_);
  std::vector<ModelHandle> retired_ ABSL_GUARDED_BY(mu_);
};

}  // namespace lstmserve

#endif  // LSTMSERVE_SERVER_MODEL_REGISTRY_H_
