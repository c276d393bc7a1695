// ModelRepository: keeps a ModelRegistry in step with a versioned model
// repository on disk,
//   DIRECTORY/NAME/VERSION/   a model package (config.json, model.safetensors)
// where VERSION is a positive integer (other entries, e.g. a ".3.tmp"
// staging directory, are ignored). For each model the newest
// keep_versions versions that validate completely are loaded; the newest
// serves.
//
// A scan (at Start, on RequestRescan -- SIGHUP in lstmserve --, and every
// poll_interval) compares the directory with what is loaded:
//  - a new newest version is loaded, warmed up (a short generation), and
//    only then published: new requests go to it, while requests already
//    holding the old version finish there; the old one is unloaded when
//    its last request ends. At most keep_versions + 1 versions of a model
//    are resident; a further new version waits until an old one is gone.
//  - a version that fails (bad config, truncated or mismatched weights, a
//    failed warm-up) is refused: one log line on stderr naming its directory
//    and the reason, VersionObserver::OnLoadFailure
//    (lstmserve_model_load_failures_total), and what serves stays as it was.
//    It is tried again only once its files change (DirectorySignature).
//  - a loaded version whose directory is gone is retired (when an older
//    version is there, it is loaded first and replaces it in one step); a
//    model whose directory is gone is removed (NOT_FOUND for new requests)
//    and unloaded once its requests end.
// Versions are immutable once published: files changed in place under a
// loaded version are not reloaded (publish a new version instead).
// Models given to the server directly (--model NAME=DIR, version 1) are not
// the repository's: a repository model of the same name is refused.
//
// The versions of one model share one compute budget
// (server/shared_engine.h): each is built with the model's threads and they
// take turns. Every scan splits the cores anew (ThreadsPerModel over the
// fixed models and the repository's models listed now) and sets every
// model's budget, so a model added later never oversubscribes the cores
// with the ones already loaded, and one that leaves gives its share back.
//
// Thread-safe. Scans run on the repository's own thread (or the caller's,
// RescanNow), one at a time; it also destroys retired versions once no
// request holds them (ModelRegistry::ReleaseRetired). Borrows the registry
// and the observer (may be null), which must outlive it.
#ifndef LSTMSERVE_SERVER_MODEL_REPOSITORY_H_
#define LSTMSERVE_SERVER_MODEL_REPOSITORY_H_

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "server/model_registry.h"
#include "server/options.h"
#include "server/shared_engine.h"
#include "server/version_observer.h"

namespace lstmserve {

// The version directories of a repository: model name -> version -> path.
using RepositoryListing = std::map<std::string, std::map<int64_t, std::string>>;
// Lists `directory` (one level of models, one of versions; names starting
// with '.' and versions that are not positive integers are skipped).
// NOT_FOUND / FAILED_PRECONDITION when it cannot be read.
absl::StatusOr<RepositoryListing> ListRepository(const std::string& directory);

class ModelRepository {
 public:
  struct Options {
    RepositoryOptions repository;
    ModelLoadOptions loading;
    SchedulerOptions scheduler;
    bool warm_up = true;
    // Models served outside the repository (their names are taken).
    std::set<std::string> fixed_models;
    // Their compute budgets (engines wrapped in SharedComputeEngine), so
    // that the cores are split over them and the repository's models alike;
    // a fixed model without one keeps the threads it was built with.
    std::map<std::string, std::shared_ptr<ComputeBudget>> fixed_budgets;
    // Signs the versions' portable states (borrowed, not null; outlives the
    // repository and every version).
    const StateKeyRing* state_keys = nullptr;
  };

  // Scans once on the calling thread (loading what is there), then starts
  // the repository thread. Fails only when the directory cannot be read;
  // refused versions are logged and counted, not returned.
  static absl::StatusOr<std::unique_ptr<ModelRepository>> Start(Options options,
                                                                ModelRegistry* registry,
                                                                VersionObserver* observer);
  // Stop().
  ~ModelRepository();

  // Asks the repository thread for a scan soon; returns at once. (Not
  // async-signal-safe: lstmserve calls it from the thread that sigwaits.)
  void RequestRescan();
  // Scans now on the calling thread (after any scan in progress); the
  // directory's read error if it could not be listed (nothing changes then).
  absl::Status RescanNow();
  // Ends the thread (a scan in progress finishes first). Idempotent.
  void Stop();

  // The compute threads the last scan gave model `name` (0: all cores; -1:
  // no budget of that name, or not set).
  int ThreadsOf(const std::string& name) ABSL_LOCKS_EXCLUDED(scan_mu_);

 private:
  ModelRepository(Options options, ModelRegistry* registry, VersionObserver* observer)
      : options_(std::move(options)), registry_(registry), observer_(observer) {}
  void Loop();
  // One model's scan step: retire vanished versions, load missing ones.
  void SyncModel(const std::string& name, const std::map<int64_t, std::string>& versions,
                 int threads) ABSL_EXCLUSIVE_LOCKS_REQUIRED(scan_mu_);
  // Loads, warms up and publishes one version, retiring the loaded versions
  // `replaces` in the same step; false if it was refused.
  bool LoadVersion(const std::string& name, int64_t version, const std::string& directory,
                   int threads, const std::vector<int64_t>& replaces)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(scan_mu_);
  void Refuse(const std::string& name, const std::string& directory, const std::string& reason)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(scan_mu_);
  // Destroys retired versions nobody holds; true if any was.
  bool ReleaseRetired();

  const Options options_;
  ModelRegistry* const registry_;
  VersionObserver* const observer_;  // may be null

  absl::Mutex scan_mu_;  // one scan at a time
  // Refused version directories -> their signature then (retried on change).
  std::map<std::string, std::string> refused_ ABSL_GUARDED_BY(scan_mu_);
  // Models this repository published (so it may remove them).
  std::set<std::string> served_ ABSL_GUARDED_BY(scan_mu_);
  std::set<std::string> fixed_warned_ ABSL_GUARDED_BY(scan_mu_);
  // One compute budget per model name, shared by its versions.
  std::map<std::string, std::shared_ptr<ComputeBudget>> budgets_ ABSL_GUARDED_BY(scan_mu_);

  mutable absl::Mutex mu_;
  bool rescan_ ABSL_GUARDED_BY(mu_) = false;
  bool release_ ABSL_GUARDED_BY(mu_) = false;  // a scan retired versions
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;  // last
};

}  // namespace lstmserve

#endif  // LSTMSERVE_SERVER_MODEL_REPOSITORY_H_
