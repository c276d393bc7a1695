// The stream interval (GenerationSpec::stream_interval): Sequence driven
// directly with crafted log-prob rows and a recording sink — the first token
// goes at once, later ones in messages of `interval` tokens, what is held
// when the generation ends (length, stop string, cancellation) goes out in
// the last message, and the text, tokens and counts equal interval 1's.
#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "server/sequence.h"
#include "tests/server/fake_engine.h"

namespace lstmserve::testing {
namespace {

constexpr int kVocab = FakeEngine::kVocab;  // 'a'..'z'

// What a sequence sent: each Send's message and token count, then Close.
class LogSink final : public GenerationSink {
 public:
  void Send(v1::GenerateResponse delta, int tokens) override {
    EXPECT_FALSE(closed) << "Send after Close";
    sends.push_back(std::move(delta));
    counts.push_back(tokens);
  }
  void Close(v1::GenerateResponse l, const absl::Status& s) override {
    EXPECT_FALSE(closed) << "closed twice";
    closed = true;
    last = std::move(l);
    status = s;
  }
  bool cancelled() const override { return false; }
  int pending_tokens() const override { return 0; }

  // Everything the client reads, in order.
  std::string Text() const {
    std::string text;
    for (const auto& m : sends) text += m.text();
    return text + last.text();
  }
  std::vector<int32_t> TokenIds() const {
    std::vector<int32_t> ids;
    for (const auto& m : sends) {
      for (const auto& t : m.tokens()) ids.push_back(t.token_id());
    }
    for (const auto& t : last.tokens()) ids.push_back(t.token_id());
    return ids;
  }
  std::vector<std::string> Messages() const {
    std::vector<std::string> texts;
    for (const auto& m : sends) texts.push_back(m.text());
    texts.push_back(last.text());
    return texts;
  }

  std::vector<v1::GenerateResponse> sends;
  std::vector<int> counts;
  bool closed = false;
  v1::GenerateResponse last;
  absl::Status status;
};

class NullObserver final : public SchedulerObserver {};

class StreamIntervalTest : public ::testing::Test {
 protected:
  // A greedy generation of `max_tokens` after the one-token prompt "a".
  std::unique_ptr<Sequence> Start(int interval, int max_tokens,
                                  std::vector<std::string> stops = {}, bool tokens = false) {
    auto job = std::make_unique<GenerationJob>();
    job->spec.request_id = "r";
    job->spec.prompt = {0};
    job->spec.max_tokens = max_tokens;
    job->spec.stream_interval = interval;
    job->spec.sampling.temperature = 0.0f;
    job->spec.stops = std::move(stops);
    job->spec.return_tokens = tokens;
    job->sink = &sink_;
    return std::make_unique<Sequence>(std::move(job), tokenizer_.get(), &observer_,
                                      /*num_layers=*/1, /*hidden_size=*/2, /*proj_size=*/0,
                                      absl::Now());
  }
  // Feeds the prompt, then the rows that make the greedy picks spell `text`
  // (letters), as far as the sequence goes.
  void Run(Sequence* seq, const std::string& text) {
    for (size_t i = 0; i < text.size() && !seq->finished(); ++i) {
      std::vector<float> row(kVocab, -9.0f);
      row[text[i] - 'a'] = -0.1f;
      if (i == 0) {
        seq->PrefillDone(1, row.data(), kVocab, absl::Now());
      } else {
        seq->StepDone(row.data(), kVocab, absl::Now());
      }
    }
  }

