#include "models/onednn_engine.h"

#include <omp.h>

#include <algorithm>
#include <cstring>
#include <new>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "models/onednn_common.h"
#include "models/onednn_head.h"
#include "models/onednn_lstm_stack.h"
#include "oneapi/dnnl/dnnl.hpp"

namespace lstmserve {
namespace {

using onednn::LstmStack;
using onednn::OutputHead;
using onednn::Scratchpad;

// Longest prompt chunk (timesteps per LSTM call) and the scratchpad budget
// that bounds T * N for prompt chunks.
constexpr int kMaxPromptChunk = 512;
constexpr size_t kPrefillScratchBudgetBytes = size_t{64} << 20;
// Head rows per block when only target log-probs are wanted (Score): the
// [rows, V] f32 block is 8 MB at V = 32k.
constexpr size_t kMaxTargetHeadRows = 64;

int PowerOfTwoFloor(int x) {
  int p = 1;
  while (p * 2 <= x) p *= 2;
  return p;
}

absl::Status FromDnnlError(const dnnl::error& e, const char* where) {
  return absl::InternalError(
      absl::StrCat("oneDNN failed in ", where, ": ", e.what(), " (dnnl_status ", e.status, ")"));
}

class OneDnnEngine final : public InferenceEngine {
 public:
  OneDnnEngine(const ModelConfig& config, const EngineOptions& options, int threads,
               int prompt_tokens_per_chunk, dnnl::engine engine, dnnl::stream stream,
               std::unique_ptr<LstmStack> stack, std::unique_ptr<OutputHead> head)
      : config_(config),
        precision_(options.precision),
        max_batch_(options.max_batch),
        threads_(threads),
        prompt_tokens_per_chunk_(prompt_tokens_per_chunk),
        engine_(std::move(engine)),
        stream_(std::move(stream)),
        stack_(std::move(stack)),
        head_(std::move(head)) {}

  const ModelConfig& config() const override { return config_; }
  Precision precision() const override { return precision_; }
  int max_batch() const override { return max_batch_; }
  const char* kind() const override { return "onednn"; }
  void SetThreads(int threads) override {
    threads_ = threads > 0 ? threads : omp_get_num_procs();
  }

  absl::Status Step(absl::Span<const int32_t> tokens, absl::Span<SequenceState* const> states,
                    float* logprobs) override {
    RETURN_IF_ERROR(ValidateStepArgs(config_, max_batch_, tokens, states, logprobs));
    omp_set_num_threads(threads_);
    try {
      stack_->Forward(
          1, [&](int, int n) { return tokens[n]; }, states, &scratchpad_, &stream_);
      head_->Run(stack_->output(), stack_->output_scales(), static_cast<int>(tokens.size()),
                 logprobs, &scratchpad_, &stream_);
    } catch (const dnnl::error& e) {
      return FromDnnlError(e, "Step");
    } catch (const std::bad_alloc&) {
      return absl::ResourceExhaustedError("out of memory in Step");
    }
    return absl::OkStatus();
  }

  absl::Status Prefill(absl::Span<const PrefillItem> items) override {
    RETURN_IF_ERROR(ValidatePrefillArgs(config_, max_batch_, items));
    omp_set_num_threads(threads_);
    try {
      PrefillUnchecked(items);
    } catch (const dnnl::error& e) {
      return FromDnnlError(e, "Prefill");
    } catch (const std::bad_alloc&) {
      return absl::ResourceExhaustedError("out of memory in Prefill");
    }
    return absl::OkStatus();
  }

 private:
  // A prompt in flight: its item and how many of its tokens are consumed.
  struct Active {
    const PrefillItem* item;
    int offset;
  };
  // A head output wanted: row `row` of the stack output goes to `dst` [V],
  // or, with a target >= 0, only its log-prob of `target` to dst[0].
  struct HeadRow {
    size_t row;
    float* dst;
    int32_t target = -1;
  };

