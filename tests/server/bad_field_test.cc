// Every invalid field value of Generate, Score and Embed (one table: the
// exact code, and the field, the value and the limit in the message), and
// the values exactly at each limit (accepted). Afterwards the server still
// answers correctly (greedy text and Score equal to what it gave before).
#include <climits>
#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/status_util.h"
#include "server/validation.h"
#include "tests/server/bad_input_support.h"

namespace lstmserve::testing {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using Code = absl::StatusCode;

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

// One bad request: how to send it, the code it must get and what its
// message must say.
struct BadCase {
  std::string name;
  std::function<absl::Status(LanguageModelClient&)> send;
  Code code;
  std::vector<std::string> says;
};

using GenerateEdit = std::function<void(v1::GenerateRequest&)>;
using ScoreEdit = std::function<void(v1::ScoreRequest&)>;
using EmbedEdit = std::function<void(v1::EmbedRequest&)>;

BadCase Gen(std::string name, GenerateEdit edit, Code code, std::vector<std::string> says) {
  return {"Generate " + name,
          [edit](LanguageModelClient& c) {
            v1::GenerateRequest r = Request("AB", 5);
            edit(r);
            return c.GenerateText(r).status();
          },
          code, std::move(says)};
}
BadCase Gen(std::string name, GenerateEdit edit, std::vector<std::string> says) {
  return Gen(std::move(name), std::move(edit), Code::kInvalidArgument, std::move(says));
}

BadCase Score(std::string name, ScoreEdit edit, Code code, std::vector<std::string> says) {
  return {"Score " + name,
          [edit](LanguageModelClient& c) {
            v1::ScoreRequest r;
            r.set_model(kModel);
            r.set_text("AB");
            edit(r);
            return c.Score(r).status();
          },
          code, std::move(says)};
}

BadCase Embed(std::string name, EmbedEdit edit, Code code, std::vector<std::string> says) {
  return {"Embed " + name,
          [edit](LanguageModelClient& c) {
            v1::EmbedRequest r;
            r.set_model(kModel);
            r.set_text("AB");
            edit(r);
            return c.Embed(r).status();
          },
          code, std::move(says)};
}

// The whole matrix. Limits: prompt 16 tokens, max_tokens 100, 2 stop
// strings of 4 bytes, logprobs 20; the vocabulary is 'A'..'e' (37).
std::vector<BadCase> Matrix() {
  const Code kNotFound = Code::kNotFound;
  const Code kInvalid = Code::kInvalidArgument;
  std::vector<BadCase> m = {
      // model
      Gen("unknown model", [](auto& r) { r.set_model("nope"); }, kNotFound,
          {"model 'nope' is not loaded", "loaded models: tiny"}),
      Gen("empty model", [](auto& r) { r.set_model(""); }, kNotFound,
          {"model '' is not loaded", "tiny"}),
      Gen("model differs in case", [](auto& r) { r.set_model("TINY"); }, kNotFound,
          {"model 'TINY'", "tiny"}),
      // prompt
      Gen("empty prompt", [](auto& r) { r.set_prompt(""); }, {"prompt is empty"}),
      Gen("prompt one token over", [](auto& r) { r.set_prompt(std::string(17, 'A')); },
          {"prompt is 17 tokens", "the limit is 16"}),
      Gen("prompt bytes beyond any token count",
          [](auto& r) { r.set_prompt(std::string(65, 'A')); },
          {"prompt is 65 bytes", "limit of 16 tokens"}),
      Gen("prompt of 100 KB", [](auto& r) { r.set_prompt(std::string(100000, 'A')); },
          {"prompt is 100000 bytes", "limit of 16 tokens"}),
      Gen("prompt ASCII outside vocabulary", [](auto& r) { r.set_prompt("ABzA"); },
          {"prompt contains 'z' (U+007A)", "character position 2", "vocabulary of 37"}),
      Gen("prompt 2-byte character", [](auto& r) { r.set_prompt("AB\xC3\xA9"); },
          {"prompt contains '\xC3\xA9' (U+00E9)", "character position 2"}),
      Gen("prompt 3-byte character first", [](auto& r) { r.set_prompt("\xE2\x82\xAC"); },
          {"'\xE2\x82\xAC' (U+20AC)", "character position 0"}),
      Gen("prompt astral character", [](auto& r) { r.set_prompt("A\xF0\x9F\x98\x80"); },
          {"(U+1F600)", "character position 1"}),
      Gen("prompt control character", [](auto& r) { r.set_prompt("AB\x01"); },
          {"prompt contains U+0001", "character position 2"}),
      Gen("prompt NUL", [](auto& r) { r.set_prompt(std::string("A\0B", 3)); },
          {"prompt contains U+0000", "character position 1"}),
      Gen("prompt newline", [](auto& r) { r.set_prompt("A\n"); },
          {"prompt contains U+000A", "character position 1"}),
      // max_tokens
      Gen("max_tokens unset", [](auto& r) { r.clear_max_tokens(); },
          {"max_tokens is 0", "[1, 100]"}),
      Gen("max_tokens -1", [](auto& r) { r.set_max_tokens(-1); },
          {"max_tokens is -1", "[1, 100]"}),
      Gen("max_tokens INT_MIN", [](auto& r) { r.set_max_tokens(INT_MIN); },
          {"max_tokens is -2147483648", "[1, 100]"}),
      Gen("max_tokens one over", [](auto& r) { r.set_max_tokens(101); },
          {"max_tokens is 101", "[1, 100]"}),
      Gen("max_tokens INT_MAX", [](auto& r) { r.set_max_tokens(INT_MAX); },
          {"max_tokens is 2147483647", "[1, 100]"}),
      // temperature
      Gen("temperature negative", [](auto& r) { r.set_temperature(-0.5f); },
          {"temperature is -0.5", "finite number >= 0"}),
      Gen("temperature smallest negative",
          [](auto& r) { r.set_temperature(-std::numeric_limits<float>::denorm_min()); },
          {"temperature is -1.4013e-45", ">= 0"}),
      Gen("temperature NaN", [](auto& r) { r.set_temperature(kNaN); },
          {"temperature is nan", "finite number >= 0"}),
      Gen("temperature +inf", [](auto& r) { r.set_temperature(kInf); },
          {"temperature is inf", "finite number >= 0"}),
      Gen("temperature -inf", [](auto& r) { r.set_temperature(-kInf); },
          {"temperature is -inf", "finite number >= 0"}),
      // top_p
      Gen("top_p 0", [](auto& r) { r.set_top_p(0.0f); }, {"top_p is 0", "(0, 1]"}),
      Gen("top_p negative", [](auto& r) { r.set_top_p(-0.25f); }, {"top_p is -0.25", "(0, 1]"}),
      Gen("top_p just over 1", [](auto& r) { r.set_top_p(1.0001f); },
          {"top_p is 1.0001", "(0, 1]"}),
      Gen("top_p NaN", [](auto& r) { r.set_top_p(kNaN); }, {"top_p is nan", "(0, 1]"}),
      Gen("top_p +inf", [](auto& r) { r.set_top_p(kInf); }, {"top_p is inf", "(0, 1]"}),
      Gen("top_p -inf", [](auto& r) { r.set_top_p(-kInf); }, {"top_p is -inf", "(0, 1]"}),
      // top_k
      Gen("top_k -1", [](auto& r) { r.set_top_k(-1); }, {"top_k is -1", ">= 0"}),
      Gen("top_k INT_MIN", [](auto& r) { r.set_top_k(INT_MIN); },
          {"top_k is -2147483648", ">= 0"}),
      // logprobs
      Gen("logprobs -1", [](auto& r) { r.set_logprobs(-1); }, {"logprobs is -1", "[0, 20]"}),
      Gen("logprobs one over", [](auto& r) { r.set_logprobs(21); },
          {"logprobs is 21", "[0, 20]"}),
      Gen("logprobs INT_MAX", [](auto& r) { r.set_logprobs(INT_MAX); },
          {"logprobs is 2147483647", "[0, 20]"}),
      // stop
      Gen("one stop string too many",
          [](auto& r) {
            for (const char* s : {"A", "B", "C"}) r.add_stop(s);
          },
          {"stop has 3 entries", "the limit is 2"}),
      Gen("ten thousand stop strings",
          [](auto& r) {
            for (int i = 0; i < 10000; ++i) r.add_stop("A");
          },
          {"stop has 10000 entries", "the limit is 2"}),
      Gen("stop string one byte too long", [](auto& r) { r.add_stop("ABCDE"); },
          {"stop[0] is 5 bytes", "the limit is 4"}),
      Gen("second stop string too long in bytes, not characters",
          [](auto& r) {
            r.add_stop("A");
            r.add_stop("\xE2\x82\xAC\xE2\x82\xAC");  // 2 characters, 6 bytes
          },
          {"stop[1] is 6 bytes", "the limit is 4"}),
      Gen("empty stop string", [](auto& r) { r.add_stop(""); }, {"stop[0] is empty"}),
      // request_id (echoed in every streamed message: bounded)
      Gen("request_id one byte too long", [](auto& r) { r.set_request_id(std::string(257, 'i')); },
          {"request_id is 257 bytes", "the limit is 256"}),
      Gen("request_id of 500 KB", [](auto& r) { r.set_request_id(std::string(500000, 'i')); },
          {"request_id is 500000 bytes", "the limit is 256"}),
      Score("request_id too long", [](auto& r) { r.set_request_id(std::string(257, 'i')); },
            kInvalid, {"request_id is 257 bytes", "the limit is 256"}),
      Embed("request_id too long", [](auto& r) { r.set_request_id(std::string(1000, 'i')); },
            kInvalid, {"request_id is 1000 bytes", "the limit is 256"}),
      // Score
      Score("unknown model", [](auto& r) { r.set_model("nope"); }, kNotFound,
            {"model 'nope' is not loaded", "tiny"}),
      Score("empty text", [](auto& r) { r.clear_text(); }, kInvalid, {"text is empty"}),
      Score("empty text with context",
            [](auto& r) {
              r.clear_text();
              r.set_context("AB");
            },
            kInvalid, {"text is empty"}),
      Score("text over the limit", [](auto& r) { r.set_text(std::string(17, 'B')); }, kInvalid,
            {"text is 17 tokens", "the limit is 16"}),
      Score("text outside vocabulary", [](auto& r) { r.set_text("zA"); }, kInvalid,
            {"text contains 'z' (U+007A)", "character position 0"}),
      Score("context outside vocabulary", [](auto& r) { r.set_context("AAA!"); }, kInvalid,
            {"context contains '!' (U+0021)", "character position 3"}),
      Score("context alone over the limit", [](auto& r) { r.set_context(std::string(17, 'A')); },
            kInvalid, {"context is 17 tokens", "the limit is 16"}),
      Score("context + text over the limit",
            [](auto& r) {
              r.set_context(std::string(9, 'A'));
              r.set_text(std::string(8, 'B'));
            },
            kInvalid, {"context + text is 17 tokens", "the limit is 16"}),
      // Embed
      Embed("unknown model", [](auto& r) { r.set_model("nope"); }, kNotFound,
            {"model 'nope' is not loaded", "tiny"}),
      Embed("empty text", [](auto& r) { r.clear_text(); }, kInvalid, {"text is empty"}),
      Embed("text over the limit", [](auto& r) { r.set_text(std::string(17, 'C')); }, kInvalid,
            {"text is 17 tokens", "the limit is 16"}),
      Embed("text bytes over the limit", [](auto& r) { r.set_text(std::string(100, 'C')); },
            kInvalid, {"text is 100 bytes", "limit of 16 tokens"}),
      Embed("text outside vocabulary", [](auto& r) { r.set_text("AB~"); }, kInvalid,
            {"text contains '~' (U+007E)", "character position 2"}),
  };
  return m;
}

using BadFieldTest = BadInputTest;

TEST_F(BadFieldTest, EveryInvalidFieldGetsItsCodeAndAMessageNamingFieldValueAndLimit) {
  const Answers before = Ask(*t_.client);
  for (const BadCase& c : Matrix()) {
    SCOPED_TRACE(c.name);
    const absl::Status s = c.send(*t_.client);
    EXPECT_EQ(s.code(), c.code) << s;
    for (const std::string& part : c.says) EXPECT_THAT(std::string(s.message()), HasSubstr(part));
  }
  ExpectSameAnswers(*t_.client, before);
}

TEST_F(BadFieldTest, ValuesExactlyAtEachLimitAreAccepted) {
  v1::GenerateRequest r = Request(std::string(16, 'A'), 100);
  r.set_temperature(0.0f);
  r.set_top_p(1.0f);
  r.set_top_k(0);
  r.set_logprobs(20);
  r.add_stop("eeee");
  r.add_stop("dddd");
  r.set_request_id(std::string(kMaxRequestIdBytes, 'i'));
  auto g = t_.client->GenerateText(r);
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_EQ(g->last.request_id(), r.request_id());
  // Extreme but valid sampling values sample without failing.
  for (float temperature : {std::numeric_limits<float>::denorm_min(), 1e30f}) {
    for (float top_p : {std::numeric_limits<float>::denorm_min(), 1.0f}) {
      v1::GenerateRequest x = Request("AB", 20);
      x.set_temperature(temperature);
      x.set_top_p(top_p);
      x.set_top_k(INT_MAX);
      x.set_seed(3);
      auto gx = t_.client->GenerateText(x);
      ASSERT_TRUE(gx.ok()) << temperature << " " << top_p << ": " << gx.status();
      EXPECT_EQ(gx->last.usage().generated_tokens(), 20);
    }
  }
  v1::ScoreRequest s;
  s.set_model(kModel);
  s.set_context(std::string(8, 'A'));
  s.set_text(std::string(8, 'B'));
  auto score = t_.client->Score(s);
  ASSERT_TRUE(score.ok()) << score.status();
  EXPECT_EQ(score->scored_tokens(), 8);
  v1::EmbedRequest e;
  e.set_model(kModel);
  e.set_text(std::string(16, 'e'));
  auto embed = t_.client->Embed(e);
  ASSERT_TRUE(embed.ok()) << embed.status();
  EXPECT_EQ(embed->tokens(), 16);
}

TEST_F(BadFieldTest, LongModelNameGivesABoundedMessage) {
  v1::GenerateRequest r = Request("AB", 5);
  r.set_model(std::string(100000, 'm'));
  absl::Status s = t_.client->GenerateText(r).status();
  EXPECT_EQ(s.code(), Code::kNotFound);
  EXPECT_LE(s.message().size(), kMaxStatusMessageBytes);
  EXPECT_THAT(std::string(s.message()), AllOf(HasSubstr("model 'mmmm"), HasSubstr("...")));
}

}  // namespace
}  // namespace lstmserve::testing
