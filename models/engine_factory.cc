#include "models/engine_factory.h"

#include "models/onednn_engine.h"
#include "models/reference_engine.h"

namespace lstmserve {

const char* EngineKindName(EngineKind kind) {
  return kind == EngineKind::kReference ? "reference" : "onednn";
}

bool ParseEngineKind(const std::string& name, EngineKind* out) {
  if (name == "reference") {
    *out = EngineKind::kReference;
  } else if (name == "onednn") {
    *out = EngineKind::kOneDnn;
  } else {
    return false;
  }
  return true;
}

absl::StatusOr<std::unique_ptr<InferenceEngine>> CreateEngine(EngineKind kind,
                                                              ModelPackage package,
                                                              const EngineOptions& options) {
  switch (kind) {
    case EngineKind::kReference:
      return CreateReferenceEngine(std::move(package), options);
    case EngineKind::kOneDnn:
      return CreateOneDnnEngine(std::move(package), options);
  }
  return absl::InvalidArgumentError("unknown engine kind");
}

}  // namespace lstmserve
