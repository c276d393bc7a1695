#include "models/reference_engine.h"

#include <vector>

#include "Eigen/Core"
#include "absl/strings/str_cat.h"
#include "base/status_macros.h"

namespace lstmserve {
namespace {

using RowMatrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using ConstMatrixMap = Eigen::Map<const RowMatrix>;
using Vector = Eigen::Matrix<float, 1, Eigen::Dynamic>;  // a row vector

class ReferenceEngine final : public InferenceEngine {
 public:
  ReferenceEngine(ModelPackage package, const EngineOptions& options)
      : package_(std::move(package)), max_batch_(options.max_batch) {
    const ModelConfig& c = package_.config;
    for (const LstmLayerWeights& l : package_.weights.layers) {
      // PyTorch keeps two biases per layer; the cell only ever sees their sum.
      Vector b(4 * c.hidden_size);
      for (int j = 0; j < 4 * c.hidden_size; ++j) b[j] = l.b_ih.data[j] + l.b_hh.data[j];
      bias_.push_back(std::move(b));
    }
  }

  const ModelConfig& config() const override { return package_.config; }
  Precision precision() const override { return Precision::kF32; }
  int max_batch() const override { return max_batch_; }
  const char* kind() const override { return "reference"; }

  absl::Status Step(absl::Span<const int32_t> tokens, absl::Span<SequenceState* const> states,
                    float* logprobs) override {
    RETURN_IF_ERROR(ValidateStepArgs(config(), max_batch_, tokens, states, logprobs));
    StepUnchecked(tokens, states, logprobs);
    return absl::OkStatus();
  }

  absl::Status Prefill(absl::Span<const PrefillItem> items) override {
    RETURN_IF_ERROR(ValidatePrefillArgs(config(), max_batch_, items));
    const int V = config().vocab_size;
    std::vector<float> row(V);
    for (const PrefillItem& item : items) {
      SequenceState* state = item.state;
      for (size_t t = 0; t < item.tokens.size(); ++t) {
        float* out = item.all_logprobs != nullptr ? item.all_logprobs + t * V : row.data();
        StepUnchecked(item.tokens.subspan(t, 1), absl::MakeConstSpan(&state, 1), out);
        if (item.next_token_logprobs != nullptr && t + 1 < item.tokens.size()) {
          item.next_token_logprobs[t] = out[item.tokens[t + 1]];
        }
      }
      if (item.last_logprobs != nullptr) {
        const float* last =
            item.all_logprobs != nullptr ? item.all_logprobs + (item.tokens.size() - 1) * V
                                         : row.data();
        std::copy(last, last + V, item.last_logprobs);
      }
    }
    return absl::OkStatus();
  }

 private:
  static float Sigmoid(float x) { return 1.0f / (1.0f + std::exp(-x)); }

  void StepUnchecked(absl::Span<const int32_t> tokens, absl::Span<SequenceState* const> states,
                     float* logprobs) {
    const ModelConfig& c = package_.config;
    const ModelWeights& w = package_.weights;
    const int N = static_cast<int>(tokens.size());
    const int H = c.hidden_size;
    const int R = c.output_size();  // the width of h: P when projected, else H
    ConstMatrixMap embedding(w.embedding.data.data(), c.vocab_size, c.embedding_dim);
    RowMatrix x(N, c.embedding_dim);  // [N, E]
    for (int n = 0; n < N; ++n) x.row(n) = embedding.row(tokens[n]);

    for (int k = 0; k < c.num_layers; ++k) {
      const LstmLayerWeights& l = w.layers[k];
      ConstMatrixMap w_ih(l.w_ih.data.data(), 4 * H, x.cols());  // [4H, In]
      ConstMatrixMap w_hh(l.w_hh.data.data(), 4 * H, R);         // [4H, R]
      RowMatrix h(N, R), cell(N, H);                             // [N, R], [N, H]
      for (int n = 0; n < N; ++n) {
        h.row(n) = Eigen::Map<const Vector>(states[n]->layers[k].h.data(), R);
        cell.row(n) = Eigen::Map<const Vector>(states[n]->layers[k].c.data(), H);
      }
      // [N, 4H] = [N, In]·[In, 4H] + [N, R]·[R, 4H] + [4H]
      RowMatrix gates = x * w_ih.transpose() + h * w_hh.transpose();
      gates.rowwise() += bias_[k];
      RowMatrix h_full(N, H);  // [N, H] = o ⊙ tanh(c')
      // Gate order, PyTorch's (and oneDNN's): input, forget, cell candidate g, output.
      for (int n = 0; n < N; ++n) {
        for (int j = 0; j < H; ++j) {
          const float i_gate = Sigmoid(gates(n, j));
          const float f_gate = Sigmoid(gates(n, H + j));
          const float g_gate = std::tanh(gates(n, 2 * H + j));
          const float o_gate = Sigmoid(gates(n, 3 * H + j));
          cell(n, j) = f_gate * cell(n, j) + i_gate * g_gate;
          h_full(n, j) = o_gate * std::tanh(cell(n, j));
        }
      }
      if (c.proj_size > 0) {
        ConstMatrixMap w_hr(l.w_hr.data.data(), R, H);  // [P, H]
        h.noalias() = h_full * w_hr.transpose();        // [N, P] = [N, H]·[H, P]
      } else {
        h = std::move(h_full);
      }
      for (int n = 0; n < N; ++n) {
        Eigen::Map<Vector>(states[n]->layers[k].h.data(), R) = h.row(n);
        Eigen::Map<Vector>(states[n]->layers[k].c.data(), H) = cell.row(n);
      }
      x = std::move(h);
    }
    ConstMatrixMap head_w(w.head_w.data.data(), c.vocab_size, R);  // [V, R]
    Eigen::Map<const Vector> head_b(w.head_b.data.data(), c.vocab_size);
    Eigen::Map<RowMatrix> out(logprobs, N, c.vocab_size);  // [N, V]
    out.noalias() = x * head_w.transpose();
    out.rowwise() += head_b;
    LogSoftmaxRows(logprobs, N, c.vocab_size);
  }

  const ModelPackage package_;
  const int max_batch_;
  std::vector<Vector> bias_;  // per layer [4H] = b_ih + b_hh
};

}  // namespace

absl::StatusOr<std::unique_ptr<InferenceEngine>> CreateReferenceEngine(
    ModelPackage package, const EngineOptions& options) {
  if (options.precision != Precision::kF32) {
    return absl::InvalidArgumentError(absl::StrCat("the reference engine runs f32 only, not ",
                                                   PrecisionName(options.precision)));
  }
  if (options.max_batch < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_batch must be >= 1, found ", options.max_batch));
  }
  return std::unique_ptr<InferenceEngine>(new ReferenceEngine(std::move(package), options));
}

}  // namespace lstmserve
