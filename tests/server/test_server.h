// Test helper: a real LanguageModelServer on 127.0.0.1:0 serving in-memory
// random models on the reference engine, a client for it, and the reference
// computations the tests compare against. Header-only.
//
// What a test cannot go on without (the server, its engine, a tokenizer) is
// taken through ValueOrDie: a failure ends the test binary with the status
// instead of dereferencing an error.
#ifndef LSTMSERVE_TESTS_SERVER_TEST_SERVER_H_
#define LSTMSERVE_TESTS_SERVER_TEST_SERVER_H_

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "client/client.h"
#include "gtest/gtest.h"
#include "models/reference_engine.h"
#include "models/tokenizer.h"
#include "server/server.h"
#include "testing/random_package.h"

namespace lstmserve::testing {

inline constexpr char kModel[] = "tiny";

// The value of `result`; on an error, prints `what` and the status and
// aborts (gtest reports the test as failed with that message).
template <typename T>
T ValueOrDie(absl::StatusOr<T> result, const char* what) {
  if (!result.ok()) {
    ADD_FAILURE() << what << ": " << result.status();
    std::fprintf(stderr, "%s: %s\n", what, result.status().ToString().c_str());
    std::abort();
  }
  return *std::move(result);
}

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
  return ValueOrDie(CreateReferenceEngine(RandomPackage(shape), EngineOptions()),
                    "CreateReferenceEngine");
}

// A started server with one model ("tiny") and a client.
struct TestServer {
  explicit TestServer(ServerOptions options = TestOptions(),
                      RandomPackageShape shape = TinyShape()) {
    std::vector<NamedEngine> engines;
    engines.push_back({kModel, ReferenceEngine(shape)});
    server = ValueOrDie(LanguageModelServer::Start(options, std::move(engines)),
                        "LanguageModelServer::Start");
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
  auto tokenizer = ValueOrDie(Tokenizer::Create(package.config.tokenizer), "Tokenizer::Create");
  const int V = package.config.vocab_size;
  SequenceState state = SequenceState::Zeros(
      package.config.num_layers, package.config.hidden_size, package.config.proj_size);
  auto engine = ReferenceEngine(shape);
  const std::vector<int32_t> ids = ValueOrDie(tokenizer->Encode(prompt), "Encode");
  std::vector<float> logprobs(V);
  EXPECT_TRUE(engine->Prefill({PrefillItem{ids, &state, logprobs.data(), nullptr}}).ok());
  std::unique_ptr<TextDecoder> decoder = tokenizer->NewDecoder();
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
