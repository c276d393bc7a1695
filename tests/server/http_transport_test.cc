// The HTTP front's transport under stress, over real sockets: a client that
// disconnects frees its batch slot, and stops its Score's prefill; 256 concurrent SSE streams complete on
// the front's fixed thread pool; garbage and slow-loris connections do not
// hurt gRPC clients; the drain answers 503 and lets open streams finish.
#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/server/controllable_engine.h"
#include "tests/server/http_client.h"
#include "tests/server/test_server.h"

namespace lstmserve::testing {
namespace {

using json = nlohmann::json;

ServerOptions HttpOptions() {
  ServerOptions o = TestOptions();
  o.http.listen = "127.0.0.1:0";
  return o;
}

// A blocking loopback socket; -1 on failure.
int Connect(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

bool SendAll(int fd, const std::string& data) {
  size_t sent = 0;
  while (sent < data.size()) {
    const ssize_t n = send(fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) return false;
    sent += static_cast<size_t>(n);
  }
  return true;
}

std::string PostText(const std::string& target, const std::string& body) {
  return absl::StrCat("POST ", target, " HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n",
                      "Content-Length: ", body.size(), "\r\n\r\n", body);
}

// Reads until `needle` arrived or the connection ended; everything read.
std::string ReadUntil(int fd, const std::string& needle) {
  std::string got;
  char buf[4096];
  while (!absl::StrContains(got, needle)) {
    const ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) break;
    got.append(buf, static_cast<size_t>(n));
  }
  return got;
}

int ThreadCount() {
  int n = 0;
  DIR* dir = opendir("/proc/self/task");
  while (dirent* e = readdir(dir)) n += e->d_name[0] != '.';
  closedir(dir);
  return n;
}

json Stream(const std::string& prompt, int max_tokens) {
  return {{"model", kModel}, {"prompt", prompt}, {"max_tokens", max_tokens},
          {"temperature", 0}, {"stream", true}};
}

TEST(HttpTransportTest, ClientDisconnectFreesTheSlot) {
  ServerOptions o = HttpOptions();
  o.scheduler.max_batch = 1;  // one slot: a leaked stream would block the next request
  o.limits.max_tokens_limit = 100000000;
  TestServer t(o);
  const int fd = Connect(t.server->http_port());
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(SendAll(fd, PostText("/v1/completions", Stream("AB", 100000000).dump())));
  ASSERT_THAT(ReadUntil(fd, "data: "), ::testing::HasSubstr("data: "));
  close(fd);
  // Served only once the disconnected stream gave its slot back (otherwise
  // it would wait for 10^8 tokens and hit its deadline).
  CallOptions call;
  call.timeout = absl::Seconds(120);
  auto g = t.client->GenerateText(GreedyRequest("ABC", 20), call);
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_EQ(g->text, ReferenceGreedy(TinyShape(), "ABC", 20));
  // The HTTP front noticed too: the stream counts as cancelled.
  HttpResult r = HttpPost(t.server->http_port(), "/v1/completions",
                          json{{"model", kModel}, {"prompt", "ABC"}, {"max_tokens", 20},
                               {"temperature", 0}}.dump());
  EXPECT_EQ(r.json()["choices"][0]["text"], g->text);
}

TEST(HttpTransportTest, ClientDisconnectStopsAScoresPrefill) {
  ServerOptions o = HttpOptions();
  o.scheduler.prefill_chunk_tokens = 16;
  o.scheduler.prefix_cache_bytes = 0;
  ControlledServer t(o);
  std::string text;
  while (text.size() < 4000) text += "HELLOWORLD";  // 250 chunks
  const int64_t warm_up = t.controls->PrefillTokens();
  t.controls->GatePrefills(0);
  const int fd = Connect(t.server->http_port());
  ASSERT_GE(fd, 0);
  ASSERT_TRUE(SendAll(fd, PostText("/v1/score", json{{"model", kModel}, {"text", text}}.dump())));
  t.controls->AwaitPrefillAtGate();  // its first chunk
  close(fd);
  // One chunk at a time until the Score is gone (it would take all 250
  // were the disconnection not seen).
  ModelScheduler* scheduler = ValueOrDie(t.server->registry()->Find(kModel), "Find")->scheduler();
  do {
    t.controls->AllowPrefill();
  } while (!scheduler->WaitUntilIdle(absl::Now() + absl::Milliseconds(20)));
  t.controls->GatePrefills(-1);
  EXPECT_LT(t.controls->PrefillTokens() - warm_up, static_cast<int64_t>(text.size()));
  // The server goes on.
  HttpResult r = HttpPost(t.server->http_port(), "/v1/score",
                          json{{"model", kModel}, {"text", "HELLOWORLD"}}.dump());
  EXPECT_EQ(r.status, 200) << r.body;
}

TEST(HttpTransportTest, TwoHundredFiftySixConcurrentStreamsComplete) {
  TestServer t(HttpOptions());
  const int port = t.server->http_port();
  constexpr int kStreams = 256;
  constexpr int kTokens = 24;
  std::vector<std::string> prompts(kStreams);
  std::vector<std::string> expected(kStreams);
  for (int i = 0; i < kStreams; ++i) {
    prompts[i] = std::string(1, static_cast<char>('A' + i % 37)) +
                 std::string(1, static_cast<char>('A' + (i / 37) % 37));
  }
  const int threads_before = ThreadCount();
  std::vector<int> fds(kStreams);
  std::vector<std::string> got(kStreams);
  for (int i = 0; i < kStreams; ++i) {
    fds[i] = Connect(port);
    ASSERT_GE(fds[i], 0) << i;
    ASSERT_TRUE(SendAll(fds[i], PostText("/v1/completions", Stream(prompts[i], kTokens).dump())));
  }
  // One thread reads every stream (poll), so the thread count below is the
  // server's.
  int open = kStreams, max_threads = 0;
  std::vector<bool> done(kStreams, false);
  while (open > 0) {
    std::vector<pollfd> polls;
    std::vector<int> index;
    for (int i = 0; i < kStreams; ++i) {
      if (done[i]) continue;
      polls.push_back({fds[i], POLLIN, 0});
      index.push_back(i);
    }
    ASSERT_GT(poll(polls.data(), polls.size(), 60000), 0) << "no progress for 60 s";
    max_threads = std::max(max_threads, ThreadCount());
    for (size_t k = 0; k < polls.size(); ++k) {
      if (polls[k].revents == 0) continue;
      const int i = index[k];
      char buf[8192];
      const ssize_t n = recv(fds[i], buf, sizeof(buf), 0);
      if (n > 0) got[i].append(buf, static_cast<size_t>(n));
      // The last chunk of the chunked body ends the response.
      if (n <= 0 || absl::StrContains(got[i], "data: [DONE]\n\n\r\n0\r\n\r\n")) {
        done[i] = true;
        --open;
      }
    }
  }
  for (int fd : fds) close(fd);
  // No thread per connection: the server's threads grew by far less than 256.
  EXPECT_LT(max_threads - threads_before, 16) << "threads before " << threads_before
                                              << ", at most " << max_threads;
  for (int i = 0; i < kStreams; ++i) {
    SCOPED_TRACE(i);
    const size_t body = got[i].find("\r\n\r\n");
    ASSERT_NE(body, std::string::npos);
    EXPECT_THAT(got[i], ::testing::StartsWith("HTTP/1.1 200"));
    // De-chunk.
    std::string stream;
    size_t pos = body + 4;
    while (pos < got[i].size()) {
      const size_t eol = got[i].find("\r\n", pos);
      const size_t size = std::stoul(got[i].substr(pos, eol - pos), nullptr, 16);
      if (size == 0) break;
      stream += got[i].substr(eol + 2, size);
      pos = eol + 2 + size + 2;
    }
    const SseCompletion sse = JoinCompletion(stream);
    EXPECT_TRUE(sse.done);
    if (expected[i].empty()) expected[i] = ReferenceGreedy(TinyShape(), prompts[i], kTokens);
    EXPECT_EQ(sse.text, expected[i]);
  }
}

TEST(HttpTransportTest, GarbageAndSlowLorisDoNotHurtGrpc) {
  ServerOptions o = HttpOptions();
  o.http.read_timeout = absl::Seconds(2);
  TestServer t(o);
  const int port = t.server->http_port();
  // Slow-loris: headers that never end.
  std::vector<int> loris;
  for (int i = 0; i < 64; ++i) {
    const int fd = Connect(port);
    ASSERT_GE(fd, 0);
    ASSERT_TRUE(SendAll(fd, "POST /v1/completions HTTP/1.1\r\nHost: x\r\nX-Slow: "));
    loris.push_back(fd);
  }
  // Garbage: answered 400 and closed.
  for (int i = 0; i < 16; ++i) {
    const int fd = Connect(port);
    ASSERT_GE(fd, 0);
    std::string junk(300, '\0');
    for (size_t k = 0; k < junk.size(); ++k) junk[k] = static_cast<char>((k * 131 + i) % 256);
    SendAll(fd, junk + "\r\n\r\n");
    const std::string answer = ReadUntil(fd, "\r\n\r\n");
    EXPECT_THAT(answer, ::testing::StartsWith("HTTP/1.1 400")) << i;
    close(fd);
  }
  // Headers over the limit: 431.
  {
    const int fd = Connect(port);
    SendAll(fd, "GET / HTTP/1.1\r\nX-Big: " + std::string(20000, 'b') + "\r\n\r\n");
    EXPECT_THAT(ReadUntil(fd, "\r\n\r\n"), ::testing::StartsWith("HTTP/1.1 431"));
    close(fd);
  }
  // gRPC and HTTP clients are served meanwhile.
  auto g = t.client->GenerateText(GreedyRequest("ABC", 30));
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_EQ(g->text, ReferenceGreedy(TinyShape(), "ABC", 30));
  EXPECT_EQ(HttpGet(port, "/v1/models").status, 200);
  // The slow connections are closed after the read timeout.
  for (int fd : loris) {
    char c;
    EXPECT_LE(recv(fd, &c, 1, 0), 0);
    close(fd);
  }
}

TEST(HttpTransportTest, DrainAnswers503AndOpenStreamsFinish) {
  ControlledServer t(HttpOptions());
  const int port = t.server->http_port();
  // Two idle keep-alive connections, both promised keep-alive before the
  // drain: `probe` asks until the drain shows, `idle` only afterwards.
  HttpConnection probe(port);
  HttpConnection idle(port);
  ASSERT_EQ(probe.Send("GET", "/v1/models", "").status, 200);
  HttpResult first = idle.Send("GET", "/v1/models", "");
  ASSERT_EQ(first.status, 200);
  ASSERT_TRUE(first.keep_alive);
  // A stream in flight when the drain starts, held there (its steps wedged)
  // until the idle connection has had its answer, so the drain cannot end
  // (and close every connection) first. Its first token comes from the
  // prompt's Prefill, the rest from Steps.
  t.controls->Wedge();
  const int fd = Connect(port);
  ASSERT_TRUE(SendAll(fd, PostText("/v1/completions", Stream("ABC", 300).dump())));
  ASSERT_THAT(ReadUntil(fd, "data: "), ::testing::HasSubstr("data: "));
  t.controls->AwaitWedgedStep();
  std::thread drain([&] { t.server->Shutdown(absl::Seconds(60)); });
  // Until the drain shows: a 503, or a 200 that already says Connection:
  // close (answered as the drain began; then `probe` is rightly closed).
  HttpResult r;
  do {
    r = probe.Send("GET", "/v1/models", "");
  } while (r.status == 200 && r.keep_alive);
  EXPECT_TRUE(r.status == 503 || (r.status == 200 && !r.keep_alive)) << r.status;
  // The connection promised keep-alive before the drain stays usable during
  // it and is answered 503 (status 0 would mean it was closed under the
  // client).
  r = idle.Send("GET", "/v1/models", "");
  t.controls->Release();
  EXPECT_EQ(r.status, 503) << r.body;
  const nlohmann::json body = r.json();
  EXPECT_TRUE(body.is_object() && body.contains("error")) << r.body;
  if (body.is_object() && body.contains("error")) {
    EXPECT_EQ(body["error"].value("message", ""), "the server is shutting down");
  }
  // The stream finished normally.
  const std::string rest = ReadUntil(fd, "data: [DONE]");
  EXPECT_THAT(rest, ::testing::HasSubstr("\"finish_reason\":\"length\""));
  EXPECT_THAT(rest, ::testing::HasSubstr("data: [DONE]"));
  close(fd);
  drain.join();
}

}  // namespace
}  // namespace lstmserve::testing
