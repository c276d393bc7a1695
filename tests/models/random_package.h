// Test helper: an in-memory ModelPackage with seeded random weights, for
// engine tests that need shapes no fixture has. Header-only.
#ifndef LSTMSERVE_TESTS_MODELS_RANDOM_PACKAGE_H_
#define LSTMSERVE_TESTS_MODELS_RANDOM_PACKAGE_H_

#include <cstdint>
#include <random>
#include <string>

#include "models/model_package.h"

namespace lstmserve::testing {

struct RandomPackageShape {
  int vocab_size = 37;
  int embedding_dim = 24;
  int hidden_size = 40;
  int num_layers = 2;
  float scale = 0.3f;  // weights ~ U(-scale, scale), like PyTorch's 1/sqrt(H) init
  uint64_t seed = 7;
};

inline Tensor RandomTensor(std::vector<int64_t> shape, float scale, std::mt19937_64* rng) {
  Tensor t;
  t.shape = shape;
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  std::uniform_real_distribution<float> u(-scale, scale);
  t.data.resize(n);
  for (float& x : t.data) x = u(*rng);
  return t;
}

// A char-tokenizer package over code points 'A'.. with the given shape.
inline ModelPackage RandomPackage(const RandomPackageShape& s) {
  std::mt19937_64 rng(s.seed);
  ModelPackage p;
  p.directory = "<random>";
  p.config.name = "random";
  p.config.tokenizer.type = TokenizerType::kChar;
  for (int i = 0; i < s.vocab_size; ++i) p.config.tokenizer.vocab.push_back(U'A' + i);
  p.config.vocab_size = s.vocab_size;
  p.config.embedding_dim = s.embedding_dim;
  p.config.hidden_size = s.hidden_size;
  p.config.num_layers = s.num_layers;
  const int64_t V = s.vocab_size, E = s.embedding_dim, H = s.hidden_size;
  p.weights.embedding = RandomTensor({V, E}, 1.0f, &rng);
  for (int k = 0; k < s.num_layers; ++k) {
    LstmLayerWeights l;
    l.w_ih = RandomTensor({4 * H, k == 0 ? E : H}, s.scale, &rng);
    l.w_hh = RandomTensor({4 * H, H}, s.scale, &rng);
    l.b_ih = RandomTensor({4 * H}, s.scale, &rng);
    l.b_hh = RandomTensor({4 * H}, s.scale, &rng);
    p.weights.layers.push_back(std::move(l));
  }
  p.weights.head_w = RandomTensor({V, H}, s.scale, &rng);
  p.weights.head_b = RandomTensor({V}, s.scale, &rng);
  return p;
}

}  // namespace lstmserve::testing

#endif  // LSTMSERVE_TESTS_MODELS_RANDOM_PACKAGE_H_
