// OneDnnEngine: the fast InferenceEngine (models/engine.h), built on oneDNN's
// matmul and logsoftmax primitives (Debian's libdnnl 2.6); oneDNN's LSTM
// primitive is not used (models/onednn_matmul_layer.h says why).
//
//   tokens -> embedding table -> LSTM layers (models/onednn_lstm_stack.h:
//             f32/bf16/int8 matmuls + vectorized cell per layer)
//          -> matmul head + log-softmax (models/onednn_head.h) -> log-probs
//
// - Weights are reordered once into oneDNN's preferred layout; one copy
//   serves every batch size and prompt length. The package's f32 tensors are
//   released after packing.
// - Step(N) runs one T=1 pass over all N sequences; Prefill runs prompts with
//   T > 1: all prompts together in chunks of a power-of-two number of steps
//   (a prompt that ends leaves the group), with the chunk bounded so the
//   gate buffers stay near 64 MiB. Matmul primitives are created on first
//   use per row count (N, or T * N for a prompt's input projection) and
//   cached: the first Step at a new N pays for creating them, once
//   (bench/engine_bench.cc measures it).
// - Precisions: f32, bf16 (bf16 weights and matmul inputs, f32 gates and
//   states), int8 (u8 activations, s8 weights with one scale per gate row of
//   each matrix, zero point and scales applied by oneDNN; head s8 with one
//   scale per vocabulary column; a projected LSTM's h rows carry their own
//   scales and its projection matmul runs in bf16, models/onednn_matmul_layer.h).
//   The states handed back are f32 (h is
//   rounded to bf16 or u8 only where it enters a matmul). A precision this CPU cannot run fails
//   at creation with FAILED_PRECONDITION (bf16 needs AVX-512; int8 needs
//   oneDNN's AVX-512 kernels here).
// - Threads: EngineOptions.threads (0 = all cores). Debian's oneDNN uses
//   OpenMP, so creation and each Step/Prefill call omp_set_num_threads(threads)
//   on the calling thread; that setting stays with the thread afterwards. On a
//   host shared with other busy processes use 1 thread: OpenMP teams whose
//   members get preempted stall at every timestep (measured 10-100x slower).
// - All primitives use scratchpad_mode::user with one engine-owned
//   scratchpad, so the engine may be called from a thread other than the one
//   that created it (one thread at a time: it is not thread-safe).
// - oneDNN errors (dnnl::error) become INTERNAL statuses; after one, the
//   states passed to that call are unspecified.
#ifndef LSTMSERVE_MODELS_ONEDNN_ENGINE_H_
#define LSTMSERVE_MODELS_ONEDNN_ENGINE_H_

#include <memory>

#include "absl/status/statusor.h"
#include "models/engine.h"
#include "models/model_package.h"

namespace lstmserve {

absl::StatusOr<std::unique_ptr<InferenceEngine>> CreateOneDnnEngine(ModelPackage package,
                                                                    const EngineOptions& options);

}  // namespace lstmserve

#endif  // LSTMSERVE_MODELS_ONEDNN_ENGINE_H_
