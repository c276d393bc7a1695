// /metrics over real HTTP after a known workload: exact request counts by
// code, token totals and histogram counts; and the request log's lines.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/request_log.h"
#include "tests/server/test_server.h"

namespace lstmserve::testing {
namespace {

// GET http://127.0.0.1:port/metrics with a plain socket; the body.
std::string HttpGetMetrics(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  EXPECT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  const std::string request =
      "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
  EXPECT_EQ(write(fd, request.data(), request.size()), static_cast<ssize_t>(request.size()));
  std::string response;
  char buf[65536];
  for (ssize_t n; (n = read(fd, buf, sizeof(buf))) > 0;) response.append(buf, n);
  close(fd);
  const size_t body = response.find("\r\n\r\n");
  EXPECT_NE(body, std::string::npos) << response;
  EXPECT_EQ(response.rfind("HTTP/1.", 0), 0u) << response.substr(0, 100);
  return body == std::string::npos ? "" : response.substr(body + 4);
}

// The samples of a text exposition, by series ("name{l1=\"v1\",...}"; the
// exposer writes labels sorted by name).
using Samples = std::map<std::string, double>;
Samples Parse(const std::string& text) {
  Samples samples;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#') continue;
    const size_t space = line.rfind(' ');
    samples[line.substr(0, space)] = std::stod(line.substr(space + 1));
  }
  return samples;
}

class Metrics {
 public:
  explicit Metrics(int port) : port_(port) { Refresh(); }
  void Refresh() { samples_ = Parse(HttpGetMetrics(port_)); }
  // The value of `series` (labels written sorted, as the exposer does); -1
  // when it is absent.
  double operator()(const std::string& series) const {
    auto it = samples_.find(series);
    return it == samples_.end() ? -1 : it->second;
  }
  // Refreshes until `series` reaches `value` (events a client sees before
  // the server has finished with them, e.g. its own cancellation), at most
  // 20 s; the caller then asserts the value.
  void WaitFor(const std::string& series, double value) {
    WaitUntil([&](const Metrics& m) { return m(series) == value; });
  }
  void WaitUntil(const std::function<bool(const Metrics&)>& done) {
    const absl::Time deadline = absl::Now() + absl::Seconds(20);
    while (!done(*this) && absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(20));
      Refresh();
    }
  }

 private:
  int port_;
  Samples samples_;
};

std::string Requests(const std::string& model, const std::string& rpc, const std::string& code) {
  // Requests that ran on a model carry its version (1: a model given to
  // Start); model "" (none found) has version "".
  return absl::StrCat("lstmserve_requests_total{code=\"", code, "\",model=\"", model, "\",rpc=\"",
                      rpc, "\",version=\"", model.empty() ? "" : "1", "\"}");
}
std::string Tiny(const std::string& name) { return absl::StrCat(name, "{model=\"tiny\"}"); }

ServerOptions WithMetrics() {
  ServerOptions o = TestOptions();
  o.telemetry.metrics_listen = "127.0.0.1:0";
  o.warm_up = false;  // so every count below comes from the workload
  o.limits.max_tokens_limit = 10000000;
  return o;
}

