// Score, Embed, ListModels and health against the reference engine; a
// cancelled Score stops its prefill.
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "lstmserve/v1/lstmserve.grpc.pb.h"
#include "tests/server/controllable_engine.h"
#include "tests/server/http_client.h"
#include "tests/server/test_server.h"

namespace lstmserve::testing {
namespace {

// Log-probs [T, V] after each token, from zeros, on the reference engine.
std::vector<float> ReferenceAllLogprobs(const std::vector<int32_t>& ids, SequenceState* state) {
  const RandomPackageShape shape = TinyShape();
  auto engine = ReferenceEngine(shape);
  *state = SequenceState::Zeros(shape.num_layers, shape.hidden_size);
  std::vector<float> all(ids.size() * shape.vocab_size);
  EXPECT_TRUE(engine->Prefill({PrefillItem{ids, state, nullptr, all.data()}}).ok());
  return all;
}

std::vector<int32_t> Ids(const std::string& text) {
  std::vector<int32_t> ids;
  for (char c : text) ids.push_back(c - 'A');
  return ids;
}

TEST(ScoreTest, EqualsReference) {
  TestServer t;
  v1::ScoreRequest request;
  request.set_model(kModel);
  request.set_text("HELLOWORLD");
  auto r = t.client->Score(request);
  ASSERT_TRUE(r.ok()) << r.status();
  SequenceState state;
  const std::vector<int32_t> ids = Ids("HELLOWORLD");
  const std::vector<float> all = ReferenceAllLogprobs(ids, &state);
  const int V = TinyShape().vocab_size;
  ASSERT_EQ(r->token_logprobs_size(), 9);
  ASSERT_EQ(r->scored_tokens(), 9);
  double total = 0;
  for (int j = 1; j < 10; ++j) {
    EXPECT_NEAR(r->token_logprobs(j - 1), all[(j - 1) * V + ids[j]], 1e-5);
    EXPECT_EQ(r->token_ids(j - 1), ids[j]);
    total += all[(j - 1) * V + ids[j]];
  }
  EXPECT_NEAR(r->total_logprob(), total, 1e-4);
}

TEST(ScoreTest, ContextConditionsWithoutBeingScored) {
  TestServer t;
  v1::ScoreRequest request;
  request.set_model(kModel);
  request.set_context("ABC");
  request.set_text("DEF");
  auto r = t.client->Score(request);
  ASSERT_TRUE(r.ok()) << r.status();
  SequenceState state;
  const std::vector<int32_t> ids = Ids("ABCDEF");
  const std::vector<float> all = ReferenceAllLogprobs(ids, &state);
  const int V = TinyShape().vocab_size;
  ASSERT_EQ(r->token_logprobs_size(), 3);  // D, E, F
  for (int j = 3; j < 6; ++j) {
    EXPECT_NEAR(r->token_logprobs(j - 3), all[(j - 1) * V + ids[j]], 1e-5);
  }
}

TEST(ScoreTest, ACancelledCallStopsItsPrefillAndTheServerGoesOn) {
  ServerOptions options = TestOptions();
  options.scheduler.prefill_chunk_tokens = 16;
  options.scheduler.prefix_cache_bytes = 0;
  options.telemetry.metrics_listen = "127.0.0.1:0";
  ControlledServer t(options);
  auto channel = grpc::CreateChannel(absl::StrCat("127.0.0.1:", t.server->port()),
                                     grpc::InsecureChannelCredentials());
  auto stub = v1::LanguageModelService::NewStub(channel);
  v1::ScoreRequest request;
  request.set_model(kModel);
  std::string text;
  while (text.size() < 4000) text += "HELLOWORLD";  // 250 chunks
  request.set_text(text);

  const int64_t warm_up = t.controls->PrefillTokens();
  t.controls->GatePrefills(0);
  grpc::ClientContext context;
  v1::ScoreResponse response;
  absl::Notification done;
  grpc::Status status;
  stub->async()->Score(&context, &request, &response, [&](grpc::Status s) {
    status = std::move(s);
    done.Notify();
  });
  t.controls->AwaitPrefillAtGate();  // its first chunk
  context.TryCancel();
  done.WaitForNotification();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::CANCELLED);
  // On the same connection, after the cancellation: the server has read it.
  grpc::ClientContext list_context;
  v1::ListModelsResponse models;
  ASSERT_TRUE(stub->ListModels(&list_context, v1::ListModelsRequest(), &models).ok());
  // One chunk at a time until the Score is gone (it would take all 250
  // were the cancellation not seen).
  ModelScheduler* scheduler = ValueOrDie(t.server->registry()->Find(kModel), "Find")->scheduler();
  do {
    t.controls->AllowPrefill();
  } while (!scheduler->WaitUntilIdle(absl::Now() + absl::Milliseconds(20)));
  t.controls->GatePrefills(-1);
  EXPECT_LT(t.controls->PrefillTokens() - warm_up, static_cast<int64_t>(text.size()));
  // Counted as cancelled (recorded before the scheduler went idle).
  EXPECT_NE(HttpGet(t.server->metrics_port(), "/metrics")
                .body.find("lstmserve_requests_total{code=\"CANCELLED\",model=\"tiny\",rpc="
                           "\"Score\",version=\"1\"} 1\n"),
            std::string::npos);

  // The server goes on.
  v1::ScoreRequest next;
  next.set_model(kModel);
  next.set_text("HELLOWORLD");
  auto r = t.client->Score(next);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->scored_tokens(), 9);
}

TEST(EmbedTest, EqualsReferenceFinalState) {
  TestServer t;
  v1::EmbedRequest request;
  request.set_model(kModel);
  request.set_text("SOMETEXT");
  request.set_include_all_layers(true);
  auto r = t.client->Embed(request);
  ASSERT_TRUE(r.ok()) << r.status();
  SequenceState state;
  ReferenceAllLogprobs(Ids("SOMETEXT"), &state);
  const RandomPackageShape shape = TinyShape();
  ASSERT_EQ(r->embedding_size(), shape.hidden_size);
  ASSERT_EQ(r->layers_size(), shape.num_layers);
  EXPECT_EQ(r->tokens(), 8);
  for (int i = 0; i < shape.hidden_size; ++i) {
    EXPECT_NEAR(r->embedding(i), state.layers.back().h[i], 1e-5);
    for (int l = 0; l < shape.num_layers; ++l) {
      EXPECT_NEAR(r->layers(l).h(i), state.layers[l].h[i], 1e-5);
      EXPECT_NEAR(r->layers(l).c(i), state.layers[l].c[i], 1e-5);
    }
  }
}

TEST(ListModelsTest, DescribesTheModel) {
  TestServer t;
  auto r = t.client->ListModels();
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->models_size(), 1);
  const v1::ModelInfo& m = r->models(0);
  const RandomPackageShape s = TinyShape();
  EXPECT_EQ(m.name(), kModel);
  EXPECT_EQ(m.num_layers(), s.num_layers);
  EXPECT_EQ(m.hidden_size(), s.hidden_size);
  EXPECT_EQ(m.vocab_size(), s.vocab_size);
  EXPECT_EQ(m.tokenizer(), "char");
  EXPECT_EQ(m.precision(), "f32");
  EXPECT_EQ(m.engine(), "reference");
  EXPECT_EQ(m.parameter_count(), RandomPackage(s).ParameterCount());
}

TEST(HealthTest, ServingAfterStart) {
  TestServer t;
  EXPECT_EQ(*t.client->Health(), "SERVING");
  EXPECT_EQ(*t.client->Health("lstmserve.v1.LanguageModelService"), "SERVING");
}

}  // namespace
}  // namespace lstmserve::testing