  // All prompts advance together, T steps per call, T a power of two no
  // longer than the shortest remaining prompt (so primitive shapes stay few)
  // and bounded by the scratchpad budget; prompts that end drop out.
  void PrefillUnchecked(absl::Span<const PrefillItem> items) {
    const int V = config_.vocab_size;
    std::vector<Active> active;
    for (const PrefillItem& item : items) active.push_back({&item, 0});
    std::vector<SequenceState*> states;
    std::vector<HeadRow> rows;
    while (!active.empty()) {
      const int N = static_cast<int>(active.size());
      int shortest = kMaxPromptChunk;
      for (const Active& a : active) {
        shortest = std::min(shortest, static_cast<int>(a.item->tokens.size()) - a.offset);
      }
      const int T = PowerOfTwoFloor(std::max(1, std::min(shortest, prompt_tokens_per_chunk_ / N)));
      states.clear();
      for (const Active& a : active) states.push_back(a.item->state);
      stack_->Forward(
          T, [&](int t, int n) { return active[n].item->tokens[active[n].offset + t]; }, states,
          &scratchpad_, &stream_);

      rows.clear();
      for (int n = 0; n < N; ++n) {
        const PrefillItem& item = *active[n].item;
        const bool ends = active[n].offset + T == static_cast<int>(item.tokens.size());
        if (item.all_logprobs != nullptr) {
          for (int t = 0; t < T; ++t) {
            rows.push_back({static_cast<size_t>(t) * N + n,
                            item.all_logprobs + static_cast<size_t>(active[n].offset + t) * V});
          }
        } else if (item.last_logprobs != nullptr && ends) {
          rows.push_back({static_cast<size_t>(T - 1) * N + n, item.last_logprobs});
        }
        if (item.next_token_logprobs != nullptr) {
          for (int t = 0; t < T; ++t) {
            const size_t pos = static_cast<size_t>(active[n].offset + t);
            if (pos + 1 >= item.tokens.size()) break;
            rows.push_back({static_cast<size_t>(t) * N + n, item.next_token_logprobs + pos,
                            item.tokens[pos + 1]});
          }
        }
      }
      RunHead(rows);

      std::vector<Active> still;
      for (Active& a : active) {
        a.offset += T;
        const PrefillItem& item = *a.item;
        if (a.offset < static_cast<int>(item.tokens.size())) {
          still.push_back(a);
        } else if (item.all_logprobs != nullptr && item.last_logprobs != nullptr) {
          const float* last = item.all_logprobs + (item.tokens.size() - 1) * V;
          std::copy(last, last + V, item.last_logprobs);
        }
      }
      active = std::move(still);
    }
  }

  // Runs the head over the wanted rows of the stack output, in blocks of at
  // most max_batch rows (kMaxTargetHeadRows for target rows, so a Score's
  // [rows, V] block stays small). A block whose rows and destinations are
  // both consecutive (one prompt's all_logprobs) runs in place, without copies.
  void RunHead(const std::vector<HeadRow>& rows) {
    const int V = config_.vocab_size;
    const size_t row_bytes =
        static_cast<size_t>(config_.output_size()) * onednn::FormatFor(precision_).data_bytes;
    const uint8_t* h = stack_->output();
    const float* scales = stack_->output_scales();  // row scales or null
    size_t block = static_cast<size_t>(head_->max_rows());
    for (const HeadRow& r : rows) {
      if (r.target >= 0) block = std::min<size_t>(block, kMaxTargetHeadRows);
    }
    for (size_t begin = 0; begin < rows.size(); begin += block) {
      const size_t M = std::min(rows.size() - begin, block);
      bool consecutive = rows[begin].target < 0;
      for (size_t i = 1; i < M && consecutive; ++i) {
        consecutive = rows[begin + i].target < 0 && rows[begin + i].row == rows[begin].row + i &&
                      rows[begin + i].dst == rows[begin].dst + i * V;
      }
      if (consecutive) {
        head_->Run(h + rows[begin].row * row_bytes,
                   scales != nullptr ? scales + rows[begin].row : nullptr, static_cast<int>(M),
                   rows[begin].dst, &scratchpad_, &stream_);
        continue;
      }
      head_in_.Reserve(M * row_bytes);
      head_out_.Reserve(M * V * sizeof(float));
      if (scales != nullptr) head_in_scales_.resize(M);
      for (size_t i = 0; i < M; ++i) {
        std::memcpy(head_in_.data() + i * row_bytes, h + rows[begin + i].row * row_bytes,
                    row_bytes);
        if (scales != nullptr) head_in_scales_[i] = scales[rows[begin + i].row];
      }
      float* out = reinterpret_cast<float*>(head_out_.data());
      head_->Run(head_in_.data(), scales != nullptr ? head_in_scales_.data() : nullptr,
                 static_cast<int>(M), out, &scratchpad_, &stream_);
      for (size_t i = 0; i < M; ++i) {
        const HeadRow& r = rows[begin + i];
        if (r.target >= 0) {
          *r.dst = out[i * V + r.target];
        } else {
          std::memcpy(r.dst, out + i * V, V * sizeof(float));
        }
      }
    }
  }

