// The request ID of Generate, Score and Embed: from the request_id field or
// the x-request-id metadata, and metadata over the limit rejected naming it.
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/validation.h"
#include "tests/server/bad_input_support.h"

namespace lstmserve::testing {
namespace {

using ::testing::HasSubstr;

using RequestIdTest = BadInputTest;

// A request without a request_id takes the x-request-id metadata a proxy or
// client set (the field wins when both are given); metadata over the limit
// is INVALID_ARGUMENT naming it, for every RPC, and changes nothing else.
TEST_F(RequestIdTest, RequestIdComesFromTheFieldOrTheXRequestIdMetadata) {
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

}  // namespace
}  // namespace lstmserve::testing
