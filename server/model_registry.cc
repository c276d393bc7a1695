#include "server/model_registry.h"

#include <algorithm>
#include <set>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/status_macros.h"
#include "models/model_package.h"
#include "server/model_fingerprint.h"

namespace lstmserve {
namespace {

int64_t ParameterCount(const ModelConfig& c) {
  const int64_t V = c.vocab_size, E = c.embedding_dim, H = c.hidden_size;
  const int64_t R = c.output_size(), P = c.proj_size;
  int64_t n = V * E + V * R + V;  // embedding, head
  for (int l = 0; l < c.num_layers; ++l) n += 4 * H * ((l == 0 ? E : R) + R) + 8 * H + P * H;
  return n;
}

v1::ModelInfo Describe(const std::string& name, const InferenceEngine& engine, int max_batch) {
  const ModelConfig& c = engine.config();
  v1::ModelInfo info;
  info.set_name(name);
  info.set_num_layers(c.num_layers);
  info.set_hidden_size(c.hidden_size);
  info.set_embedding_dim(c.embedding_dim);
  info.set_proj_size(c.proj_size);
  info.set_vocab_size(c.vocab_size);
  info.set_tokenizer(TokenizerTypeName(c.tokenizer.type));
  info.set_precision(PrecisionName(engine.precision()));
  info.set_parameter_count(ParameterCount(c));
  info.set_engine(engine.kind());
  info.set_max_batch(max_batch);
  return info;
}

}  // namespace

absl::StatusOr<ModelSpec> ParseModelSpec(absl::string_view flag_value) {
  const size_t eq = flag_value.find('=');
  if (eq == absl::string_view::npos || eq == 0 || eq + 1 == flag_value.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--model '", flag_value, "' is not NAME=DIR"));
  }
  return ModelSpec{std::string(flag_value.substr(0, eq)), std::string(flag_value.substr(eq + 1))};
}

absl::StatusOr<std::vector<NamedEngine>> LoadEngines(const std::vector<ModelSpec>& specs,
                                                     EngineKind kind,
                                                     const EngineOptions& options) {
  std::vector<NamedEngine> engines;
  EngineOptions per_model = options;
  if (per_model.threads == 0 && specs.size() > 1) {
    // Each model's scheduler runs its engine on its own thread, with its
    // own OpenMP team: all cores each would oversubscribe the machine as
    // soon as two models are busy. Split the cores instead.
    const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    per_model.threads = std::max(1, cores / static_cast<int>(specs.size()));
  }
  for (const ModelSpec& spec : specs) {
    auto package = LoadModelPackage(spec.directory);
    if (!package.ok()) {
      return absl::Status(package.status().code(),
                          absl::StrCat("model '", spec.name, "': ", package.status().message()));
    }
    auto fingerprint = PackageFingerprint(spec.directory);
    if (!fingerprint.ok()) {
      return absl::Status(fingerprint.status().code(),
                          absl::StrCat("model '", spec.name, "': ", fingerprint.status().message()));
    }
    auto engine = CreateEngine(kind, *std::move(package), per_model);
    if (!engine.ok()) {
      return absl::Status(engine.status().code(),
                          absl::StrCat("model '", spec.name, "' on the ", EngineKindName(kind),
                                       " engine: ", engine.status().message()));
    }
    engines.push_back({spec.name, *std::move(engine), *std::move(fingerprint)});
  }
  return engines;
}

absl::StatusOr<std::unique_ptr<ModelRegistry>> ModelRegistry::Create(
    std::vector<NamedEngine> engines, const SchedulerOptions& options,
    const ObserverFactory& observer_for, const StateKeyRing* state_keys) {
  if (engines.empty()) return absl::InvalidArgumentError("no models to serve (--model)");
  std::unique_ptr<ModelRegistry> registry(new ModelRegistry());
  if (state_keys == nullptr) {
    ASSIGN_OR_RETURN(StateKeyRing random, StateKeyRing::Random());
    registry->own_keys_ = std::make_unique<StateKeyRing>(std::move(random));
    state_keys = registry->own_keys_.get();
  }
  std::set<std::string> names;
  for (NamedEngine& e : engines) {
    if (e.name.empty() || !names.insert(e.name).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("model name '", e.name, "' is empty or used twice"));
    }
    auto model = std::make_unique<Model>();
    model->name = e.name;
    ASSIGN_OR_RETURN(model->tokenizer, Tokenizer::Create(e.engine->config().tokenizer));
    const int max_batch = std::min(options.max_batch, e.engine->max_batch());
    model->info = Describe(e.name, *e.engine, max_batch);
    std::string fingerprint =
        e.fingerprint.empty() ? ConfigFingerprint(e.engine->config()) : e.fingerprint;
    model->state_codec = std::make_unique<ModelStateCodec>(
        StateModel::For(e.name, std::move(fingerprint), e.engine->config()), state_keys);
    SchedulerObserver* observer = observer_for ? observer_for(model->info) : nullptr;
    ASSIGN_OR_RETURN(model->scheduler,
                     ModelScheduler::Create(e.name, std::move(e.engine), model->tokenizer.get(),
                                            options, observer));
    registry->models_.push_back(std::move(model));
  }
  return registry;
}

absl::StatusOr<ModelRegistry::Model*> ModelRegistry::Find(absl::string_view name) const {
  std::vector<absl::string_view> names;
  for (const auto& m : models_) {
    if (m->name == name) return m.get();
    names.push_back(m->name);
  }
  return absl::NotFoundError(absl::StrCat("model '", name, "' is not loaded; loaded models: ",
                                          absl::StrJoin(names, ", ")));
}

bool ModelRegistry::WaitUntilIdle(absl::Time deadline) {
  bool idle = true;
  for (auto& m : models_) idle = m->scheduler->WaitUntilIdle(deadline) && idle;
  return idle;
}

void ModelRegistry::StopAll(const absl::Status& status) {
  for (auto& m : models_) m->scheduler->Stop(status);
}

}  // namespace lstmserve
