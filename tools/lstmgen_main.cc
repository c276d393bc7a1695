// lstmgen: offline text generation from a model package (no server needed).
//   lstmgen --model models/shakespeare --prompt "ROMEO:" --max_tokens 300
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "models/engine_factory.h"
#include "models/model_package.h"
#include "models/sampler.h"
#include "models/tokenizer.h"
#include "models/utf8.h"

ABSL_FLAG(std::string, model, "models/shakespeare", "Model package directory.");
ABSL_FLAG(std::string, prompt, "ROMEO:\n", "Text to start from (must use the model's vocabulary).");
ABSL_FLAG(int, max_tokens, 400, "Number of tokens to generate.");
ABSL_FLAG(double, temperature, 0.8, "Sampling temperature; 0 = greedy.");
ABSL_FLAG(int, top_k, 0, "Keep only the k most likely tokens (0 = off).");
ABSL_FLAG(double, top_p, 1.0, "Nucleus sampling mass in (0, 1] (1 = off).");
ABSL_FLAG(uint64_t, seed, 1, "Random seed.");
ABSL_FLAG(std::string, engine, "reference", "Engine: reference or onednn.");
ABSL_FLAG(std::string, precision, "f32", "Precision: f32, bf16 or int8 (onednn only).");

namespace lstmserve {
namespace {

int Run() {
  auto package = LoadModelPackage(absl::GetFlag(FLAGS_model));
  if (!package.ok()) {
    std::cerr << "lstmgen: " << package.status() << "\n";
    return 1;
  }
  EngineOptions options;
  options.max_batch = 1;
  EngineKind kind;
  if (!ParseEngineKind(absl::GetFlag(FLAGS_engine), &kind) ||
      !ParsePrecision(absl::GetFlag(FLAGS_precision), &options.precision)) {
    std::cerr << "lstmgen: bad --engine or --precision\n";
    return 2;
  }
  auto tokenizer = Tokenizer::Create(package->config.tokenizer);
  if (!tokenizer.ok()) {
    std::cerr << "lstmgen: " << tokenizer.status() << "\n";
    return 1;
  }
  const int V = package->config.vocab_size;
  SequenceState state =
      SequenceState::Zeros(package->config.num_layers, package->config.hidden_size,
                           package->config.proj_size);
  auto engine = CreateEngine(kind, *std::move(package), options);
  if (!engine.ok()) {
    std::cerr << "lstmgen: " << engine.status() << "\n";
    return 1;
  }
  auto prompt = (*tokenizer)->Encode(absl::GetFlag(FLAGS_prompt), "--prompt");
  if (!prompt.ok() || prompt->empty()) {
    std::cerr << "lstmgen: "
              << (prompt.ok() ? absl::InvalidArgumentError("--prompt is empty") : prompt.status())
              << "\n";
    return 2;
  }
  std::vector<float> logprobs(V);
  PrefillItem item{*prompt, &state, logprobs.data(), nullptr};
  if (auto s = (*engine)->Prefill({item}); !s.ok()) {
    std::cerr << "lstmgen: " << s << "\n";
    return 1;
  }
  SamplingParams params;
  params.temperature = static_cast<float>(absl::GetFlag(FLAGS_temperature));
  params.top_k = absl::GetFlag(FLAGS_top_k);
  params.top_p = static_cast<float>(absl::GetFlag(FLAGS_top_p));
  params.seed = absl::GetFlag(FLAGS_seed);
  Sampler sampler(params);
  std::unique_ptr<TextDecoder> text = (*tokenizer)->NewDecoder();
  std::cout << absl::GetFlag(FLAGS_prompt);
  SequenceState* states[] = {&state};
  for (int i = 0; i < absl::GetFlag(FLAGS_max_tokens); ++i) {
    const int32_t id = sampler.Sample(logprobs.data(), V);
    std::cout << text->Push(id) << std::flush;
    if (auto s = (*engine)->Step({id}, states, logprobs.data()); !s.ok()) {
      std::cerr << "\nlstmgen: " << s << "\n";
      return 1;
    }
  }
  std::cout << text->Flush() << "\n";
  return 0;
}

}  // namespace
}  // namespace lstmserve

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage("Generates text offline from an lstmserve model package.");
  absl::ParseCommandLine(argc, argv);
  return lstmserve::Run();
}
