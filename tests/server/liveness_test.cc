// Liveness and readiness through grpc.health.v1: liveness
// ("lstmserve.v1.Liveness") follows the scheduling loop's progress — a
// wedged engine step turns it NOT_SERVING, releasing it turns it back —
// while readiness ("" and the service name) follows warm-up and drain.
#include <memory>
#include <thread>

#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "server/liveness.h"
#include "tests/server/controllable_engine.h"
#include "tests/server/test_server.h"

namespace lstmserve::testing {
namespace {

constexpr char kReadiness[] = "lstmserve.v1.LanguageModelService";

std::string Health(ControlledServer& s, const std::string& service) {
  auto h = s.client->Health(service);
  return h.ok() ? *h : h.status().ToString();
}

// Polls until `service` reports `want` (or a generous deadline passes);
// returns the last answer.
std::string AwaitHealth(ControlledServer& s, const std::string& service,
                        const std::string& want) {
  const absl::Time give_up = absl::Now() + absl::Seconds(30);
  std::string got = Health(s, service);
  while (got != want && absl::Now() < give_up) {
    absl::SleepFor(absl::Milliseconds(20));
    got = Health(s, service);
  }
  return got;
}

ServerOptions FastLiveness() {
  ServerOptions o = TestOptions();
  o.liveness_stall_timeout = absl::Milliseconds(400);
  o.liveness_period = absl::Milliseconds(20);
  return o;
}

TEST(LivenessTest, IdleServerIsLiveAndReady) {
  ControlledServer s(FastLiveness());
  EXPECT_EQ(Health(s, kLivenessService), "SERVING");
  EXPECT_EQ(Health(s, ""), "SERVING");
  EXPECT_EQ(Health(s, kReadiness), "SERVING");
  // An idle loop keeps iterating: still live well past the stall timeout.
  absl::SleepFor(absl::Seconds(1));
  EXPECT_EQ(Health(s, kLivenessService), "SERVING");
}

TEST(LivenessTest, WedgedStepTurnsLivenessNotServingUntilReleased) {
  ControlledServer s(FastLiveness());
  s.controls->Wedge();
  std::thread stream([&] {
    auto g = s.client->GenerateText(Request("ABC", 8));
    EXPECT_TRUE(g.ok()) << g.status();  // completes once released
  });
  s.controls->AwaitWedgedStep();
  EXPECT_EQ(AwaitHealth(s, kLivenessService, "NOT_SERVING"), "NOT_SERVING");
  // The process still answers; readiness is about warm-up and drain only.
  EXPECT_EQ(Health(s, kReadiness), "SERVING");
  s.controls->Release();
  EXPECT_EQ(AwaitHealth(s, kLivenessService, "SERVING"), "SERVING");
  stream.join();
}

TEST(LivenessTest, DrainStopsReadinessAndNewWorkWhileStreamsRun) {
  ControlledServer s(FastLiveness());
  s.controls->step_delay_us = 2000;  // a long stream: ~2 ms per token
  absl::Notification first_token;
  std::thread stream([&] {
    // Read the first token, then let the stream run during the drain.
    int messages = 0;
    absl::Status st = s.client->Generate(Request("ABC", 4000), [&](const v1::GenerateResponse&) {
      if (++messages == 1) first_token.Notify();
      return true;
    });
    // Ended by the drain's end (grace below), or ran to its length.
    EXPECT_TRUE(st.ok() || st.code() == absl::StatusCode::kUnavailable) << st;
  });
  first_token.WaitForNotification();
  std::thread drain([&] { s.server->Shutdown(absl::Seconds(3)); });
  // Readiness goes NOT_SERVING and the listener closes (GOAWAY): a probe
  // either reads NOT_SERVING or cannot connect any more — never SERVING.
  const absl::Time give_up = absl::Now() + absl::Seconds(30);
  std::string ready = Health(s, kReadiness);
  while (ready == "SERVING" && absl::Now() < give_up) {
    absl::SleepFor(absl::Milliseconds(20));
    ready = Health(s, kReadiness);
  }
  EXPECT_NE(ready, "SERVING");
  // New work is refused while the drain runs.
  // (CANCELLED: gRPC rejecting a stream that raced the GOAWAY.)
  auto refused = s.client->GenerateText(Request("ABC", 4));
  EXPECT_TRUE(refused.status().code() == absl::StatusCode::kUnavailable ||
              refused.status().code() == absl::StatusCode::kCancelled)
      << refused.status();
  drain.join();
  stream.join();
}

}  // namespace
}  // namespace lstmserve::testing