  std::unique_ptr<Tokenizer> tokenizer_ = FakeEngine::MakeTokenizer();
  NullObserver observer_;
  LogSink sink_;
};

TEST_F(StreamIntervalTest, IntervalOneSendsEveryTokenAsItComes) {
  auto seq = Start(1, 5);
  Run(seq.get(), "hello");
  ASSERT_TRUE(sink_.closed);
  EXPECT_EQ(sink_.Messages(), (std::vector<std::string>{"h", "e", "l", "l", "o"}));
  EXPECT_EQ(sink_.counts, (std::vector<int>{1, 1, 1, 1}));
}

TEST_F(StreamIntervalTest, FirstTokenAtOnceThenMessagesOfTheInterval) {
  auto seq = Start(4, 10);
  Run(seq.get(), "abcdefghij");
  ASSERT_TRUE(sink_.closed);
  // 1 at once, then 4 and 4; the tenth token ends the generation and rides
  // on the last message.
  EXPECT_EQ(sink_.Messages(), (std::vector<std::string>{"a", "bcde", "fghi", "j"}));
  EXPECT_EQ(sink_.counts, (std::vector<int>{1, 4, 4}));
  EXPECT_EQ(sink_.last.finish_reason(), v1::FINISH_REASON_LENGTH);
  EXPECT_EQ(sink_.last.usage().generated_tokens(), 10);
}

TEST_F(StreamIntervalTest, WhatIsHeldAtTheEndGoesWithTheLastMessage) {
  auto seq = Start(4, 7, {}, /*tokens=*/true);
  Run(seq.get(), "abcdefg");
  ASSERT_TRUE(sink_.closed);
  EXPECT_EQ(sink_.Messages(), (std::vector<std::string>{"a", "bcde", "fg"}));
  EXPECT_EQ(sink_.counts, (std::vector<int>{1, 4}));
  EXPECT_EQ(sink_.Text(), "abcdefg");
  EXPECT_EQ(sink_.TokenIds(), (std::vector<int32_t>{0, 1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(sink_.last.usage().generated_tokens(), 7);
  EXPECT_EQ(sink_.last.request_id(), "r");
}

TEST_F(StreamIntervalTest, AStopStringInsideTheIntervalEndsItWithTheTextBefore) {
  auto seq = Start(8, 20, {"xy"});
  Run(seq.get(), "abcdexyzz");
  ASSERT_TRUE(sink_.closed);
  EXPECT_EQ(sink_.Messages(), (std::vector<std::string>{"a", "bcde"}));
  EXPECT_EQ(sink_.last.finish_reason(), v1::FINISH_REASON_STOP);
  EXPECT_EQ(sink_.last.usage().generated_tokens(), 7);
}

TEST_F(StreamIntervalTest, AnEarlyEndDeliversTheHeldTokens) {
  auto seq = Start(8, 20);
  Run(seq.get(), "abc");  // three tokens, then the stream is cut short
  ASSERT_FALSE(sink_.closed);
  EXPECT_EQ(sink_.Messages(), (std::vector<std::string>{"a", ""}));  // "" : not closed yet
  seq->Finish(v1::FINISH_REASON_DEADLINE, absl::DeadlineExceededError("late"), absl::Now());
  ASSERT_TRUE(sink_.closed);
  EXPECT_EQ(sink_.last.text(), "bc");
  EXPECT_EQ(sink_.last.finish_reason(), v1::FINISH_REASON_DEADLINE);
  EXPECT_EQ(sink_.status.code(), absl::StatusCode::kDeadlineExceeded);
}

TEST_F(StreamIntervalTest, EveryIntervalReadsTheSameTextAndTokens) {
  const std::string text = "thequickbrownfoxjumpsoverthelazydog";
  std::vector<std::string> texts;
  std::vector<std::vector<int32_t>> ids;
  for (int interval : {1, 2, 3, 5, 16, 100}) {
    sink_ = LogSink();
    auto seq = Start(interval, static_cast<int>(text.size()), {}, /*tokens=*/true);
    Run(seq.get(), text);
    ASSERT_TRUE(sink_.closed) << interval;
    texts.push_back(sink_.Text());
    ids.push_back(sink_.TokenIds());
    int sent = 0;
    for (int c : sink_.counts) {
      EXPECT_LE(c, interval) << interval;
      sent += c;
    }
    // Every message but the last carries 1 (the first) or `interval` tokens.
    EXPECT_EQ(sink_.counts.empty() ? 0 : sink_.counts.front(), 1) << interval;
    EXPECT_EQ(static_cast<size_t>(sent) + sink_.last.tokens_size(), text.size()) << interval;
  }
  for (size_t i = 1; i < texts.size(); ++i) {
    EXPECT_EQ(texts[i], texts[0]);
    EXPECT_EQ(ids[i], ids[0]);
  }
  EXPECT_EQ(texts[0], text);
}

}  // namespace
}  // namespace lstmserve::testing
