// ReferenceEngine: embedding -> L stacked LSTM layers -> linear head ->
// log-softmax in plain Eigen f32, one timestep at a time. Written to be
// obviously correct: it is the oracle the oneDNN engine is tested against,
// not the fast path. Not thread-safe (see InferenceEngine).
#ifndef LSTMSERVE_MODELS_REFERENCE_ENGINE_H_
#define LSTMSERVE_MODELS_REFERENCE_ENGINE_H_

#include <memory>

#include "absl/status/statusor.h"
#include "models/engine.h"
#include "models/model_package.h"

namespace lstmserve {

// Only Precision::kF32 is accepted; threads are ignored (Eigen runs on the
// calling thread).
absl::StatusOr<std::unique_ptr<InferenceEngine>> CreateReferenceEngine(ModelPackage package,
                                                                       const EngineOptions& options);

}  // namespace lstmserve

#endif  // LSTMSERVE_MODELS_REFERENCE_ENGINE_H_
