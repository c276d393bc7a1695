// Support for the bad-input tests (bad_field_test, request_id_test,
// malformed_message_test, garbage_bytes_test): a server with small limits,
// and the answers a correct server gives, compared before and after abuse.
// Header-only; not thread-safe.
#ifndef LSTMSERVE_TESTS_SERVER_BAD_INPUT_SUPPORT_H_
#define LSTMSERVE_TESTS_SERVER_BAD_INPUT_SUPPORT_H_

#include <initializer_list>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/server/test_server.h"

namespace lstmserve::testing {

// Limits: prompt 16 tokens, max_tokens 100, 2 stop strings of 4 bytes,
// logprobs 20; the vocabulary is 'A'..'e' (37).
inline ServerOptions Limits() {
  ServerOptions o = TestOptions();
  o.limits.max_prompt_tokens = 16;
  o.limits.max_tokens_limit = 100;
  o.limits.max_stop_strings = 2;
  o.limits.max_stop_length = 4;
  o.limits.max_logprobs = 20;
  return o;
}

// What a correct server answers; compared before and after abuse.
struct Answers {
  std::string greedy;
  double score = 0;
  std::vector<float> embedding;
};

inline Answers Ask(LanguageModelClient& client) {
  Answers a;
  v1::GenerateRequest g = Request("ABCD", 40);
  g.set_temperature(0.0f);
  auto gen = client.GenerateText(g);
  EXPECT_TRUE(gen.ok()) << gen.status();
  if (gen.ok()) a.greedy = gen->text;
  v1::ScoreRequest s;
  s.set_model(kModel);
  s.set_context("AB");
  s.set_text("CDEFG");
  auto score = client.Score(s);
  EXPECT_TRUE(score.ok()) << score.status();
  if (score.ok()) a.score = score->total_logprob();
  v1::EmbedRequest e;
  e.set_model(kModel);
  e.set_text("ABCABC");
  auto embed = client.Embed(e);
  EXPECT_TRUE(embed.ok()) << embed.status();
  if (embed.ok()) a.embedding.assign(embed->embedding().begin(), embed->embedding().end());
  return a;
}

inline void ExpectSameAnswers(LanguageModelClient& client, const Answers& before) {
  Answers after = Ask(client);
  EXPECT_EQ(after.greedy, before.greedy);
  EXPECT_EQ(after.greedy, ReferenceGreedy(TinyShape(), "ABCD", 40));
  EXPECT_DOUBLE_EQ(after.score, before.score);
  EXPECT_EQ(after.embedding, before.embedding);
  auto health = client.Health();
  ASSERT_TRUE(health.ok()) << health.status();
  EXPECT_EQ(*health, "SERVING");
}

// A server with Limits() and a client, per test.
class BadInputTest : public ::testing::Test {
 protected:
  TestServer t_{Limits()};
};

// The bytes given, as a string.
inline std::string Bytes(std::initializer_list<int> bytes) {
  std::string s;
  for (int b : bytes) s.push_back(static_cast<char>(b));
  return s;
}

}  // namespace lstmserve::testing

#endif  // LSTMSERVE_TESTS_SERVER_BAD_INPUT_SUPPORT_H_
