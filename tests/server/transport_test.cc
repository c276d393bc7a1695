// Transport limits and connection lifetime: the request size limit, the
// default deadline for calls without one, and --max-connection-age with and
// without a grace period for streams in flight.
#include <memory>
#include <string>

#include "gtest/gtest.h"
#include "tests/server/controllable_engine.h"
#include "tests/server/test_server.h"

namespace lstmserve::testing {
namespace {

TEST(TransportTest, OversizedRequestIsResourceExhaustedAndChangesNothing) {
  ServerOptions o = TestOptions();
  o.network.max_receive_message_bytes = 64 * 1024;
  TestServer t(o);
  auto big = t.client->GenerateText(Request(std::string(100 * 1024, 'A'), 4));
  EXPECT_EQ(big.status().code(), absl::StatusCode::kResourceExhausted) << big.status();
  EXPECT_NE(big.status().message().find("larger than max"), std::string::npos)
      << big.status().message();
  auto ok = t.client->GenerateText(GreedyRequest("ABCD", 12));
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(ok->text, ReferenceGreedy(TinyShape(), "ABCD", 12));
}

TEST(TransportTest, CallWithoutDeadlineGetsTheDefaultOne) {
  ServerOptions o = TestOptions();
  o.limits.default_deadline = absl::Milliseconds(300);
  ControlledServer s(o, /*step_delay_us=*/2000);  // 4000 tokens would take ~8 s
  v1::GenerateResponse last;
  absl::Status st = s.client->Generate(Request("ABC", 4000), [&](const v1::GenerateResponse& m) {
    last = m;
    return true;
  });
  EXPECT_EQ(st.code(), absl::StatusCode::kDeadlineExceeded) << st;
  EXPECT_LT(last.usage().generated_tokens(), 4000);
  // A client deadline longer than the default wins.
  CallOptions call;
  call.timeout = absl::Seconds(60);
  auto g = s.client->GenerateText(Request("ABC", 200), call);
  EXPECT_TRUE(g.ok()) << g.status();
}

TEST(TransportTest, MaxConnectionAgeLetsStreamsInFlightFinish) {
  ServerOptions o = TestOptions();
  o.network.max_connection_age = absl::Milliseconds(200);
  ControlledServer s(o, /*step_delay_us=*/2000);
  // ~0.8 s of streaming on a connection that reaches its age after 0.2 s.
  auto g = s.client->GenerateText(GreedyRequest("ABCD", 400));
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_EQ(g->last.usage().generated_tokens(), 400);
  EXPECT_EQ(g->text, ReferenceGreedy(TinyShape(), "ABCD", 400));
  // The client reconnects transparently for the next calls.
  for (int i = 0; i < 3; ++i) {
    absl::SleepFor(absl::Milliseconds(250));
    auto again = s.client->GenerateText(GreedyRequest("ABCD", 12));
    ASSERT_TRUE(again.ok()) << again.status();
  }
}

TEST(TransportTest, MaxConnectionAgeGraceEndsStreamsThatOutliveIt) {
  ServerOptions o = TestOptions();
  o.network.max_connection_age = absl::Milliseconds(200);
  o.network.max_connection_age_grace = absl::Milliseconds(200);
  ControlledServer s(o, /*step_delay_us=*/2000);
  // ~8 s of streaming: the connection is closed ~0.4 s in.
  auto g = s.client->GenerateText(Request("ABCD", 4000));
  EXPECT_EQ(g.status().code(), absl::StatusCode::kUnavailable) << g.status();
  // The server is fine and the client reconnects.
  auto again = s.client->GenerateText(GreedyRequest("ABCD", 12));
  ASSERT_TRUE(again.ok()) << again.status();
}

}  // namespace
}  // namespace lstmserve::testing
