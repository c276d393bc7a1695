// RandomPackage: an in-memory ModelPackage with seeded random weights, for
// tests and benchmarks that need shapes no trained model has (testing/ is
// linked by tests and bench only, never by the servers). Deterministic
// for a given shape and seed. Thread-safe (pure function).
#ifndef LSTMSERVE_TESTING_RANDOM_PACKAGE_H_
#define LSTMSERVE_TESTING_RANDOM_PACKAGE_H_

#include <cstdint>
#include <string>

#include "models/model_package.h"

namespace lstmserve {

struct RandomPackageShape {
  std::string name = "random";
  int vocab_size = 37;  // char tokenizer over code points 'A', 'B', ... (up to ~55,000)
  // kWord instead: words "<eos>" (id 0), "<unk>" (id 1), "w2", "w3", ...
  // (format_version 2). Byte and sentencepiece are not offered.
  bool word_vocab = false;
  int embedding_dim = 24;
  int hidden_size = 40;
  int num_layers = 2;
  int proj_size = 0;  // P: 0 = none; else < hidden_size (format_version 2)
  // LSTM and head weights ~ U(-scale, scale); 0 = PyTorch's init range 1/sqrt(H).
  // The embedding is always U(-1, 1).
  float scale = 0.3f;
  uint64_t seed = 7;
};

ModelPackage RandomPackage(const RandomPackageShape& shape);

}  // namespace lstmserve

#endif  // LSTMSERVE_TESTING_RANDOM_PACKAGE_H_
