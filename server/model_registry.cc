#include "server/model_registry.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace lstmserve {

ModelRegistry::ModelRegistry(int keep_versions) : keep_versions_(std::max(1, keep_versions)) {}

ModelRegistry::~ModelRegistry() {
  StopAll(absl::UnavailableError("the server shut down before the request finished"));
  std::map<std::string, std::vector<ModelHandle>, std::less<>> models;
  std::vector<ModelHandle> retired;
  {
    absl::MutexLock lock(&mu_);
    models.swap(models_);
    retired.swap(retired_);
  }
  // Destroyed here, outside the lock (each joins its scheduler thread).
}

absl::StatusOr<ModelHandle> ModelRegistry::Find(absl::string_view name, int64_t version) const {
  absl::MutexLock lock(&mu_);
  auto model = models_.find(name);
  if (model == models_.end()) {
    std::vector<absl::string_view> names;
    for (const auto& [n, versions] : models_) names.push_back(n);
    return absl::NotFoundError(absl::StrCat("model '", name, "' is not loaded; loaded models: ",
                                            absl::StrJoin(names, ", ")));
  }
  const std::vector<ModelHandle>& loaded = model->second;
  if (version == 0) return loaded.front();
  for (const ModelHandle& v : loaded) {
    if (v->version() == version) return v;
  }
  std::vector<int64_t> versions;
  for (const ModelHandle& v : loaded) versions.push_back(v->version());
  return absl::NotFoundError(absl::StrCat("model_version ", version, " of model '", name,
                                          "' is not loaded; loaded versions: ",
                                          absl::StrJoin(versions, ", ")));
}

std::vector<v1::ModelInfo> ModelRegistry::List() const {
  absl::MutexLock lock(&mu_);
  std::vector<v1::ModelInfo> out;
  for (const auto& [name, loaded] : models_) {
    v1::ModelInfo info = loaded.front()->info();
    for (const ModelHandle& v : loaded) info.add_loaded_versions(v->version());
    out.push_back(std::move(info));
  }
  return out;
}

std::vector<int64_t> ModelRegistry::LoadedVersions(absl::string_view name) const {
  absl::MutexLock lock(&mu_);
  std::vector<int64_t> out;
  auto model = models_.find(name);
  if (model == models_.end()) return out;
  for (const ModelHandle& v : model->second) out.push_back(v->version());
  return out;
}

int ModelRegistry::Resident(absl::string_view name) const {
  absl::MutexLock lock(&mu_);
  int n = 0;
  auto model = models_.find(name);
  if (model != models_.end()) n += static_cast<int>(model->second.size());
  for (const ModelHandle& v : retired_) n += v->name() == name ? 1 : 0;
  return n;
}

absl::Status ModelRegistry::Publish(ModelHandle version, const std::vector<int64_t>& retire) {
  absl::MutexLock lock(&mu_);
  std::vector<ModelHandle>& loaded = models_[version->name()];
  for (const ModelHandle& v : loaded) {
    if (v->version() == version->version()) {
      return absl::AlreadyExistsError(
          absl::StrCat("model '", version->identity(), "' is already loaded"));
    }
  }
  for (auto it = loaded.begin(); it != loaded.end();) {
    if (std::find(retire.begin(), retire.end(), (*it)->version()) == retire.end()) {
      ++it;
      continue;
    }
    retired_.push_back(std::move(*it));
    it = loaded.erase(it);
  }
  auto at = std::find_if(loaded.begin(), loaded.end(), [&](const ModelHandle& v) {
    return v->version() < version->version();
  });
  loaded.insert(at, std::move(version));
  while (static_cast<int>(loaded.size()) > keep_versions_) {
    retired_.push_back(std::move(loaded.back()));
    loaded.pop_back();
  }
  return absl::OkStatus();
}

void ModelRegistry::Retire(absl::string_view name, int64_t version) {
  absl::MutexLock lock(&mu_);
  auto model = models_.find(name);
  if (model == models_.end()) return;
  std::vector<ModelHandle>& loaded = model->second;
  for (auto it = loaded.begin(); it != loaded.end(); ++it) {
    if ((*it)->version() != version) continue;
    retired_.push_back(std::move(*it));
    loaded.erase(it);
    break;
  }
  if (loaded.empty()) models_.erase(model);
}

void ModelRegistry::RemoveModel(absl::string_view name) {
  absl::MutexLock lock(&mu_);
  auto model = models_.find(name);
  if (model == models_.end()) return;
  for (ModelHandle& v : model->second) retired_.push_back(std::move(v));
  models_.erase(model);
}

std::vector<v1::ModelInfo> ModelRegistry::ReleaseRetired() {
  std::vector<ModelHandle> unused;
  {
    absl::MutexLock lock(&mu_);
    // A retired version cannot be found any more, so once the registry's
    // handle is the only one (no request, no AllVersions copy), no new one
    // can appear.
    auto idle = std::stable_partition(retired_.begin(), retired_.end(),
                                      [](const ModelHandle& v) { return v.use_count() > 1; });
    std::move(idle, retired_.end(), std::back_inserter(unused));
    retired_.erase(idle, retired_.end());
  }
  std::vector<v1::ModelInfo> out;
  for (ModelHandle& v : unused) {
    out.push_back(v->info());
    v.reset();  // stops the scheduler, joins its thread, frees the engine
  }
  return out;
}

bool ModelRegistry::HasRetired() const {
  absl::MutexLock lock(&mu_);
  return !retired_.empty();
}

std::vector<ModelHandle> ModelRegistry::AllVersions() const {
  absl::MutexLock lock(&mu_);
  std::vector<ModelHandle> out;
  for (const auto& [name, loaded] : models_) out.insert(out.end(), loaded.begin(), loaded.end());
  out.insert(out.end(), retired_.begin(), retired_.end());
  return out;
}

bool ModelRegistry::WaitUntilIdle(absl::Time deadline) const {
  bool idle = true;
  for (const ModelHandle& v : AllVersions()) idle = v->scheduler()->WaitUntilIdle(deadline) && idle;
  return idle;
}

void ModelRegistry::StopAll(const absl::Status& status) const {
  for (const ModelHandle& v : AllVersions()) v->scheduler()->Stop(status);
}

}  // namespace lstmserve
