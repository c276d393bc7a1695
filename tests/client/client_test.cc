#include "client/client.h"

#include "gtest/gtest.h"

namespace lstmserve {
namespace {

TEST(ClientTest, StatusCodesMapOneToOne) {
  EXPECT_TRUE(FromGrpcStatus(grpc::Status::OK).ok());
  absl::Status s = FromGrpcStatus(grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED, "full"));
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(s.message(), "full");
}

TEST(ClientTest, UnreachableServerIsUnavailable) {
  LanguageModelClient client("127.0.0.1:1");
  CallOptions call;
  call.timeout = absl::Seconds(5);
  EXPECT_EQ(client.ListModels(call).status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(client.Health("", call).status().code(), absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace lstmserve
