#include "models/engine.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"

namespace lstmserve {
namespace {

absl::Status CheckState(const ModelConfig& config, const SequenceState* s, size_t n) {
  if (s == nullptr) return absl::InvalidArgumentError(absl::StrCat("state ", n, " is null"));
  if (s->layers.size() != static_cast<size_t>(config.num_layers)) {
    return absl::InvalidArgumentError(absl::StrCat("state ", n, " has ", s->layers.size(),
                                                   " layers, the model ", config.num_layers));
  }
  for (const LayerState& l : s->layers) {
    if (l.h.size() != static_cast<size_t>(config.output_size()) ||
        l.c.size() != static_cast<size_t>(config.hidden_size)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "state ", n, " has a layer whose h width differs from ", config.output_size(),
          " or whose c width differs from hidden_size ", config.hidden_size));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckToken(const ModelConfig& config, int32_t id) {
  if (id < 0 || id >= config.vocab_size) {
    return absl::InvalidArgumentError(
        absl::StrCat("token id ", id, " is outside [0, ", config.vocab_size, ")"));
  }
  return absl::OkStatus();
}

}  // namespace

const char* PrecisionName(Precision p) {
  switch (p) {
    case Precision::kF32:
      return "f32";
    case Precision::kBF16:
      return "bf16";
    case Precision::kInt8:
      return "int8";
  }
  return "?";
}

bool ParsePrecision(const std::string& name, Precision* out) {
  if (name == "f32") {
    *out = Precision::kF32;
  } else if (name == "bf16") {
    *out = Precision::kBF16;
  } else if (name == "int8") {
    *out = Precision::kInt8;
  } else {
    return false;
  }
  return true;
}

absl::Status ValidateStepArgs(const ModelConfig& config, int max_batch,
                              absl::Span<const int32_t> tokens,
                              absl::Span<SequenceState* const> states, const float* logprobs) {
  if (tokens.empty() || static_cast<int>(tokens.size()) > max_batch) {
    return absl::InvalidArgumentError(
        absl::StrCat("batch of ", tokens.size(), " is outside [1, ", max_batch, "]"));
  }
  if (states.size() != tokens.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat(tokens.size(), " tokens but ", states.size(), " states"));
  }
  if (logprobs == nullptr) return absl::InvalidArgumentError("logprobs output is null");
  for (size_t n = 0; n < tokens.size(); ++n) {
    absl::Status s = CheckToken(config, tokens[n]);
    if (!s.ok()) return s;
    s = CheckState(config, states[n], n);
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status ValidatePrefillArgs(const ModelConfig& config, int max_batch,
                                 absl::Span<const PrefillItem> items) {
  if (items.empty() || static_cast<int>(items.size()) > max_batch) {
    return absl::InvalidArgumentError(
        absl::StrCat("batch of ", items.size(), " prompts is outside [1, ", max_batch, "]"));
  }
  for (size_t n = 0; n < items.size(); ++n) {
    if (items[n].tokens.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("prompt ", n, " is empty"));
    }
    for (int32_t id : items[n].tokens) {
      absl::Status s = CheckToken(config, id);
      if (!s.ok()) return s;
    }
    absl::Status s = CheckState(config, items[n].state, n);
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

void LogSoftmaxRows(float* data, int64_t rows, int64_t cols) {
  for (int64_t r = 0; r < rows; ++r) {
    float* row = data + r * cols;
    const float mx = *std::max_element(row, row + cols);
    double sum = 0.0;
    for (int64_t j = 0; j < cols; ++j) sum += std::exp(static_cast<double>(row[j] - mx));
    const float lse = mx + static_cast<float>(std::log(sum));
    for (int64_t j = 0; j < cols; ++j) row[j] -= lse;
  }
}

}  // namespace lstmserve