TEST(MetricsTest, ScrapeMatchesAKnownWorkloadExactly) {
  TestServer t(WithMetrics());
  ASSERT_GT(t.server->metrics_port(), 0);

  // 10 greedy generations of 1..10 tokens from 3-token prompts.
  for (int n = 1; n <= 10; ++n) {
    v1::GenerateRequest r = Request("ABC", n);
    r.set_temperature(0.0f);
    auto g = t.client->GenerateText(r);
    ASSERT_TRUE(g.ok()) << g.status();
    ASSERT_EQ(g->last.usage().generated_tokens(), n);
  }
  // 2 invalid requests: an unknown model and max_tokens 0.
  v1::GenerateRequest unknown = Request("ABC", 5);
  unknown.set_model("no-such-model");
  EXPECT_EQ(t.client->GenerateText(unknown).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(t.client->GenerateText(Request("ABC", 0)).status().code(),
            absl::StatusCode::kInvalidArgument);
  // One Score of 4 tokens.
  v1::ScoreRequest score;
  score.set_model(kModel);
  score.set_context("AB");
  score.set_text("CD");
  ASSERT_TRUE(t.client->Score(score).ok());
  // Two ListModels (no model label).
  ASSERT_TRUE(t.client->ListModels().ok());
  ASSERT_TRUE(t.client->ListModels().ok());

  Metrics m(t.server->metrics_port());
  EXPECT_EQ(m(Requests("", "ListModels", "OK")), 2);
  EXPECT_EQ(m(Requests("tiny", "Generate", "OK")), 10);
  EXPECT_EQ(m(Requests("tiny", "Generate", "INVALID_ARGUMENT")), 1);
  EXPECT_EQ(m(Requests("", "Generate", "NOT_FOUND")), 1);
  EXPECT_EQ(m(Requests("tiny", "Score", "OK")), 1);
  EXPECT_EQ(m(Requests("tiny", "Generate", "CANCELLED")), 0);  // pre-created
  EXPECT_EQ(m(Requests("tiny", "Embed", "UNAVAILABLE")), 0);
  EXPECT_EQ(m(Tiny("lstmserve_prompt_tokens_total")), 30);
  EXPECT_EQ(m(Tiny("lstmserve_generated_tokens_total")), 55);
  EXPECT_EQ(m("lstmserve_generations_finished_total{finish_reason=\"length\",model=\"tiny\"}"), 10);
  EXPECT_EQ(m("lstmserve_request_duration_seconds_count{model=\"tiny\",rpc=\"Generate\",version=\"1\"}"),
            11);
  EXPECT_EQ(m("lstmserve_request_duration_seconds_count{model=\"\",rpc=\"Generate\",version=\"\"}"),
            1);
  EXPECT_EQ(m(Tiny("lstmserve_time_to_first_token_seconds_count")), 10);
  EXPECT_EQ(m(Tiny("lstmserve_queue_wait_seconds_count")), 10);
  EXPECT_EQ(m(Tiny("lstmserve_inter_token_latency_seconds_count")), 55 - 10);
  EXPECT_EQ(m(Tiny("lstmserve_prompt_length_tokens_count")), 10);
  EXPECT_EQ(m(Tiny("lstmserve_prompt_length_tokens_sum")), 30);
  EXPECT_EQ(m(Tiny("lstmserve_generated_length_tokens_count")), 10);
  EXPECT_EQ(m(Tiny("lstmserve_generated_length_tokens_sum")), 55);
  // Sequential requests: each token after the first is one Step of batch 1.
  EXPECT_EQ(m(Tiny("lstmserve_engine_step_duration_seconds_count")), 45);
  EXPECT_EQ(m(Tiny("lstmserve_batch_size_count")), 45);
  EXPECT_EQ(m(Tiny("lstmserve_batch_size_sum")), 45);
  EXPECT_EQ(m(Tiny("lstmserve_prefill_duration_seconds_count")), 11);  // 10 + the Score
  // Cumulative buckets: lengths 1, 2, 3 and 4 are <= 4.
  EXPECT_EQ(m("lstmserve_generated_length_tokens_bucket{model=\"tiny\",le=\"4\"}"), 4);
  EXPECT_EQ(m("lstmserve_generated_length_tokens_bucket{model=\"tiny\",le=\"+Inf\"}"), 10);
  EXPECT_EQ(m(Tiny("lstmserve_cancellations_total")), 0);
  EXPECT_EQ(m(Tiny("lstmserve_active_sequences")), 0);
  EXPECT_EQ(m(Tiny("lstmserve_queued_requests")), 0);
  EXPECT_EQ(m(Tiny("lstmserve_queue_capacity")), 256);
  EXPECT_EQ(m("lstmserve_model_info{engine=\"reference\",hidden_size=\"40\",layers=\"2\","
              "model=\"tiny\",precision=\"f32\",version=\"1\",vocab_size=\"37\"}"),
            1);
  EXPECT_GT(m("process_resident_memory_bytes"), 0);
  EXPECT_GT(m("process_start_time_seconds"), 0);
  EXPECT_GE(m("process_cpu_seconds_total"), 0);

  // One cancellation, after 3 messages of an endless stream.
  int messages = 0;
  absl::Status s = t.client->Generate(Request("ABC", 10000000),
                                      [&](const v1::GenerateResponse&) { return ++messages < 3; });
  EXPECT_EQ(s.code(), absl::StatusCode::kCancelled);
  m.WaitFor(Requests("tiny", "Generate", "CANCELLED"), 1);
  EXPECT_EQ(m(Requests("tiny", "Generate", "CANCELLED")), 1);
  EXPECT_EQ(m(Tiny("lstmserve_cancellations_total")), 1);
  EXPECT_EQ(m("lstmserve_generations_finished_total{finish_reason=\"cancelled\",model=\"tiny\"}"),
            1);
  EXPECT_EQ(m(Tiny("lstmserve_generated_length_tokens_count")), 11);
  EXPECT_EQ(m(Requests("tiny", "Generate", "OK")), 10);
  // Its tokens are counted as they are made, so the counter and the
  // per-generation lengths agree.
  EXPECT_EQ(m(Tiny("lstmserve_generated_tokens_total")),
            m(Tiny("lstmserve_generated_length_tokens_sum")));
  EXPECT_GE(m(Tiny("lstmserve_generated_tokens_total")), 55 + 3);
}

TEST(MetricsTest, DeadlinesAndFullQueuesAreCounted) {
  ServerOptions o = WithMetrics();
  o.scheduler.max_batch = 1;
  o.scheduler.max_queue = 1;
  TestServer t(o);
  CallOptions short_deadline;
  short_deadline.timeout = absl::Milliseconds(300);
  EXPECT_EQ(t.client->GenerateText(Request("AB", 10000000), short_deadline).status().code(),
            absl::StatusCode::kDeadlineExceeded);
  // The server ends it as DEADLINE_EXCEEDED when its own deadline check
  // comes first; when the client's expiry (an HTTP/2 cancel, which carries
  // no reason) reaches it first, as CANCELLED. Either way exactly once,
  // with the matching counter.
  Metrics m(t.server->metrics_port());
  m.WaitUntil([](const Metrics& m) {
    return m(Requests("tiny", "Generate", "DEADLINE_EXCEEDED")) +
               m(Requests("tiny", "Generate", "CANCELLED")) >=
           1;
  });
  const double expired = m(Requests("tiny", "Generate", "DEADLINE_EXCEEDED"));
  const double cancelled = m(Requests("tiny", "Generate", "CANCELLED"));
  EXPECT_EQ(expired + cancelled, 1);
  EXPECT_EQ(m(Tiny("lstmserve_deadline_expiries_total")), expired);
  EXPECT_EQ(m(Tiny("lstmserve_cancellations_total")), cancelled);
  EXPECT_EQ(m("lstmserve_generations_finished_total{finish_reason=\"deadline\",model=\"tiny\"}"),
            expired);

  // One stream holds the only slot, one waits in the queue, a third is refused.
  // The holder and the waiter get long deadlines so that a slow machine cannot
  // free the slot before the third request arrives; the holder is cancelled
  // (its callback returns false) once the refusal has been checked.
  CallOptions long_deadline;
  long_deadline.timeout = absl::Seconds(120);
  absl::Notification started;
  std::atomic<bool> release{false};
  std::thread holder([&] {
    t.client
        ->Generate(
            Request("AB", 10000000),
            [&](const v1::GenerateResponse&) {
              if (!started.HasBeenNotified()) started.Notify();
              return !release.load();
            },
            long_deadline)
        .IgnoreError();
  });
  started.WaitForNotification();
  std::thread waiter(
      [&] { t.client->GenerateText(Request("AB", 2), long_deadline).IgnoreError(); });
  m.WaitFor(Tiny("lstmserve_queued_requests"), 1);
  EXPECT_EQ(m(Tiny("lstmserve_queued_requests")), 1);
  EXPECT_EQ(t.client->GenerateText(Request("AB", 2)).status().code(),
            absl::StatusCode::kResourceExhausted);
  release.store(true);
  holder.join();
  waiter.join();
  m.Refresh();
  EXPECT_EQ(m(Tiny("lstmserve_queue_rejections_total")), 1);
  EXPECT_EQ(m(Requests("tiny", "Generate", "RESOURCE_EXHAUSTED")), 1);
}

TEST(MetricsTest, RecordingOffServesNoMetrics) {
  ServerOptions o = WithMetrics();
  o.telemetry.metrics = false;
  TestServer t(o);
  EXPECT_EQ(t.server->metrics_port(), 0);
  EXPECT_TRUE(t.client->GenerateText(Request("AB", 3)).ok());
}

TEST(RequestLogTest, WritesOneJsonLinePerRequest) {
  const std::string path =
      absl::StrCat(::testing::TempDir(), "/request_log_test.", getpid(), ".jsonl");
  std::remove(path.c_str());
  {
    ServerOptions o = TestOptions();
    o.telemetry.request_log = path;
    TestServer t(o);
    v1::GenerateRequest r = Request("ABC", 4);
    r.set_request_id("req-\"1\"");
    ASSERT_TRUE(t.client->GenerateText(r).ok());
    EXPECT_EQ(t.client->GenerateText(Request("ABC", 0)).status().code(),
              absl::StatusCode::kInvalidArgument);
  }  // the server's destructor writes what is queued
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_THAT(lines[0],
              ::testing::HasSubstr("\"level\":\"info\",\"request_id\":\"req-\\\"1\\\"\""));
  EXPECT_THAT(lines[0],
              ::testing::HasSubstr("\"model\":\"tiny\",\"model_version\":1,\"rpc\":\"Generate\",\"code\":\"OK\","
                                   "\"prompt_tokens\":3,\"generated_tokens\":4,"));
  EXPECT_THAT(lines[0], ::testing::HasSubstr("\"finish_reason\":\"length\""));
  EXPECT_THAT(lines[0], ::testing::HasSubstr("\"ttft_ms\":"));
  EXPECT_THAT(lines[0], ::testing::HasSubstr("\"peer\":\"ipv4:127.0.0.1:"));
  EXPECT_THAT(lines[1], ::testing::HasSubstr("\"level\":\"warning\""));
  EXPECT_THAT(lines[1], ::testing::HasSubstr("\"code\":\"INVALID_ARGUMENT\""));
  EXPECT_THAT(lines[1], ::testing::HasSubstr("\"message\":\"max_tokens"));
}

TEST(RequestLogTest, LevelFiltersAndEscapes) {
  RequestRecord r;
  r.code = absl::StatusCode::kInternal;
  r.rpc = "Score";
  r.message = "bad\nthing\x01";
  EXPECT_EQ(RequestLog::LevelOf(r.code), LogLevel::kError);
  EXPECT_EQ(RequestLog::LevelOf(absl::StatusCode::kNotFound), LogLevel::kWarning);
  EXPECT_THAT(RequestLog::Format(r), ::testing::HasSubstr("\"message\":\"bad\\nthing\\u0001\""));
  const std::string path =
      absl::StrCat(::testing::TempDir(), "/request_log_level.", getpid(), ".jsonl");
  std::remove(path.c_str());
  {
    auto log = RequestLog::Create(path, LogLevel::kWarning);
    ASSERT_TRUE(log.ok()) << log.status();
    RequestRecord ok;
    ok.code = absl::StatusCode::kOk;
    (*log)->OnRequestDone(ok);
    (*log)->OnRequestDone(r);
    (*log)->Flush();
  }
  std::ifstream in(path);
  std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(std::count(all.begin(), all.end(), '\n'), 1);
  EXPECT_THAT(all, ::testing::HasSubstr("\"code\":\"INTERNAL\""));
}

}  // namespace
}  // namespace lstmserve::testing
