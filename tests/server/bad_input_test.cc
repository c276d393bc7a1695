// Bad input over the wire, systematically: every invalid field value of
// Generate, Score and Embed (one table: the exact code, and the field, the
// value and the limit in the message); the values exactly at each limit
// (accepted); malformed messages sent as raw bytes through a generic stub;
// unknown methods; and garbage bytes on the gRPC TCP port. After each group
// the server must still answer correctly (greedy text and Score equal to what
// it gave before).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <climits>
#include <cmath>
#include <functional>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include <grpcpp/generic/generic_stub.h>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/status_util.h"
#include "server/validation.h"
#include "tests/server/test_server.h"

namespace lstmserve::testing {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Matcher;
using Code = absl::StatusCode;

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

ServerOptions Limits() {
  ServerOptions o = TestOptions();
  o.limits.max_prompt_tokens = 16;
  o.limits.max_tokens_limit = 100;
  o.limits.max_stop_strings = 2;
  o.limits.max_stop_length = 4;
  o.limits.max_logprobs = 20;
  return o;
}

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

// What a correct server answers; compared before and after abuse.
struct Answers {
  std::string greedy;
  double score = 0;
  std::vector<float> embedding;
};

Answers Ask(LanguageModelClient& client) {
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

void ExpectSameAnswers(LanguageModelClient& client, const Answers& before) {
  Answers after = Ask(client);
  EXPECT_EQ(after.greedy, before.greedy);
  EXPECT_EQ(after.greedy, ReferenceGreedy(TinyShape(), "ABCD", 40));
  EXPECT_DOUBLE_EQ(after.score, before.score);
  EXPECT_EQ(after.embedding, before.embedding);
  auto health = client.Health();
  ASSERT_TRUE(health.ok()) << health.status();
  EXPECT_EQ(*health, "SERVING");
}

class BadInputTest : public ::testing::Test {
 protected:
  TestServer t_{Limits()};
};

TEST_F(BadInputTest, EveryInvalidFieldGetsItsCodeAndAMessageNamingFieldValueAndLimit) {
  const Answers before = Ask(*t_.client);
  for (const BadCase& c : Matrix()) {
    SCOPED_TRACE(c.name);
    const absl::Status s = c.send(*t_.client);
    EXPECT_EQ(s.code(), c.code) << s;
    for (const std::string& part : c.says) EXPECT_THAT(std::string(s.message()), HasSubstr(part));
  }
  ExpectSameAnswers(*t_.client, before);
}

TEST_F(BadInputTest, ValuesExactlyAtEachLimitAreAccepted) {
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

// A request without a request_id takes the x-request-id metadata a proxy or
// client set (the field wins when both are given); metadata over the limit
// is INVALID_ARGUMENT naming it, for every RPC, and changes nothing else.
TEST_F(BadInputTest, RequestIdComesFromTheFieldOrTheXRequestIdMetadata) {
  const Answers before = Ask(*t_.client);
  CallOptions with_id;
  with_id.request_id = std::string(kMaxRequestIdBytes, 'x');
  v1::GenerateRequest g = Request("AB", 5);
  auto generated = t_.client->GenerateText(g, with_id);
  ASSERT_TRUE(generated.ok()) << generated.status();
  EXPECT_EQ(generated->last.request_id(), with_id.request_id);
  g.set_request_id("from-the-field");
  generated = t_.client->GenerateText(g, with_id);
  ASSERT_TRUE(generated.ok()) << generated.status();
  EXPECT_EQ(generated->last.request_id(), "from-the-field");
  v1::ScoreRequest s;
  s.set_model(kModel);
  s.set_text("ABC");
  auto score = t_.client->Score(s, with_id);
  ASSERT_TRUE(score.ok()) << score.status();
  EXPECT_EQ(score->request_id(), with_id.request_id);
  v1::EmbedRequest e;
  e.set_model(kModel);
  e.set_text("ABC");
  auto embed = t_.client->Embed(e, with_id);
  ASSERT_TRUE(embed.ok()) << embed.status();
  EXPECT_EQ(embed->request_id(), with_id.request_id);

  CallOptions too_long;
  too_long.request_id = std::string(kMaxRequestIdBytes + 1, 'x');
  const std::vector<absl::Status> rejected = {
      t_.client->GenerateText(Request("AB", 5), too_long).status(),
      t_.client->Score(s, too_long).status(), t_.client->Embed(e, too_long).status()};
  for (const absl::Status& status : rejected) {
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
    EXPECT_THAT(std::string(status.message()),
                HasSubstr("x-request-id metadata is 257 bytes; the limit is 256"));
  }
  ExpectSameAnswers(*t_.client, before);
}

TEST_F(BadInputTest, LongModelNameGivesABoundedMessage) {
  v1::GenerateRequest r = Request("AB", 5);
  r.set_model(std::string(100000, 'm'));
  absl::Status s = t_.client->GenerateText(r).status();
  EXPECT_EQ(s.code(), Code::kNotFound);
  EXPECT_LE(s.message().size(), kMaxStatusMessageBytes);
  EXPECT_THAT(std::string(s.message()), AllOf(HasSubstr("model 'mmmm"), HasSubstr("...")));
}

// ---- Malformed messages through a generic stub ------------------------

struct RawResult {
  grpc::Status status;
  std::vector<std::string> responses;  // raw response messages
};

// Calls `method` with `messages` (raw bytes, each one gRPC message), then
// half-closes and reads everything; a generic streaming call, so it works
// for unary and server-streaming methods alike.
RawResult RawCall(const std::shared_ptr<grpc::Channel>& channel, const std::string& method,
                  const std::vector<std::string>& messages) {
  grpc::GenericStub stub(channel);
  grpc::CompletionQueue cq;
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  auto call = stub.PrepareCall(&context, method, &cq);
  void* tag;
  bool ok;
  auto wait = [&](intptr_t want) {
    EXPECT_TRUE(cq.Next(&tag, &ok));
    EXPECT_EQ(reinterpret_cast<intptr_t>(tag), want);
    return ok;
  };
  call->StartCall(reinterpret_cast<void*>(1));
  bool open = wait(1);
  for (const std::string& m : messages) {
    if (!open) break;
    grpc::Slice slice(m);
    grpc::ByteBuffer buffer(&slice, 1);
    call->Write(buffer, reinterpret_cast<void*>(2));
    open = wait(2);
  }
  if (open) {
    call->WritesDone(reinterpret_cast<void*>(3));
    wait(3);
  }
  RawResult result;
  for (;;) {
    grpc::ByteBuffer buffer;
    call->Read(&buffer, reinterpret_cast<void*>(4));
    if (!wait(4)) break;
    std::vector<grpc::Slice> slices;
    EXPECT_TRUE(buffer.Dump(&slices).ok());
    std::string bytes;
    for (const auto& s : slices) bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
    result.responses.push_back(bytes);
  }
  call->Finish(&result.status, reinterpret_cast<void*>(5));
  wait(5);
  return result;
}

constexpr char kGenerate[] = "/lstmserve.v1.LanguageModelService/Generate";
constexpr char kScore[] = "/lstmserve.v1.LanguageModelService/Score";
constexpr char kEmbed[] = "/lstmserve.v1.LanguageModelService/Embed";
constexpr char kListModels[] = "/lstmserve.v1.LanguageModelService/ListModels";

std::string Bytes(std::initializer_list<int> bytes) {
  std::string s;
  for (int b : bytes) s.push_back(static_cast<char>(b));
  return s;
}

// field 1 (model) = "tiny", field 3 (max_tokens) = 5, and the given prompt
// (field 2) bytes as is.
std::string GenerateWithPromptBytes(const std::string& prompt) {
  return Bytes({0x0A, 4}) + "tiny" + Bytes({0x12, static_cast<int>(prompt.size())}) + prompt +
         Bytes({0x18, 5});
}

std::string Text(const RawResult& r) {
  std::string text;
  for (const std::string& bytes : r.responses) {
    v1::GenerateResponse m;
    EXPECT_TRUE(m.ParseFromString(bytes));
    text += m.text();
  }
  return text;
}

TEST_F(BadInputTest, MalformedMessagesGetAStatusAndChangeNothing) {
  const Answers before = Ask(*t_.client);
  auto channel = t_.client->channel();

  // Bytes that are no protobuf at all, on every method. gRPC 1.51's callback
  // API cannot say more: a request that fails to parse ends the call with
  // UNIMPLEMENTED and an empty message, before the service sees it
  // (grpcpp/impl/codegen/server_callback_handlers.h).
  const std::vector<std::pair<std::string, std::string>> unparsable = {
      {"truncated varint", Bytes({0x18, 0xFF, 0xFF})},
      {"length past the end", Bytes({0x12, 0x10, 'A', 'B'})},
      {"field number 0", Bytes({0x00, 0x01})},
      {"wire type 7", Bytes({0x0F, 0x01})},
      {"end group without start", Bytes({0x0C})},
      {"64 KiB of 0xFF", std::string(1 << 16, '\xFF')},
  };
  for (const char* method : {kGenerate, kScore, kEmbed, kListModels}) {
    for (const auto& [name, bytes] : unparsable) {
      SCOPED_TRACE(absl::StrCat(method, " ", name));
      RawResult r = RawCall(channel, method, {bytes});
      EXPECT_EQ(r.status.error_code(), grpc::StatusCode::UNIMPLEMENTED)
          << r.status.error_message();
      EXPECT_EQ(r.status.error_message(), "");
      EXPECT_TRUE(r.responses.empty());
    }
  }

  // Invalid UTF-8 in a proto3 string field fails protobuf's parser the same
  // way (the tokenizer's own UTF-8 check never sees it).
  for (const std::string& bad : {Bytes({0xC3, 0x28}), Bytes({0xFF}), Bytes({'A', 0xE2, 0x82}),
                                 Bytes({0xED, 0xA0, 0x80}) /* surrogate */,
                                 Bytes({0xC0, 0x80}) /* overlong NUL */}) {
    SCOPED_TRACE(absl::StrCat("invalid UTF-8 prompt of ", bad.size(), " bytes"));
    RawResult r = RawCall(channel, kGenerate, {GenerateWithPromptBytes(bad)});
    EXPECT_EQ(r.status.error_code(), grpc::StatusCode::UNIMPLEMENTED)
        << r.status.error_message();
    EXPECT_TRUE(r.responses.empty());
  }
  {
    // The same bytes with valid UTF-8 in the prompt work: the framing is right.
    RawResult r = RawCall(channel, kGenerate, {GenerateWithPromptBytes("AB")});
    EXPECT_TRUE(r.status.ok()) << r.status.error_message();
    EXPECT_EQ(Text(r).size(), 5u);
  }

  // An empty message is a valid all-defaults request: the service judges it.
  {
    RawResult r = RawCall(channel, kGenerate, {""});
    EXPECT_EQ(r.status.error_code(), grpc::StatusCode::NOT_FOUND);
    EXPECT_THAT(r.status.error_message(), HasSubstr("model '' is not loaded"));
    r = RawCall(channel, kScore, {""});
    EXPECT_EQ(r.status.error_code(), grpc::StatusCode::NOT_FOUND);
    r = RawCall(channel, kListModels, {""});
    EXPECT_TRUE(r.status.ok());
  }

  // A known field with the wrong wire type is kept as an unknown field, so
  // max_tokens stays 0 and validation names it.
  {
    RawResult r = RawCall(channel, kGenerate,
                          {Bytes({0x0A, 4}) + "tiny" + Bytes({0x12, 2}) + "AB" +
                           Bytes({0x1A, 1, 5}) /* field 3 as bytes */});
    EXPECT_EQ(r.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_THAT(r.status.error_message(), HasSubstr("max_tokens is 0"));
  }

  // A valid request with unknown fields (a newer client) is served as if
  // they were absent.
  {
    v1::GenerateRequest g = Request("ABCD", 40);
    g.set_temperature(0.0f);
    std::string bytes = g.SerializeAsString();
    bytes += Bytes({0xF8, 0x06, 0x2A});           // field 111, varint 42
    bytes += Bytes({0xA2, 0x06, 3}) + "xyz";      // field 100, bytes "xyz"
    bytes += Bytes({0xFD, 0x07, 1, 2, 3, 4});     // field 127, fixed32
    bytes += Bytes({0xAB, 0x06, 0x08, 1, 0xAC, 0x06});  // field 101, a group holding field 1
    RawResult r = RawCall(channel, kGenerate, {bytes});
    EXPECT_TRUE(r.status.ok()) << r.status.error_message();
    EXPECT_EQ(Text(r), before.greedy);
  }

  // Two request messages on a server-streaming and on a unary method: gRPC
  // 1.51 serves the first and ignores the second. None at all: the call
  // fails like an unparsable one.
  {
    const std::string g = GenerateWithPromptBytes("AB");
    RawResult r = RawCall(channel, kGenerate, {g, g});
    EXPECT_TRUE(r.status.ok()) << r.status.error_message();
    EXPECT_EQ(Text(r).size(), 5u);
    v1::ScoreRequest s;
    s.set_model(kModel);
    s.set_text("AB");
    r = RawCall(channel, kScore, {s.SerializeAsString(), s.SerializeAsString()});
    EXPECT_TRUE(r.status.ok()) << r.status.error_message();
    EXPECT_EQ(r.responses.size(), 1u);
    for (const char* method : {kGenerate, kScore, kEmbed, kListModels}) {
      SCOPED_TRACE(absl::StrCat(method, " without a request message"));
      r = RawCall(channel, method, {});
      EXPECT_EQ(r.status.error_code(), grpc::StatusCode::UNIMPLEMENTED);
      EXPECT_TRUE(r.responses.empty());
    }
  }

  // Unknown methods and services.
  for (const char* method : {"/lstmserve.v1.LanguageModelService/Nope",
                             "/lstmserve.v1.LanguageModelService/generate",
                             "/lstmserve.v2.LanguageModelService/Generate", "/nope.Service/Call",
                             "/", "/lstmserve.v1.LanguageModelService/"}) {
    SCOPED_TRACE(method);
    RawResult r = RawCall(channel, method, {GenerateWithPromptBytes("AB")});
    EXPECT_EQ(r.status.error_code(), grpc::StatusCode::UNIMPLEMENTED)
        << r.status.error_message();
  }

  ExpectSameAnswers(*t_.client, before);
}

// ---- Garbage on the TCP port -------------------------------------------

// Connects to 127.0.0.1:port; the socket (reads time out after 10 s).
int Connect(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  EXPECT_GE(fd, 0);
  timeval timeout{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  return fd;
}

void SendAll(int fd, const std::string& bytes) {
  size_t sent = 0;
  while (sent < bytes.size()) {
    const ssize_t n = send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) return;  // the server may close on the first bad byte
    sent += static_cast<size_t>(n);
  }
}

// Reads until the server closes the connection (true) or 10 s pass (false);
// what it sent goes to *received.
bool ReadUntilClosed(int fd, std::string* received) {
  char buf[4096];
  for (;;) {
    const ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n == 0) return true;
    if (n < 0) return errno == ECONNRESET;
    received->append(buf, static_cast<size_t>(n));
  }
}

constexpr char kPreface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

TEST_F(BadInputTest, GarbageOnTheGrpcPortIsDroppedAndServingGoesOn) {
  const Answers before = Ask(*t_.client);
  const int port = t_.server->port();
  std::mt19937 rng(5);
  std::string random_bytes(1 << 16, '\0');
  for (char& c : random_bytes) c = static_cast<char>(rng());

  // The server closes these connections itself: they can never become HTTP/2.
  const std::vector<std::pair<std::string, std::string>> closed_by_server = {
      {"random bytes", random_bytes},
      {"HTTP/1.1 request", "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n\r\n"},
      {"HTTP/1.1 POST of a gRPC method",
       "POST /lstmserve.v1.LanguageModelService/Generate HTTP/1.1\r\nHost: x\r\n"
       "Content-Type: application/grpc\r\nContent-Length: 3\r\n\r\nabc"},
      {"TLS ClientHello on a plaintext port",
       Bytes({0x16, 0x03, 0x01, 0x00, 0x2F, 0x01, 0x00, 0x00, 0x2B, 0x03, 0x03}) +
           std::string(43, '\x11')},
      {"preface then a garbage frame", std::string(kPreface) + random_bytes.substr(0, 4096)},
      {"preface then a frame of 16 MiB declared length",
       std::string(kPreface) + Bytes({0xFF, 0xFF, 0xFF, 0x00, 0x00, 0, 0, 0, 0})},
  };
  for (const auto& [name, bytes] : closed_by_server) {
    SCOPED_TRACE(name);
    const int fd = Connect(port);
    SendAll(fd, bytes);
    std::string received;
    EXPECT_TRUE(ReadUntilClosed(fd, &received)) << "the server kept the connection open";
    close(fd);
  }

  // These the client abandons: a truncated preface, a preface and half a
  // frame header, a connection opened and closed at once, and 50 idle
  // connections held open while real requests are served.
  for (const std::string& bytes : {std::string(kPreface).substr(0, 10),
                                   std::string(kPreface) + Bytes({0x00, 0x00}), std::string()}) {
    const int fd = Connect(port);
    SendAll(fd, bytes);
    close(fd);
  }
  std::vector<int> idle;
  for (int i = 0; i < 50; ++i) {
    idle.push_back(Connect(port));
    if (i % 2 == 0) SendAll(idle.back(), std::string(kPreface).substr(0, 5 + i % 15));
  }
  ExpectSameAnswers(*t_.client, before);
  for (int fd : idle) close(fd);

  // A fresh client (new connection) gets the same answers too.
  LanguageModelClient fresh(absl::StrCat("127.0.0.1:", port));
  ExpectSameAnswers(fresh, before);
}

}  // namespace
}  // namespace lstmserve::testing
