// Bad input over the wire: each gets a precise status naming the field, the
// value and the limit, and changes nothing else.
#include <atomic>
#include <cmath>
#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/server/test_server.h"

namespace lstmserve::testing {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

class ValidationTest : public ::testing::Test {
 protected:
  static ServerOptions Options() {
    ServerOptions o = TestOptions();
    o.limits.max_prompt_tokens = 16;
    o.limits.max_tokens_limit = 100;
    o.limits.max_stop_strings = 2;
    o.limits.max_stop_length = 4;
    return o;
  }
  absl::Status Generate(const v1::GenerateRequest& r) {
    return t_.client->GenerateText(r).status();
  }
  void ExpectInvalid(const v1::GenerateRequest& r, const std::string& a, const std::string& b) {
    absl::Status s = Generate(r);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << s;
    EXPECT_THAT(std::string(s.message()), AllOf(HasSubstr(a), HasSubstr(b)));
  }
  TestServer t_{Options()};
};

TEST_F(ValidationTest, UnknownModelIsNotFound) {
  v1::GenerateRequest r = Request("AB", 5);
  r.set_model("nope");
  absl::Status s = Generate(r);
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(s.message()), AllOf(HasSubstr("'nope'"), HasSubstr("tiny")));
  v1::ScoreRequest score;
  score.set_model("nope");
  score.set_text("AB");
  EXPECT_EQ(t_.client->Score(score).status().code(), absl::StatusCode::kNotFound);
  v1::EmbedRequest embed;
  embed.set_model("nope");
  embed.set_text("AB");
  EXPECT_EQ(t_.client->Embed(embed).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(ValidationTest, PromptErrors) {
  ExpectInvalid(Request("", 5), "prompt", "empty");
  ExpectInvalid(Request(std::string(17, 'A'), 5), "prompt is 17 tokens", "limit is 16");
  ExpectInvalid(Request(std::string(100, 'A'), 5), "prompt is 100 bytes", "16 tokens");
  ExpectInvalid(Request("ABzA", 5), "'z' (U+007A)", "position 2");
  // (Invalid UTF-8 never reaches the service: proto3 string fields fail to
  // parse in the gRPC layer itself.)
}

TEST_F(ValidationTest, MaxTokensErrors) {
  ExpectInvalid(Request("AB", 0), "max_tokens is 0", "[1, 100]");
  ExpectInvalid(Request("AB", -3), "max_tokens is -3", "[1, 100]");
  ExpectInvalid(Request("AB", 101), "max_tokens is 101", "[1, 100]");
}

TEST_F(ValidationTest, StreamIntervalErrors) {
  v1::GenerateRequest r = Request("AB", 5);
  r.set_stream_interval(-1);
  ExpectInvalid(r, "stream_interval is -1", "[0, 100]");
  r.set_stream_interval(101);
  ExpectInvalid(r, "stream_interval is 101", "[0, 100]");
  r.set_stream_interval(100);  // the limit itself is fine
  EXPECT_TRUE(Generate(r).ok());
}

TEST_F(ValidationTest, SamplingErrors) {
  v1::GenerateRequest r = Request("AB", 5);
  r.set_temperature(-0.5f);
  ExpectInvalid(r, "temperature is -0.5", ">= 0");
  r.set_temperature(std::nanf(""));
  ExpectInvalid(r, "temperature is nan", ">= 0");
  r = Request("AB", 5);
  r.set_top_p(0.0f);
  ExpectInvalid(r, "top_p is 0", "(0, 1]");
  r.set_top_p(1.5f);
  ExpectInvalid(r, "top_p is 1.5", "(0, 1]");
  r = Request("AB", 5);
  r.set_top_k(-1);
  ExpectInvalid(r, "top_k is -1", ">= 0");
  r = Request("AB", 5);
  r.set_logprobs(21);
  ExpectInvalid(r, "logprobs is 21", "[0, 20]");
}

TEST_F(ValidationTest, StopErrors) {
  v1::GenerateRequest r = Request("AB", 5);
  r.add_stop("A");
  r.add_stop("B");
  r.add_stop("C");
  ExpectInvalid(r, "stop has 3 entries", "limit is 2");
  r = Request("AB", 5);
  r.add_stop("ABCDE");
  ExpectInvalid(r, "stop[0] is 5 bytes", "limit is 4");
  r = Request("AB", 5);
  r.add_stop("A");
  r.add_stop("");
  ExpectInvalid(r, "stop[1]", "empty");
}

TEST_F(ValidationTest, ScoreAndEmbedErrors) {
  v1::ScoreRequest score;
  score.set_model(kModel);
  absl::Status s = t_.client->Score(score).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("text is empty"));
  score.set_text("AB");
  score.set_context("A!");
  s = t_.client->Score(score).status();
  EXPECT_THAT(std::string(s.message()), AllOf(HasSubstr("context"), HasSubstr("'!'"),
                                              HasSubstr("position 1")));
  score.set_context(std::string(10, 'A'));
  score.set_text(std::string(10, 'B'));
  s = t_.client->Score(score).status();
  EXPECT_THAT(std::string(s.message()), HasSubstr("context + text is 20 tokens; the limit is 16"));
  v1::EmbedRequest embed;
  embed.set_model(kModel);
  s = t_.client->Embed(embed).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("text is empty"));
}

TEST_F(ValidationTest, BadRequestsChangeNothingElse) {
  ExpectInvalid(Request("", 5), "prompt", "empty");
  v1::GenerateRequest good = Request("ABC", 30);
  good.set_temperature(0.0f);
  auto g = t_.client->GenerateText(good);
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_EQ(g->text, ReferenceGreedy(TinyShape(), "ABC", 30));
}

TEST(QueueTest, FullQueueIsResourceExhaustedAtOnce) {
  ServerOptions o = TestOptions();
  o.scheduler.max_batch = 1;
  o.scheduler.max_queue = 1;
  o.limits.max_tokens_limit = 1000000;
  TestServer t(o);
  // A occupies the only slot until told to cancel.
  std::atomic<bool> a_started{false}, a_stop{false};
  absl::Status a_status;
  std::thread a([&] {
    a_status = t.client->Generate(Request("AB", 1000000), [&](const v1::GenerateResponse&) {
      a_started = true;
      return !a_stop.load();
    });
  });
  while (!a_started) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  // B and C: one waits in the queue, the other is turned away.
  absl::Status results[2];
  std::atomic<int> done{0};
  std::vector<std::thread> bc;
  for (int i = 0; i < 2; ++i) {
    bc.emplace_back([&, i] {
      results[i] = t.client->GenerateText(Request("AB", 5)).status();
      ++done;
    });
  }
  while (done.load() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  a_stop = true;  // frees the slot: the queued one runs
  for (auto& th : bc) th.join();
  a.join();
  EXPECT_EQ(a_status.code(), absl::StatusCode::kCancelled);
  const int exhausted = (results[0].code() == absl::StatusCode::kResourceExhausted) +
                        (results[1].code() == absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(exhausted, 1) << results[0] << " / " << results[1];
  EXPECT_TRUE(results[0].ok() || results[1].ok());
  for (const absl::Status& s : results) {
    if (!s.ok()) EXPECT_THAT(std::string(s.message()), HasSubstr("--max-queue"));
  }
}

}  // namespace
}  // namespace lstmserve::testing
