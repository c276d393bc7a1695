// Cancellation and deadlines free the slot; graceful shutdown finishes
// in-flight streams, turns health NOT_SERVING and refuses new requests (with
// a connection age: new connections, while open ones are served until they
// age out).
#include <atomic>
#include <iostream>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/server/test_server.h"

namespace lstmserve::testing {
namespace {

// One slot, so a second request can only run once the first left it.
ServerOptions OneSlot() {
  ServerOptions o = TestOptions();
  o.scheduler.max_batch = 1;
  o.limits.max_tokens_limit = 10000000;
  return o;
}

CallOptions Timeout(absl::Duration d) {
  CallOptions c;
  c.timeout = d;
  return c;
}

TEST(LifecycleTest, CancellationFreesTheSlot) {
  TestServer t(OneSlot());
  int messages = 0;
  absl::Status s = t.client->Generate(Request("AB", 10000000),
                                      [&](const v1::GenerateResponse&) { return ++messages < 5; });
  EXPECT_EQ(s.code(), absl::StatusCode::kCancelled) << s;
  // The next request gets the slot (it could not while the first ran on).
  auto next = t.client->GenerateText(Request("AB", 10), Timeout(absl::Seconds(60)));
  EXPECT_TRUE(next.ok()) << next.status();
}

TEST(LifecycleTest, DeadlineFreesTheSlot) {
  TestServer t(OneSlot());
  absl::Status s = t.client
                       ->GenerateText(Request("AB", 10000000), Timeout(absl::Milliseconds(300)))
                       .status();
  EXPECT_EQ(s.code(), absl::StatusCode::kDeadlineExceeded) << s;
  auto next = t.client->GenerateText(Request("AB", 10), Timeout(absl::Seconds(60)));
  EXPECT_TRUE(next.ok()) << next.status();
}

TEST(LifecycleTest, ManyClientsCancellingLeaveTheServerWorking) {
  ServerOptions o = TestOptions();
  o.limits.max_tokens_limit = 10000000;
  TestServer t(o);
  std::vector<std::thread> threads;
  std::atomic<int> cancelled{0};
  for (int i = 0; i < 32; ++i) {
    threads.emplace_back([&, i] {
      int n = 0;
      absl::Status s = t.client->Generate(
          Request("AB", 10000000), [&](const v1::GenerateResponse&) { return ++n < 2 + i % 5; });
      if (s.code() == absl::StatusCode::kCancelled) ++cancelled;
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(cancelled.load(), 32);
  v1::GenerateRequest r = Request("ABC", 50);
  r.set_temperature(0.0f);
  auto g = t.client->GenerateText(r, Timeout(absl::Seconds(60)));
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_EQ(g->text, ReferenceGreedy(TinyShape(), "ABC", 50));
}

TEST(LifecycleTest, SlowReaderDoesNotStallOthers) {
  ServerOptions o = TestOptions();
  o.scheduler.max_pending_tokens = 8;
  o.limits.max_tokens_limit = 100000;
  TestServer t(o);
  // A reader that stops reading after its first message.
  absl::Notification release;
  absl::Status slow_status;
  std::string slow_text;
  std::thread slow([&] {
    v1::GenerateRequest r = Request("AB", 20000);
    r.set_temperature(0.0f);
    slow_status = t.client->Generate(r, [&](const v1::GenerateResponse& m) {
      slow_text += m.text();
      release.WaitForNotification();
      return true;
    });
  });
  // Others complete while it is stuck.
  for (int i = 0; i < 5; ++i) {
    auto g = t.client->GenerateText(Request("CD", 300), Timeout(absl::Seconds(60)));
    EXPECT_TRUE(g.ok()) << g.status();
  }
  release.Notify();
  slow.join();
  EXPECT_TRUE(slow_status.ok()) << slow_status;
  EXPECT_EQ(slow_text, ReferenceGreedy(TinyShape(), "AB", 20000));
}

TEST(LifecycleTest, GracefulShutdownCompletesInFlightStreams) {
  TestServer t;
  constexpr int kStreams = 8;
  absl::Notification release;
  std::atomic<int> started{0};
  std::vector<absl::Status> statuses(kStreams);
  std::vector<std::string> texts(kStreams);
  std::vector<std::thread> threads;
  for (int i = 0; i < kStreams; ++i) {
    threads.emplace_back([&, i] {
      v1::GenerateRequest r = Request("AB", 500);
      r.set_temperature(0.0f);
      bool first = true;
      statuses[i] = t.client->Generate(r, [&](const v1::GenerateResponse& m) {
        texts[i] += m.text();
        if (first) {
          first = false;
          ++started;
          release.WaitForNotification();  // hold the stream open
        }
        return true;
      });
    });
  }
  while (started.load() < kStreams) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  std::thread shutdown([&] { t.server->Shutdown(); });
  // Draining: NOT_SERVING, and new requests are refused.
  absl::StatusOr<std::string> health;
  do {
    health = t.client->Health();
  } while (health.ok() && *health == "SERVING");
  // Either NOT_SERVING, or the listener is already closed (GOAWAY).
  EXPECT_TRUE(!health.ok() || *health == "NOT_SERVING") << health.status();
  // Refused: UNAVAILABLE (connection refused, or our service while
  // draining), or CANCELLED when gRPC itself rejects a stream that raced
  // the GOAWAY on an open connection.
  absl::Status refused = t.client->GenerateText(Request("AB", 5)).status();
  EXPECT_TRUE(refused.code() == absl::StatusCode::kUnavailable ||
              refused.code() == absl::StatusCode::kCancelled)
      << refused;
  release.Notify();
  for (auto& th : threads) th.join();
  shutdown.join();
  const std::string expected = ReferenceGreedy(TinyShape(), "AB", 500);
  int complete = 0;
  for (int i = 0; i < kStreams; ++i) {
    if (statuses[i].ok()) {
      EXPECT_EQ(texts[i], expected);
      ++complete;
      continue;
    }
    // Known gRPC 1.51 race (~2% of runs here): once the last call is done,
    // grpc::Server::Shutdown closes the connection while the client's own
    // frames (window updates, pings) sit unread on the server side, so the
    // kernel sends a TCP reset and the client loses the stream tails it had
    // not read yet. The server did generate them: every stream ran on
    // through the drain (the text got well past the first message, and
    // is the reference text's prefix). Nothing else may fail.
    EXPECT_EQ(statuses[i].code(), absl::StatusCode::kUnavailable) << statuses[i];
    // The client sees the reset as one of these two, depending on whether it
    // was reading or writing (a window update) when it arrived.
    const bool reset = statuses[i].message().find("Connection reset by peer") != std::string::npos ||
                       statuses[i].message().find("Broken pipe") != std::string::npos;
    EXPECT_TRUE(reset) << statuses[i];
    EXPECT_EQ(expected.substr(0, texts[i].size()), texts[i]);
    EXPECT_GT(texts[i].size(), 300u) << "stream " << i << " did not run on through the drain";
  }
  if (complete < kStreams) {
    std::cerr << "[ note ] " << kStreams - complete
              << " streams lost their unread tails to the connection reset race\n";
  }
}

// With a connection age, a drain closes only the listener first: calls on
// connections already open are still served (a proxy may have sent one on a
// pooled connection just as the drain began, and could not retry an error),
// new connections are refused, and the gRPC server stops once the open
// connections have aged out.
TEST(LifecycleTest, WithAConnectionAgeTheDrainServesOpenConnectionsUntilTheyAgeOut) {
  ServerOptions o = TestOptions();
  o.network.max_connection_age = absl::Seconds(3);
  TestServer t(o);
  ASSERT_TRUE(t.client->GenerateText(Request("AB", 5)).ok());  // opens the connection
  std::thread shutdown([&] { t.server->Shutdown(absl::Seconds(60)); });
  absl::StatusOr<std::string> health;
  do {
    health = t.client->Health();
  } while (health.ok() && *health == "SERVING");
  ASSERT_TRUE(health.ok()) << health.status();  // asked on the open connection
  EXPECT_EQ(*health, "NOT_SERVING");
  auto served = t.client->GenerateText(GreedyRequest("AB", 5));
  ASSERT_TRUE(served.ok()) << served.status();
  EXPECT_EQ(served->text, ReferenceGreedy(TinyShape(), "AB", 5));
  grpc::ChannelArguments own_connection;  // not the shared subchannel of t.client
  own_connection.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  LanguageModelClient fresh(grpc::CreateCustomChannel(absl::StrCat("127.0.0.1:", t.server->port()),
                                                      grpc::InsecureChannelCredentials(),
                                                      own_connection));
  absl::Status refused = fresh.GenerateText(Request("AB", 5)).status();
  EXPECT_EQ(refused.code(), absl::StatusCode::kUnavailable) << refused;
  EXPECT_THAT(std::string(refused.message()), ::testing::HasSubstr("Connection refused"));
  shutdown.join();  // after the connection's GOAWAY (~3 s), long before the 60 s grace
  absl::Status after = t.client->GenerateText(Request("AB", 5)).status();
  EXPECT_EQ(after.code(), absl::StatusCode::kUnavailable) << after;
}

TEST(LifecycleTest, StreamsStillRunningAfterTheGracePeriodEndUnavailable) {
  ServerOptions o = TestOptions();
  o.limits.max_tokens_limit = 10000000;
  TestServer t(o);
  absl::Notification first;
  absl::Status status;
  std::thread stream([&] {
    status = t.client->Generate(Request("AB", 10000000), [&](const v1::GenerateResponse&) {
      if (!first.HasBeenNotified()) first.Notify();
      return true;
    });
  });
  first.WaitForNotification();
  t.server->Shutdown(absl::Milliseconds(100));
  stream.join();
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << status;
}

}  // namespace
}  // namespace lstmserve::testing
