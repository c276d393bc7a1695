// Malformed messages sent as raw bytes through a generic stub (bytes that
// are no protobuf, invalid UTF-8 in a string field, an empty message, a
// wrong wire type, unknown fields, two or no messages on a call) and unknown
// methods: each gets a status, and the server still answers correctly
// afterwards.
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <grpcpp/generic/generic_stub.h>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/server/bad_input_support.h"

namespace lstmserve::testing {
namespace {

using ::testing::HasSubstr;

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

using MalformedMessageTest = BadInputTest;

TEST_F(MalformedMessageTest, MalformedMessagesGetAStatusAndChangeNothing) {
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

}  // namespace
}  // namespace lstmserve::testing
