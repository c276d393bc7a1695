#include "server/model_repository.h"

#include <algorithm>
#include <filesystem>
#include <iostream>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "server/model_fingerprint.h"
#include "server/model_loader.h"

namespace lstmserve {
namespace {

namespace fs = std::filesystem;

// How often the thread looks for retired versions that no request holds.
constexpr absl::Duration kReleasePeriod = absl::Milliseconds(50);

void Log(const std::string& line) { std::cerr << "lstmserve: " + line + "\n"; }

bool IsHidden(const std::string& name) { return name.empty() || name[0] == '.'; }

// A positive decimal integer, digits only.
bool ParseVersion(const std::string& name, int64_t* version) {
  if (name.empty() || name.size() > 18 ||
      !std::all_of(name.begin(), name.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return false;
  }
  return absl::SimpleAtoi(name, version) && *version > 0;
}

std::string Serving(const std::vector<int64_t>& loaded) {
  return loaded.empty() ? std::string("no version is served")
                        : absl::StrCat("version ", loaded.front(), " still serves");
}

}  // namespace

absl::StatusOr<RepositoryListing> ListRepository(const std::string& directory) {
  std::error_code error;
  if (!fs::is_directory(directory, error)) {
    return absl::NotFoundError(
        absl::StrCat("model repository '", directory, "' is not a directory"));
  }
  RepositoryListing listing;
  for (fs::directory_iterator m(directory, error), end; !error && m != end; m.increment(error)) {
    const std::string name = m->path().filename().string();
    std::error_code e;
    if (IsHidden(name) || !m->is_directory(e)) continue;
    auto& versions = listing[name];
    for (fs::directory_iterator v(m->path(), e); !e && v != end; v.increment(e)) {
      int64_t version = 0;
      std::error_code e2;
      if (!ParseVersion(v->path().filename().string(), &version) || !v->is_directory(e2)) {
        continue;
      }
      versions[version] = v->path().string();
    }
    // A model directory that vanished mid-listing reads as empty: removed.
  }
  if (error) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot list model repository '", directory, "': ", error.message()));
  }
  return listing;
}

absl::StatusOr<std::unique_ptr<ModelRepository>> ModelRepository::Start(
    Options options, ModelRegistry* registry, VersionObserver* observer) {
  std::unique_ptr<ModelRepository> r(new ModelRepository(std::move(options), registry, observer));
  if (absl::Status scanned = r->RescanNow(); !scanned.ok()) return scanned;
  r->thread_ = std::thread([p = r.get()] { p->Loop(); });
  return r;
}

ModelRepository::~ModelRepository() { Stop(); }

void ModelRepository::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

void ModelRepository::RequestRescan() {
  absl::MutexLock lock(&mu_);
  rescan_ = true;
}

void ModelRepository::Loop() {
  const absl::Duration poll = options_.repository.poll_interval;
  absl::Time next_poll =
      poll > absl::ZeroDuration() ? absl::Now() + poll : absl::InfiniteFuture();
  while (true) {
    bool rescan = false;
    {
      absl::MutexLock lock(&mu_);
      auto due = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
        return stop_ || rescan_ || release_;
      };
      const absl::Time wake =
          registry_->HasRetired() ? std::min(next_poll, absl::Now() + kReleasePeriod) : next_poll;
      mu_.AwaitWithDeadline(absl::Condition(&due), wake);
      if (stop_) return;
      rescan = rescan_;
      rescan_ = false;
      release_ = false;
    }
    // A released version may let a waiting new version in: scan again.
    if (ReleaseRetired()) rescan = true;
    if (absl::Now() >= next_poll) {
      rescan = true;
      next_poll = absl::Now() + poll;
    }
    if (rescan) {
      if (absl::Status s = RescanNow(); !s.ok()) {
        Log(absl::StrCat("error: model repository scan failed (nothing changed): ", s.message()));
      }
      ReleaseRetired();  // versions retired by this scan that nobody held
    }
  }
}

bool ModelRepository::ReleaseRetired() {
  std::vector<v1::ModelInfo> released = registry_->ReleaseRetired();
  for (const v1::ModelInfo& info : released) {
    Log(absl::StrCat("model '", info.name(), "' version ", info.version(),
                     ": unloaded (its last request ended)"));
    if (observer_ != nullptr) observer_->OnVersionUnloaded(info);
  }
  return !released.empty();
}

absl::Status ModelRepository::RescanNow() {
  absl::Status status;
  {
    absl::MutexLock scan_lock(&scan_mu_);
    auto listing = ListRepository(options_.repository.directory);
    if (listing.ok()) {
      // Models this repository serves whose directory is gone (or empty).
      for (auto it = served_.begin(); it != served_.end();) {
        auto found = listing->find(*it);
        if (found != listing->end() && !found->second.empty()) {
          ++it;
          continue;
        }
        if (!registry_->LoadedVersions(*it).empty()) {
          Log(absl::StrCat("model '", *it, "': its directory is gone from the repository; "
                           "new requests get NOT_FOUND, running ones finish"));
          registry_->RemoveModel(*it);
        }
        it = served_.erase(it);
      }
      // Forget refusals of directories that are gone.
      for (auto it = refused_.begin(); it != refused_.end();) {
        std::error_code e;
        it = fs::exists(it->first, e) ? std::next(it) : refused_.erase(it);
      }
      int models = static_cast<int>(options_.fixed_models.size());
      for (const auto& [name, versions] : *listing) {
        if (!options_.fixed_models.count(name)) ++models;
      }
      const int threads = ThreadsPerModel(options_.loading.engine, models);
      // Models loaded by earlier scans take the new split at their next call.
      for (auto& [name, budget] : budgets_) budget->threads.store(threads);
      for (auto& [name, budget] : options_.fixed_budgets) budget->threads.store(threads);
      for (const auto& [name, versions] : *listing) {
        if (options_.fixed_models.count(name)) {
          if (fixed_warned_.insert(name).second) {
            Log(absl::StrCat("error: model repository entry '", options_.repository.directory,
                             "/", name, "' refused: model '", name,
                             "' is already served from --model"));
            if (observer_ != nullptr) observer_->OnLoadFailure(name);
          }
          continue;
        }
        SyncModel(name, versions, threads);
      }
    }
    status = listing.status();
  }
  if (registry_->HasRetired()) {
    absl::MutexLock lock(&mu_);
    release_ = true;  // the thread watches them until they are released
  }
  return status;
}

