// BareLstm: the oneDNN LSTM primitive alone, for the benchmark's baseline:
// the same layer grouping as an ideal engine (one multi-layer primitive, or
// layer 0 apart when E != H), weights packed once (values irrelevant to
// speed), library-owned buffers, no embedding, head or state copies.
// Not thread-safe.
#ifndef LSTMSERVE_BENCH_BARE_LSTM_H_
#define LSTMSERVE_BENCH_BARE_LSTM_H_

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "models/engine.h"

namespace lstmserve::bench {

class BareLstm {
 public:
  BareLstm(int E, int H, int L, Precision precision, int threads);
  ~BareLstm();
  // Executes T timesteps for a batch of N (primitives created on first use).
  void Run(int T, int N);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// oneDNN's effective ISA, e.g. "avx512_core_bf16".
std::string EffectiveIsa();

}  // namespace lstmserve::bench

#endif  // LSTMSERVE_BENCH_BARE_LSTM_H_
