#include "models/onednn_lstm_stack.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace lstmserve::onednn {

LstmStack::LstmStack(const ModelConfig& config, Precision precision)
    : config_(config), format_(FormatFor(precision)) {}

std::unique_ptr<LstmStack> LstmStack::Create(const ModelConfig& config, ModelWeights* weights,
                                             Precision precision, int max_batch,
                                             int max_prompt_chunk, const dnnl::engine& engine,
                                             dnnl::stream* stream) {
  std::unique_ptr<LstmStack> stack(new LstmStack(config, precision));
  const int E = config.embedding_dim, L = config.num_layers;
  const bool table = MatmulLayer::UsesTable(config);

  // int8 without a table: scale the embedding columns into [-1, 1].
  std::vector<float> column_scale(E, 1.0f);
  const bool scaled = precision == Precision::kInt8 && !table;
  if (scaled) {
    std::fill(column_scale.begin(), column_scale.end(), 0.0f);
    const std::vector<float>& emb = weights->embedding.data;
    for (int v = 0; v < config.vocab_size; ++v) {
      for (int e = 0; e < E; ++e) {
        column_scale[e] = std::max(column_scale[e], std::fabs(emb[static_cast<size_t>(v) * E + e]));
      }
    }
    for (float& s : column_scale) s = s > 0.0f ? s : 1.0f;
  }
  if (!table) stack->BuildEmbeddingTable(weights->embedding, column_scale);

  const int max_rows = std::max(max_batch, max_prompt_chunk);
  for (int l = 0; l < L; ++l) {
    const absl::Span<const float> input_scale =
        l == 0 && scaled ? absl::MakeConstSpan(column_scale) : absl::Span<const float>();
    stack->layers_.push_back(MatmulLayer::Create(config, *weights, l, precision, max_batch,
                                                 max_rows, input_scale, engine, stream));
  }
  weights->embedding = Tensor();
  weights->layers.clear();
  weights->layers.shrink_to_fit();
  return stack;
}

void LstmStack::BuildEmbeddingTable(const Tensor& embedding,
                                    const std::vector<float>& column_scale) {
  const int V = config_.vocab_size, E = config_.embedding_dim;
  embedding_table_.resize(static_cast<size_t>(V) * E * format_.data_bytes);
  std::vector<float> row(E);
  for (int v = 0; v < V; ++v) {
    for (int e = 0; e < E; ++e) {
      row[e] = embedding.data[static_cast<size_t>(v) * E + e] / column_scale[e];
    }
    EncodeActivations(format_, row.data(), E,
                      embedding_table_.data() + static_cast<size_t>(v) * E * format_.data_bytes);
  }
}

void LstmStack::Forward(int T, absl::FunctionRef<int32_t(int t, int n)> token,
                        absl::Span<SequenceState* const> states, Scratchpad* scratchpad,
                        dnnl::stream* stream) {
  const int N = static_cast<int>(states.size());
  const int64_t E = config_.embedding_dim, R = config_.output_size();
  const size_t esize = format_.data_bytes;
  if (!layer0_table()) {
    // Layer-0 inputs: [T, N, E] rows gathered from the embedding table.
    input_.Reserve(static_cast<size_t>(T) * N * E * esize);
    for (int t = 0; t < T; ++t) {
      for (int n = 0; n < N; ++n) {
        std::memcpy(input_.data() + (static_cast<size_t>(t) * N + n) * E * esize,
                    embedding_table_.data() + static_cast<size_t>(token(t, n)) * E * esize,
                    E * esize);
      }
    }
  }
  const uint8_t* layer_in = input_.data();
  const float* in_scales = nullptr;
  for (size_t l = 0; l < layers_.size(); ++l) {
    AlignedBuffer& out = activations_[l % 2];
    out.Reserve(static_cast<size_t>(T) * N * R * esize);
    float* out_scales = nullptr;
    if (layers_[l]->out_row_scaled()) {
      scales_[l % 2].resize(static_cast<size_t>(T) * N);
      out_scales = scales_[l % 2].data();
    }
    layers_[l]->Forward(T, token, layer_in, in_scales, states, out.data(), out_scales, scratchpad,
                        stream);
    layer_in = out.data();
    in_scales = out_scales;
  }
  output_ = layer_in;
  output_scales_ = in_scales;
}

size_t LstmStack::weight_bytes() const {
  size_t bytes = embedding_table_.size();
  for (const auto& layer : layers_) bytes += layer->weight_bytes();
  return bytes;
}

int LstmStack::primitives_created() const {
  int created = 0;
  for (const auto& layer : layers_) created += layer->primitives_created();
  return created;
}

}  // namespace lstmserve::onednn