int ModelRepository::ThreadsOf(const std::string& name) {
  absl::MutexLock lock(&scan_mu_);
  auto it = budgets_.find(name);
  if (it != budgets_.end()) return it->second->threads.load();
  auto fixed = options_.fixed_budgets.find(name);
  return fixed != options_.fixed_budgets.end() ? fixed->second->threads.load() : -1;
}

void ModelRepository::SyncModel(const std::string& name,
                                const std::map<int64_t, std::string>& versions, int threads) {
  // Loaded versions whose directory is gone keep serving until a version
  // that is still there replaces them (in the same step), so removing the
  // newest version's directory falls back to the one before without a gap.
  std::vector<int64_t> vanished;
  for (int64_t v : registry_->LoadedVersions(name)) {
    if (!versions.count(v)) vanished.push_back(v);
  }
  const int keep = registry_->keep_versions();
  int have = 0;
  bool waiting = false;
  for (auto it = versions.rbegin(); it != versions.rend() && have < keep; ++it) {
    const auto& [version, directory] = *it;
    const std::vector<int64_t> loaded = registry_->LoadedVersions(name);
    if (std::find(loaded.begin(), loaded.end(), version) != loaded.end()) {
      ++have;
      continue;
    }
    auto refused = refused_.find(directory);
    if (refused != refused_.end()) {
      auto signature = DirectorySignature(directory);
      if (signature.ok() && *signature == refused->second) continue;  // unchanged: still bad
    }
    if (registry_->Resident(name) >= keep + 1) {
      // An old version is still finishing its requests: this one waits (the
      // thread rescans when that version is unloaded).
      waiting = true;
      break;
    }
    if (LoadVersion(name, version, directory, threads, vanished)) {
      ++have;
      vanished.clear();  // retired by the publish
    }
  }
  if (vanished.empty() || (have == 0 && waiting)) return;
  for (int64_t v : vanished) {
    Log(absl::StrCat("model '", name, "' version ", v,
                     ": its directory is gone; retired (running requests finish)"));
    registry_->Retire(name, v);
  }
}

bool ModelRepository::LoadVersion(const std::string& name, int64_t version,
                                  const std::string& directory, int threads,
                                  const std::vector<int64_t>& replaces) {
  auto signature = DirectorySignature(directory);
  if (!signature.ok()) {
    Refuse(name, directory, std::string(signature.status().message()));
    return false;
  }
  auto fingerprint = PackageFingerprint(directory);
  if (!fingerprint.ok()) {
    Refuse(name, directory, std::string(fingerprint.status().message()));
    return false;
  }
  auto engine = LoadEngine(directory, options_.loading, threads);
  if (!engine.ok()) {
    refused_[directory] = *signature;
    Refuse(name, directory, std::string(engine.status().message()));
    return false;
  }
  std::shared_ptr<ComputeBudget>& budget = budgets_[name];
  if (budget == nullptr) budget = std::make_shared<ComputeBudget>();
  budget->threads.store(threads);
  ModelVersion::ObserverFactory observer_for = nullptr;
  if (observer_ != nullptr) {
    observer_for = [this](const v1::ModelInfo& info) { return observer_->OnVersionLoaded(info); };
  }
  std::unique_ptr<InferenceEngine> shared =
      std::make_unique<SharedComputeEngine>(*std::move(engine), budget);
  if (options_.loading.wrap_engine) shared = options_.loading.wrap_engine(version, std::move(shared));
  auto created = ModelVersion::Create(
      name, version, std::move(shared),
      ModelVersion::Source{directory, *signature, *std::move(fingerprint)}, options_.scheduler,
      options_.state_keys, observer_for);
  if (!created.ok()) {
    refused_[directory] = *signature;
    Refuse(name, directory, std::string(created.status().message()));
    return false;
  }
  ModelHandle handle = *std::move(created);
  absl::Status ready = options_.warm_up
                           ? WarmUp(handle->scheduler(), handle->identity())
                           : absl::OkStatus();
  if (ready.ok()) ready = registry_->Publish(handle, replaces);
  if (!ready.ok()) {
    const v1::ModelInfo info = handle->info();
    handle.reset();
    if (observer_ != nullptr) observer_->OnVersionUnloaded(info);
    refused_[directory] = *signature;
    Refuse(name, directory, std::string(ready.message()));
    return false;
  }
  refused_.erase(directory);
  served_.insert(name);
  const std::vector<int64_t> loaded = registry_->LoadedVersions(name);
  Log(absl::StrCat("model '", name, "' version ", version, " loaded from '", directory,
                   "'; serving version ", loaded.front(), " (loaded: ",
                   absl::StrJoin(loaded, ", "), ")"));
  return true;
}

void ModelRepository::Refuse(const std::string& name, const std::string& directory,
                             const std::string& reason) {
  Log(absl::StrCat("error: model version directory '", directory, "' refused: ", reason, " (",
                   name, ": ", Serving(registry_->LoadedVersions(name)), ")"));
  if (observer_ != nullptr) observer_->OnLoadFailure(name);
}

}  // namespace lstmserve