  const ModelConfig config_;
  const Precision precision_;
  const int max_batch_;
  int threads_;  // the OpenMP team of each call (SetThreads)
  const int prompt_tokens_per_chunk_;
  dnnl::engine engine_;
  dnnl::stream stream_;
  std::unique_ptr<LstmStack> stack_;
  std::unique_ptr<OutputHead> head_;
  Scratchpad scratchpad_;
  onednn::AlignedBuffer head_in_, head_out_;  // gathered head rows for Prefill
  std::vector<float> head_in_scales_;         // their row scales (int8 with a projection)
};

}  // namespace

absl::StatusOr<std::unique_ptr<InferenceEngine>> CreateOneDnnEngine(ModelPackage package,
                                                                    const EngineOptions& options) {
  if (options.max_batch < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_batch must be >= 1, found ", options.max_batch));
  }
  if (options.threads < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("threads must be >= 0 (0 = all cores), found ", options.threads));
  }
  RETURN_IF_ERROR(onednn::CheckCpuSupports(options.precision));
  const ModelConfig& config = package.config;
  const int threads = options.threads > 0 ? options.threads : omp_get_num_procs();
  // Memory per prompt token in a chunk: a layer's input-gate rows (4H f32,
  // one buffer per layer) plus activations; two gate vectors per layer bound it.
  const size_t bytes_per_token =
      size_t{2} * config.num_layers * 4 * config.hidden_size * sizeof(float);
  const int prompt_tokens = static_cast<int>(
      std::max<size_t>(options.max_batch, kPrefillScratchBudgetBytes / bytes_per_token));
  const int max_chunk = std::min(kMaxPromptChunk, PowerOfTwoFloor(prompt_tokens));
  omp_set_num_threads(threads);
  try {
    dnnl::engine engine(dnnl::engine::kind::cpu, 0);
    dnnl::stream stream(engine);
    auto stack = LstmStack::Create(config, &package.weights, options.precision, options.max_batch,
                                   max_chunk, engine, &stream);
    auto head = OutputHead::Create(config, &package.weights, options.precision, options.max_batch,
                                   engine, &stream);
    return std::unique_ptr<InferenceEngine>(
        new OneDnnEngine(config, options, threads, prompt_tokens, std::move(engine),
                         std::move(stream), std::move(stack), std::move(head)));
  } catch (const dnnl::error& e) {
    if (options.precision != Precision::kF32) {
      return absl::FailedPreconditionError(absl::StrCat(
          "oneDNN cannot run precision ", PrecisionName(options.precision), " for model '",
          config.name, "' on this CPU (", onednn::IsaName(dnnl::get_effective_cpu_isa()),
          "): ", e.what(), ". Use precision f32."));
    }
    return FromDnnlError(e, "engine creation");
  } catch (const std::bad_alloc&) {
    return absl::ResourceExhaustedError("out of memory packing the model's weights");
  }
}

}  // namespace lstmserve
