// ModelRegistry: the loaded models by name, each with its tokenizer, its
// scheduler (which owns the engine) and its ListModels description. The set
// of models is fixed at Create; lookups are thread-safe.
#ifndef LSTMSERVE_SERVER_MODEL_REGISTRY_H_
#define LSTMSERVE_SERVER_MODEL_REGISTRY_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "lstmserve/v1/lstmserve.pb.h"
#include "models/engine.h"
#include "models/engine_factory.h"
#include "models/tokenizer.h"
#include "server/options.h"
#include "server/scheduler.h"
#include "server/state_codec.h"
#include "server/state_keys.h"

namespace lstmserve {

// An engine ready to serve under `name`.
struct NamedEngine {
  std::string name;
  std::unique_ptr<InferenceEngine> engine;
  // SHA-256 of its weights (server/model_fingerprint.h), carried by its
  // portable states. LoadEngines fills it from the package files; empty: a
  // fingerprint of the config only (engines built in memory).
  std::string fingerprint = {};
};

// A --model NAME=DIR flag value.
struct ModelSpec {
  std::string name;
  std::string directory;
};
// Parses "NAME=DIR"; INVALID_ARGUMENT naming the flag value otherwise.
absl::StatusOr<ModelSpec> ParseModelSpec(absl::string_view flag_value);

// Loads each package and builds its engine; with several models and
// options.threads == 0 each engine gets cores / models threads (at least 1).
// The first failure is returned
// (naming the model), so a server never starts with a model missing or on
// another engine than asked for.
absl::StatusOr<std::vector<NamedEngine>> LoadEngines(const std::vector<ModelSpec>& specs,
                                                     EngineKind kind,
                                                     const EngineOptions& options);

class ModelRegistry {
 public:
  struct Model {
    std::string name;
    std::unique_ptr<Tokenizer> tokenizer;
    std::unique_ptr<ModelScheduler> scheduler;  // destroyed before tokenizer
    v1::ModelInfo info;
    // Signs and verifies this model's portable states.
    std::unique_ptr<ModelStateCodec> state_codec;
  };

  // The observer for one model's scheduler (may return null: none); called
  // once per model during Create. What it returns is borrowed and must
  // outlive the registry.
  using ObserverFactory = std::function<SchedulerObserver*(const v1::ModelInfo& model)>;

  // Starts one scheduler per engine. Names must be unique and non-empty.
  // `state_keys` (borrowed; outlives the registry) signs the models'
  // portable states; null: the registry makes and owns a random key ring.
  static absl::StatusOr<std::unique_ptr<ModelRegistry>> Create(
      std::vector<NamedEngine> engines, const SchedulerOptions& options,
      const ObserverFactory& observer_for = nullptr, const StateKeyRing* state_keys = nullptr);

  // NOT_FOUND naming the model and the loaded ones.
  absl::StatusOr<Model*> Find(absl::string_view name) const;
  const std::vector<std::unique_ptr<Model>>& models() const { return models_; }

  // True when every scheduler went idle before `deadline`.
  bool WaitUntilIdle(absl::Time deadline);
  // Stops every scheduler (ModelScheduler::Stop).
  void StopAll(const absl::Status& status);

 private:
  ModelRegistry() = default;
  std::unique_ptr<StateKeyRing> own_keys_;  // when Create got none
  std::vector<std::unique_ptr<Model>> models_;
};

}  // namespace lstmserve

#endif  // LSTMSERVE_SERVER_MODEL_REGISTRY_H_
