// Test helper: a real LanguageModelServer on 127.0.0.1:0 serving in-memory
// random models on the reference engine, a client for it, and the reference
// computations the tests compare against. Header-only.
#ifndef LSTMSERVE_TESTS_SERVER_TEST_SERVER_H_
#define LSTMSERVE_TESTS_SERVER_TEST_SERVER_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "client/client.h"
#include "gtest/gtest.h"
#include "models/reference_engine.h"
#include "models/tokenizer.h"
#include "server/server.h"
#include "tests/models/random_package.h"

namespace lstmserve::testing {

inline constexpr char kModel[] = "tiny";

inline RandomPackageShape TinyShape() {
  RandomPackageShape s;
  s.vocab_size = 37;  // 'A' .. 'e'
  s.hidden_size = 40;
  s.num_layers = 2;
  // Large weights make the distributions peaked, so greedy decoding has
  // clear winners.
  s.scale = 0.6f;
  return s;
}

inline ServerOptions TestOptions() {
  ServerOptions o;
  o.listen = "127.0.0.1:0";
  o.shutdown_grace = absl::Seconds(30);
  return o;
}

inline std::unique_ptr<InferenceEngine> ReferenceEngine(const RandomPackageShape& shape) {
  auto engine = CreateReferenceEngine(RandomPackage(shape), EngineOptions());
  EXPECT_TRUE(engine.ok()) << engine.status();
  return *std::move(engine);
}

// A started server with one model ("tiny") and a client.
struct TestServer {
  explicit TestServer(ServerOptions options = TestOptions(),
                      RandomPackageShape shape = TinyShape()) {
    std::vector<NamedEngine> engines;
    engines.push_back({kModel, ReferenceEngine(shape)});
    auto started = LanguageModelServer::Start(options, std::move(engines));
    EXPECT_TRUE(started.ok()) << started.status();
    server = *std::move(started);
    client = std::make_unique<LanguageModelClient>(absl::StrCat("127.0.0.1:", server->port()));
  }
  std::unique_ptr<LanguageModelServer> server;
  std::unique_ptr<LanguageModelClient> client;
};

inline v1::GenerateRequest Request(const std::string& prompt, int max_tokens) {
  v1::GenerateRequest r;
  r.set_model(kModel);
  r.set_prompt(prompt);
  r.set_max_tokens(max_tokens);
  return r;
}

// Request with temperature 0 (greedy argmax), comparable with ReferenceGreedy.
inline v1::GenerateRequest GreedyRequest(const std::string& prompt, int max_tokens) {
  v1::GenerateRequest r = Request(prompt, max_tokens);
  r.set_temperature(0.0f);
  return r;
}

// Greedy decoding of `max_tokens` tokens on the reference engine, one
// sequence, as the oracle for the server.
inline std::string ReferenceGreedy(const RandomPackageShape& shape, const std::string& prompt,
                                   int max_tokens) {
  ModelPackage package = RandomPackage(shape);
  auto tokenizer = Tokenizer::Create(package.config.tokenizer);
  const int V = package.config.vocab_size;
  SequenceState state = SequenceState::Zeros(
      package.config.num_layers, package.config.hidden_size, package.config.proj_size);
  auto engine = ReferenceEngine(shape);
  auto ids = (*tokenizer)->Encode(prompt);
  std::vector<float> logprobs(V);
  EXPECT_TRUE(engine->Prefill({PrefillItem{*ids, &state, logprobs.data(), nullptr}}).ok());
  std::unique_ptr<TextDecoder> decoder = (*tokenizer)->NewDecoder();
  std::string text;
  SequenceState* states[] = {&state};
  for (int i = 0; i < max_tokens; ++i) {
    const int32_t id = static_cast<int32_t>(
        std::max_element(logprobs.begin(), logprobs.end()) - logprobs.begin());
    text += decoder->Push(id);
    EXPECT_TRUE(engine->Step({id}, states, logprobs.data()).ok());
  }
  return text;
}

}  // namespace lstmserve::testing

#endif  // LSTMSERVE_TESTS_SERVER_TEST_SERVER_H_
