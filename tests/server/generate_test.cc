// Generate over the wire: streaming, greedy = reference, concurrency, seeds,
// stop strings, logprobs and usage.
#include <atomic>
#include <set>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/server/test_server.h"

namespace lstmserve::testing {
namespace {

// Every message of one Generate call, in order (an empty list if it failed).
std::vector<v1::GenerateResponse> AllMessages(LanguageModelClient& client,
                                              const v1::GenerateRequest& request) {
  std::vector<v1::GenerateResponse> messages;
  const absl::Status status = client.Generate(request, [&](const v1::GenerateResponse& r) {
    messages.push_back(r);
    return true;
  });
  EXPECT_TRUE(status.ok()) << status;
  if (!status.ok()) messages.clear();
  return messages;
}

TEST(GenerateTest, TextStreamsIncrementally) {
  TestServer t;
  v1::GenerateRequest request = Request("ABC", 200);
  const std::vector<v1::GenerateResponse> messages = AllMessages(*t.client, request);
  // Several messages, the first well before the last token.
  ASSERT_GE(messages.size(), 2u);
  // The first token is written as soon as it is sampled.
  EXPECT_EQ(messages.front().text().size(), 1u);
  EXPECT_EQ(messages.front().finish_reason(), v1::FINISH_REASON_UNSPECIFIED);
  const v1::GenerateResponse& last = messages.back();
  EXPECT_EQ(last.finish_reason(), v1::FINISH_REASON_LENGTH);
  EXPECT_EQ(last.usage().prompt_tokens(), 3);
  EXPECT_EQ(last.usage().generated_tokens(), 200);
  EXPECT_FALSE(last.request_id().empty());
  std::string text;
  for (const auto& m : messages) {
    text += m.text();
    EXPECT_EQ(m.request_id(), last.request_id());
  }
  EXPECT_EQ(text.size(), 200u);  // one ASCII character per token
}

TEST(GenerateTest, StreamIntervalGathersTokensAfterTheFirst) {
  TestServer t;
  v1::GenerateRequest request = Request("ABC", 50);
  request.set_temperature(0.0f);
  const std::string expected = ReferenceGreedy(TinyShape(), "ABC", 50);
  request.set_stream_interval(8);
  const std::vector<v1::GenerateResponse> messages = AllMessages(*t.client, request);
  ASSERT_GE(messages.size(), 2u);
  EXPECT_EQ(messages.front().text().size(), 1u);  // the first token at once
  std::string text;
  for (size_t i = 0; i < messages.size(); ++i) {
    text += messages[i].text();
    // Between the first and the last: whole intervals (one character per
    // token; several intervals when a write was still in flight).
    if (i > 0 && i + 1 < messages.size()) {
      EXPECT_EQ(messages[i].text().size() % 8, 0u) << i << ": " << messages[i].text();
      EXPECT_FALSE(messages[i].text().empty()) << i;
    }
  }
  EXPECT_EQ(text, expected);
  // 1 + 49 tokens in messages of 8: at most 1 + 6 + 1 messages.
  EXPECT_LE(messages.size(), 8u);
  EXPECT_EQ(messages.back().usage().generated_tokens(), 50);
}

TEST(GenerateTest, GreedyEqualsReferenceDecode) {
  TestServer t;
  v1::GenerateRequest request = Request("ABCDEFG", 120);
  request.set_temperature(0.0f);
  request.set_request_id("my-id");
  auto g = t.client->GenerateText(request);
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_EQ(g->text, ReferenceGreedy(TinyShape(), "ABCDEFG", 120));
  EXPECT_EQ(g->last.request_id(), "my-id");
}

TEST(GenerateTest, SixtyFourConcurrentStreamsAllComplete) {
  TestServer t;
  constexpr int kStreams = 64;
  std::vector<std::string> prompts, expected(kStreams), got(kStreams);
  for (int i = 0; i < kStreams; ++i) {
    prompts.push_back(std::string(1, static_cast<char>('A' + i % 37)) +
                      std::string(1, static_cast<char>('A' + (i * 7) % 37)));
    expected[i] = ReferenceGreedy(TinyShape(), prompts[i], 40 + i);
  }
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int i = 0; i < kStreams; ++i) {
    threads.emplace_back([&, i] {
      v1::GenerateRequest request = Request(prompts[i], 40 + i);
      request.set_temperature(0.0f);
      auto g = t.client->GenerateText(request);
      if (g.ok()) {
        got[i] = g->text;
        if (g->last.finish_reason() == v1::FINISH_REASON_LENGTH &&
            g->last.usage().generated_tokens() == 40 + i) {
          ++ok;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(ok.load(), kStreams);
  for (int i = 0; i < kStreams; ++i) EXPECT_EQ(got[i], expected[i]) << "stream " << i;
}

// Prompts fed through the batch's steps (SchedulerOptions::step_join_*)
// give what a prefill gives: the same greedy text, the same seeded sample,
// the same usage. min_active = 0 makes every short prompt join that way; the
// 80-token prompt (over step_join_max_prompt) is prefilled in the same run.
TEST(GenerateTest, PromptsJoiningThroughStepsEqualPrefilledOnes) {
  ServerOptions options = TestOptions();
  options.scheduler.step_join_min_active = 0;
  options.scheduler.step_join_max_prompt = 64;
  TestServer joined(options);
  TestServer prefilled;  // idle: prefills every prompt
  const std::vector<std::string> prompts = {"A", "ABCDE", std::string(64, 'B'),
                                            std::string(80, 'C'), "HIJ"};
  std::vector<absl::StatusOr<LanguageModelClient::Generation>> got(prompts.size(), absl::UnknownError("not run"));
  std::vector<std::thread> threads;
  for (size_t i = 0; i < prompts.size(); ++i) {
    threads.emplace_back([&, i] {
      v1::GenerateRequest request = Request(prompts[i], 30);
      request.set_temperature(0.0f);
      got[i] = joined.client->GenerateText(request);
    });
  }
  for (auto& th : threads) th.join();
  for (size_t i = 0; i < prompts.size(); ++i) {
    ASSERT_TRUE(got[i].ok()) << got[i].status();
    EXPECT_EQ(got[i]->text, ReferenceGreedy(TinyShape(), prompts[i], 30)) << prompts[i];
    EXPECT_EQ(got[i]->last.usage().prompt_tokens(), static_cast<int>(prompts[i].size()));
    EXPECT_EQ(got[i]->last.usage().generated_tokens(), 30);
    EXPECT_GT(got[i]->last.usage().time_to_first_token().nanos() +
                  got[i]->last.usage().time_to_first_token().seconds(),
              0);
  }
  v1::GenerateRequest sampled = Request("ABAB", 60);
  sampled.set_temperature(1.0f);
  sampled.set_top_k(10);
  sampled.set_seed(7);
  auto a = joined.client->GenerateText(sampled);
  auto b = prefilled.client->GenerateText(sampled);
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(a->text, b->text);
}

TEST(GenerateTest, SeededRequestsReproduceUnderConcurrency) {
  TestServer t;
  auto sampled = [](uint64_t seed) {
    v1::GenerateRequest r = Request("ABAB", 100);
    r.set_temperature(1.0f);
    r.set_top_k(10);
    r.set_top_p(0.9f);
    r.set_seed(seed);
    return r;
  };
  auto alone = t.client->GenerateText(sampled(42));
  ASSERT_TRUE(alone.ok()) << alone.status();
  EXPECT_EQ(alone->last.seed(), 42u);
  // The same request among 16 others with different seeds.
  std::vector<std::string> texts(17);
  std::vector<std::thread> threads;
  for (int i = 0; i < 17; ++i) {
    threads.emplace_back([&, i] {
      auto g = t.client->GenerateText(sampled(i == 8 ? 42 : 1000 + i));
      if (g.ok()) texts[i] = g->text;
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(texts[8], alone->text);
  std::set<std::string> distinct(texts.begin(), texts.end());
  EXPECT_GT(distinct.size(), 10u);  // different seeds, different samples
}

TEST(GenerateTest, UnseededRequestsReportTheirSeed) {
  TestServer t;
  auto first = t.client->GenerateText(Request("AB", 60));
  ASSERT_TRUE(first.ok());
  v1::GenerateRequest again = Request("AB", 60);
  again.set_seed(first->last.seed());
  auto second = t.client->GenerateText(again);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->text, first->text);
}

TEST(GenerateTest, StopStringEndsGenerationAndIsNotReturned) {
  TestServer t;
  const std::string full = ReferenceGreedy(TinyShape(), "ABC", 100);
  // A stop string taken from the middle of the greedy text.
  const std::string stop = full.substr(30, 3);
  const size_t at = full.find(stop);
  v1::GenerateRequest request = Request("ABC", 100);
  request.set_temperature(0.0f);
  request.add_stop(stop);
  request.add_stop("never-matches-zzzz");
  auto g = t.client->GenerateText(request);
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_EQ(g->text, full.substr(0, at));
  EXPECT_EQ(g->last.finish_reason(), v1::FINISH_REASON_STOP);
  EXPECT_EQ(g->last.usage().generated_tokens(), static_cast<int>(at + stop.size()));
}

TEST(GenerateTest, LogprobsReturnTokensAndAlternatives) {
  TestServer t;
  v1::GenerateRequest request = Request("AB", 20);
  request.set_temperature(0.0f);
  request.set_logprobs(3);
  std::vector<v1::GeneratedToken> tokens;
  std::string text;
  ASSERT_TRUE(t.client
                  ->Generate(request,
                             [&](const v1::GenerateResponse& r) {
                               tokens.insert(tokens.end(), r.tokens().begin(), r.tokens().end());
                               text += r.text();
                               return true;
                             })
                  .ok());
  ASSERT_EQ(tokens.size(), 20u);
  for (size_t i = 0; i < tokens.size(); ++i) {
    const auto& tok = tokens[i];
    ASSERT_EQ(tok.top_logprobs_size(), 3);
    // Greedy: the chosen token is the best alternative.
    EXPECT_EQ(tok.token_id(), tok.top_logprobs(0).token_id());
    EXPECT_FLOAT_EQ(tok.logprob(), tok.top_logprobs(0).logprob());
    EXPECT_GE(tok.top_logprobs(0).logprob(), tok.top_logprobs(1).logprob());
    EXPECT_LE(tok.logprob(), 0.0f);
    EXPECT_EQ(std::string(1, text[i]), tok.top_logprobs(0).token_text());
  }
}

}  // namespace
}  // namespace lstmserve::testing
