// CreateEngine: builds the inference engine named by EngineKind.
#ifndef LSTMSERVE_MODELS_ENGINE_FACTORY_H_
#define LSTMSERVE_MODELS_ENGINE_FACTORY_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "models/engine.h"
#include "models/model_package.h"

namespace lstmserve {

enum class EngineKind { kReference, kOneDnn };
const char* EngineKindName(EngineKind kind);  // "reference", "onednn"
bool ParseEngineKind(const std::string& name, EngineKind* out);

// Takes the package by value: the engine owns (or repacks and drops) the
// weights, so they are held once.
absl::StatusOr<std::unique_ptr<InferenceEngine>> CreateEngine(EngineKind kind,
                                                              ModelPackage package,
                                                              const EngineOptions& options);

}  // namespace lstmserve

#endif  // LSTMSERVE_MODELS_ENGINE_FACTORY_H_
