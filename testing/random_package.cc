#include "testing/random_package.h"

#include <cmath>
#include <random>
#include <string>
#include <vector>

namespace lstmserve {
namespace {

Tensor RandomTensor(std::vector<int64_t> shape, float scale, std::mt19937_64* rng) {
  Tensor t;
  t.shape = shape;
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  std::uniform_real_distribution<float> u(-scale, scale);
  t.data.resize(n);
  for (float& x : t.data) x = u(*rng);
  return t;
}

}  // namespace

ModelPackage RandomPackage(const RandomPackageShape& s) {
  std::mt19937_64 rng(s.seed);
  ModelPackage p;
  p.directory = "<random>";
  p.config.name = s.name;
  if (s.word_vocab) {
    p.config.format_version = 2;
    p.config.tokenizer.type = TokenizerType::kWord;
    p.config.tokenizer.eos_token = "<eos>";
    p.config.tokenizer.has_unk = true;
    p.config.tokenizer.unk_token = "<unk>";
    for (int i = 0; i < s.vocab_size; ++i) {
      p.config.tokenizer.words.push_back(i == 0   ? "<eos>"
                                         : i == 1 ? "<unk>"
                                                  : "w" + std::to_string(i));
    }
  } else {
    p.config.tokenizer.type = TokenizerType::kChar;
    for (int i = 0; i < s.vocab_size; ++i) p.config.tokenizer.vocab.push_back(U'A' + i);
  }
  if (s.proj_size > 0) p.config.format_version = 2;
  p.config.vocab_size = s.vocab_size;
  p.config.embedding_dim = s.embedding_dim;
  p.config.hidden_size = s.hidden_size;
  p.config.num_layers = s.num_layers;
  p.config.proj_size = s.proj_size;
  const int64_t V = s.vocab_size, E = s.embedding_dim, H = s.hidden_size, P = s.proj_size;
  const int64_t R = P > 0 ? P : H;  // the width of h
  const float k = s.scale > 0 ? s.scale : 1.0f / std::sqrt(static_cast<float>(H));
  p.weights.embedding = RandomTensor({V, E}, 1.0f, &rng);
  for (int l = 0; l < s.num_layers; ++l) {
    LstmLayerWeights w;
    w.w_ih = RandomTensor({4 * H, l == 0 ? E : R}, k, &rng);
    w.w_hh = RandomTensor({4 * H, R}, k, &rng);
    w.b_ih = RandomTensor({4 * H}, k, &rng);
    w.b_hh = RandomTensor({4 * H}, k, &rng);
    if (P > 0) w.w_hr = RandomTensor({P, H}, k, &rng);
    p.weights.layers.push_back(std::move(w));
  }
  p.weights.head_w = RandomTensor({V, R}, k, &rng);
  p.weights.head_b = RandomTensor({V}, k, &rng);
  return p;
}

}  // namespace lstmserve
