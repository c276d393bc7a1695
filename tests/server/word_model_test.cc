// A word-level, projected model served end to end (format version 2): greedy
// text equals the reference decoding with words joined by single spaces,
// Score's token_ids are word ids, Embed returns the projected h, errors for
// text that encodes to nothing, and ListModels' tokenizer and proj_size.
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/server/test_server.h"

namespace lstmserve::testing {
namespace {

// Words "<eos>" (0), "<unk>" (1), "w2" ... "w59"; h has 8 floats, c 24.
RandomPackageShape WordShape() {
  RandomPackageShape s = TinyShape();
  s.word_vocab = true;
  s.vocab_size = 60;
  s.hidden_size = 24;
  s.proj_size = 8;
  return s;
}

TEST(WordModelTest, GreedyTextIsWordsJoinedBySpacesAsTheReferenceDecodes) {
  TestServer t(TestOptions(), WordShape());
  v1::GenerateRequest request = GreedyRequest("w2 w3\nw4", 40);
  request.set_return_tokens(true);
  std::vector<v1::GenerateResponse> messages;
  ASSERT_TRUE(t.client
                  ->Generate(request,
                             [&](const v1::GenerateResponse& r) {
                               messages.push_back(r);
                               return true;
                             })
                  .ok());
  std::string text;
  for (const auto& m : messages) text += m.text();
  EXPECT_EQ(text, ReferenceGreedy(WordShape(), "w2 w3\nw4", 40));
  // Rebuild the text from the ids by the FORMAT.md rules.
  std::string expected;
  bool line_start = true;
  int tokens = 0;
  for (const auto& m : messages) {
    for (const auto& tok : m.tokens()) {
      ++tokens;
      const int id = tok.token_id();
      if (id == 0) {
        expected += "\n";
        line_start = true;
        continue;
      }
      expected += (line_start ? "" : " ") + (id == 1 ? std::string("<unk>")
                                                     : "w" + std::to_string(id));
      line_start = false;
    }
  }
  EXPECT_EQ(tokens, 40);
  EXPECT_EQ(text, expected);
  EXPECT_THAT(text, ::testing::Not(::testing::StartsWith(" ")));
  EXPECT_THAT(text, ::testing::Not(::testing::HasSubstr("  ")));
}

TEST(WordModelTest, ScoreTokenIdsAreWordIds) {
  TestServer t(TestOptions(), WordShape());
  v1::ScoreRequest request;
  request.set_model(kModel);
  request.set_text("w5 w6\n\nw7 nosuchword");
  auto r = t.client->Score(request);
  ASSERT_TRUE(r.ok()) << r.status();
  // [w5, w6, <eos>, <eos>, w7, <unk>]: everything after the first token.
  const std::vector<int32_t> ids = {5, 6, 0, 0, 7, 1};
  ASSERT_EQ(r->token_ids_size(), 5);
  const RandomPackageShape shape = WordShape();
  auto engine = ReferenceEngine(shape);
  SequenceState state = SequenceState::Zeros(shape.num_layers, shape.hidden_size, shape.proj_size);
  std::vector<float> all(ids.size() * shape.vocab_size);
  ASSERT_TRUE(engine->Prefill({PrefillItem{ids, &state, nullptr, all.data()}}).ok());
  for (int j = 1; j < 6; ++j) {
    EXPECT_EQ(r->token_ids(j - 1), ids[j]);
    EXPECT_NEAR(r->token_logprobs(j - 1), all[(j - 1) * shape.vocab_size + ids[j]], 1e-5);
  }
}

TEST(WordModelTest, EmbedReturnsTheProjectedH) {
  TestServer t(TestOptions(), WordShape());
  v1::EmbedRequest request;
  request.set_model(kModel);
  request.set_text("w9 w10 w11");
  request.set_include_all_layers(true);
  auto r = t.client->Embed(request);
  ASSERT_TRUE(r.ok()) << r.status();
  const RandomPackageShape shape = WordShape();
  EXPECT_EQ(r->embedding_size(), shape.proj_size);
  ASSERT_EQ(r->layers_size(), shape.num_layers);
  EXPECT_EQ(r->layers(0).h_size(), shape.proj_size);
  EXPECT_EQ(r->layers(0).c_size(), shape.hidden_size);
}

TEST(WordModelTest, WhitespaceOnlyTextIsRejected) {
  TestServer t(TestOptions(), WordShape());
  v1::ScoreRequest request;
  request.set_model(kModel);
  request.set_text(" \t ");
  auto r = t.client->Score(request);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(r.status().message()),
              ::testing::HasSubstr("text encodes to no tokens"));
}

TEST(WordModelTest, ListModelsDescribesTheWordTokenizerAndProjection) {
  TestServer t(TestOptions(), WordShape());
  auto r = t.client->ListModels();
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->models_size(), 1);
  EXPECT_EQ(r->models(0).tokenizer(), "word");
  EXPECT_EQ(r->models(0).proj_size(), 8);
  EXPECT_EQ(r->models(0).vocab_size(), 60);
  EXPECT_EQ(r->models(0).parameter_count(), RandomPackage(WordShape()).ParameterCount());
}

}  // namespace
}  // namespace lstmserve::testing
