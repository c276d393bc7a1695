// The HTTP/JSON front over real HTTP on 127.0.0.1:0: every endpoint, the
// OpenAI shapes, SSE streaming, and every error as an OpenAI error object
// with the same message as gRPC.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <map>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/server/http_client.h"
#include "tests/server/test_server.h"

namespace lstmserve::testing {
namespace {

using json = nlohmann::json;
using ::testing::HasSubstr;
using ::testing::StartsWith;

// A request on a raw socket, read at the caller's pace.
class HttpStream {
 public:
  HttpStream(int port, const json& body) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    const std::string text = body.dump();
    const std::string request =
        absl::StrCat("POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: ",
                     text.size(), "\r\n\r\n", text);
    EXPECT_EQ(send(fd_, request.data(), request.size(), MSG_NOSIGNAL),
              static_cast<ssize_t>(request.size()));
  }
  ~HttpStream() { Close(); }
  int fd() const { return fd_; }
  void Close() {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }
  // Everything read so far once it contains `needle` (or the stream ended).
  std::string ReadUntil(const std::string& needle) {
    char buf[4096];
    while (!absl::StrContains(got_, needle)) {
      const ssize_t n = recv(fd_, buf, sizeof(buf), 0);
      if (n <= 0) break;
      got_.append(buf, static_cast<size_t>(n));
    }
    return got_;
  }

 private:
  int fd_ = -1;
  std::string got_;
};

ServerOptions HttpOptions() {
  ServerOptions o = TestOptions();
  o.http.listen = "127.0.0.1:0";
  return o;
}

struct HttpTestServer : TestServer {
  explicit HttpTestServer(ServerOptions options = HttpOptions()) : TestServer(options) {}
  int port() const { return server->http_port(); }
};

json Completion(const std::string& prompt, int max_tokens) {
  return {{"model", kModel}, {"prompt", prompt}, {"max_tokens", max_tokens}, {"temperature", 0}};
}

TEST(HttpApiTest, ModelsListsTheLoadedModel) {
  HttpTestServer t;
  HttpResult r = HttpGet(t.port(), "/v1/models");
  ASSERT_EQ(r.status, 200) << r.body;
  const json j = r.json();
  EXPECT_EQ(j["object"], "list");
  ASSERT_EQ(j["data"].size(), 1u);
  EXPECT_EQ(j["data"][0]["id"], kModel);
  EXPECT_EQ(j["data"][0]["object"], "model");
  EXPECT_EQ(j["data"][0]["hidden_size"], TinyShape().hidden_size);
}

TEST(HttpApiTest, CompletionGreedyEqualsGrpcAndReference) {
  HttpTestServer t;
  HttpResult r = HttpPost(t.port(), "/v1/completions", Completion("ABCDEFG", 80).dump(),
                          {{"X-Request-Id", "my-id-1"}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_THAT(r.content_type, StartsWith("application/json"));
  EXPECT_EQ(r.request_id, "my-id-1");
  const json j = r.json();
  EXPECT_EQ(j["id"], "cmpl-my-id-1");
  EXPECT_EQ(j["object"], "text_completion");
  EXPECT_EQ(j["model"], kModel);
  ASSERT_EQ(j["choices"].size(), 1u);
  const std::string text = j["choices"][0]["text"];
  EXPECT_EQ(j["choices"][0]["finish_reason"], "length");
  EXPECT_TRUE(j["choices"][0]["logprobs"].is_null());
  EXPECT_EQ(j["usage"]["prompt_tokens"], 7);
  EXPECT_EQ(j["usage"]["completion_tokens"], 80);
  EXPECT_EQ(j["usage"]["total_tokens"], 87);
  EXPECT_EQ(text, ReferenceGreedy(TinyShape(), "ABCDEFG", 80));
  auto grpc = t.client->GenerateText(GreedyRequest("ABCDEFG", 80));
  ASSERT_TRUE(grpc.ok()) << grpc.status();
  EXPECT_EQ(text, grpc->text);
}

TEST(HttpApiTest, StreamJoinedEqualsNonStreamedText) {
  HttpTestServer t;
  json request = Completion("BADCAFE", 150);
  const HttpResult whole = HttpPost(t.port(), "/v1/completions", request.dump());
  ASSERT_EQ(whole.status, 200) << whole.body;
  request["stream"] = true;
  request["stream_options"] = {{"include_usage", true}};
  const HttpResult streamed = HttpPost(t.port(), "/v1/completions", request.dump());
  ASSERT_EQ(streamed.status, 200) << streamed.body;
  EXPECT_EQ(streamed.content_type, "text/event-stream");
  const SseCompletion sse = JoinCompletion(streamed.body);
  EXPECT_TRUE(sse.done);
  EXPECT_GE(sse.events, 2);  // text streams in pieces, then the final event
  EXPECT_EQ(sse.text, whole.json()["choices"][0]["text"].get<std::string>());
  EXPECT_EQ(sse.last["object"], "text_completion");
  EXPECT_EQ(sse.last["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(sse.last["usage"]["completion_tokens"], 150);
  EXPECT_EQ(sse.text, ReferenceGreedy(TinyShape(), "BADCAFE", 150));
  // Without include_usage there is no usage.
  request.erase("stream_options");
  const SseCompletion plain =
      JoinCompletion(HttpPost(t.port(), "/v1/completions", request.dump()).body);
  EXPECT_EQ(plain.text, sse.text);
  EXPECT_FALSE(plain.last.contains("usage"));
  // stream_interval (an lstmserve extension): the same text in fewer events,
  // the first token still alone.
  request["stream_interval"] = 16;
  const SseCompletion gathered =
      JoinCompletion(HttpPost(t.port(), "/v1/completions", request.dump()).body);
  EXPECT_EQ(gathered.text, sse.text);
  EXPECT_LE(gathered.events, 1 + 10 + 1);  // 1 + ceil(149 / 16) + the final event
}

TEST(HttpApiTest, StopStringEndsWithFinishReasonStop) {
  HttpTestServer t;
  const std::string full = ReferenceGreedy(TinyShape(), "ABC", 60);
  const std::string stop = full.substr(20, 3);
  json request = Completion("ABC", 60);
  request["stop"] = stop;
  const json j = HttpPost(t.port(), "/v1/completions", request.dump()).json();
  EXPECT_EQ(j["choices"][0]["finish_reason"], "stop");
  EXPECT_EQ(j["choices"][0]["text"], full.substr(0, full.find(stop)));
  request["stop"] = json::array({"zzzz", stop});
  request["stream"] = true;
  const SseCompletion sse = JoinCompletion(HttpPost(t.port(), "/v1/completions", request.dump()).body);
  EXPECT_EQ(sse.text, full.substr(0, full.find(stop)));
  EXPECT_EQ(sse.last["choices"][0]["finish_reason"], "stop");
}

TEST(HttpApiTest, LogprobsGiveEachTokenAndAlternatives) {
  HttpTestServer t;
  json request = Completion("ABC", 12);
  request["logprobs"] = 3;
  const json j = HttpPost(t.port(), "/v1/completions", request.dump()).json();
  const json& lp = j["choices"][0]["logprobs"];
  ASSERT_EQ(lp["tokens"].size(), 12u);
  ASSERT_EQ(lp["token_logprobs"].size(), 12u);
  ASSERT_EQ(lp["top_logprobs"].size(), 12u);
  std::string joined;
  for (size_t i = 0; i < 12; ++i) {
    EXPECT_EQ(lp["text_offset"][i], joined.size());
    joined += lp["tokens"][i].get<std::string>();
    EXPECT_LE(lp["token_logprobs"][i].get<double>(), 0.0);
    EXPECT_EQ(lp["top_logprobs"][i].size(), 3u);
    // Greedy: the chosen token is the most likely alternative.
    double best = -1e30;
    for (auto& [token, logprob] : lp["top_logprobs"][i].items()) best = std::max(best, logprob.get<double>());
    EXPECT_FLOAT_EQ(lp["token_logprobs"][i].get<double>(), best);
  }
  EXPECT_EQ(joined, j["choices"][0]["text"]);
  // Streamed: the same tokens, split over the events.
  request["stream"] = true;
  std::string streamed_tokens;
  for (const std::string& data :
       SseData(HttpPost(t.port(), "/v1/completions", request.dump()).body)) {
    if (data == "[DONE]") continue;
    const json chunk = json::parse(data);
    if (chunk["choices"][0]["logprobs"].is_null()) continue;
    for (const auto& token : chunk["choices"][0]["logprobs"]["tokens"]) streamed_tokens += token;
  }
  EXPECT_EQ(streamed_tokens, joined);
}

TEST(HttpApiTest, EmbeddingsEqualGrpcEmbed) {
  HttpTestServer t;
  const json request = {{"model", kModel}, {"input", "ABCABC"}};
  HttpResult r = HttpPost(t.port(), "/v1/embeddings", request.dump());
  ASSERT_EQ(r.status, 200) << r.body;
  const json j = r.json();
  EXPECT_EQ(j["object"], "list");
  EXPECT_EQ(j["data"][0]["object"], "embedding");
  EXPECT_EQ(j["usage"]["prompt_tokens"], 6);
  v1::EmbedRequest grpc_request;
  grpc_request.set_model(kModel);
  grpc_request.set_text("ABCABC");
  auto grpc = t.client->Embed(grpc_request);
  ASSERT_TRUE(grpc.ok()) << grpc.status();
  const json& embedding = j["data"][0]["embedding"];
  ASSERT_EQ(embedding.size(), static_cast<size_t>(grpc->embedding_size()));
  for (int i = 0; i < grpc->embedding_size(); ++i) {
    EXPECT_FLOAT_EQ(embedding[i].get<float>(), grpc->embedding(i));
  }
  // base64: the float32 bytes, little-endian.
  const json b64 = {{"model", kModel}, {"input", "ABCABC"}, {"encoding_format", "base64"}};
  std::string bytes;
  ASSERT_TRUE(absl::Base64Unescape(
      HttpPost(t.port(), "/v1/embeddings", b64.dump()).json()["data"][0]["embedding"].get<std::string>(),
      &bytes));
  ASSERT_EQ(bytes.size(), 4u * grpc->embedding_size());
  for (int i = 0; i < grpc->embedding_size(); ++i) {
    float v;
    std::memcpy(&v, bytes.data() + 4 * i, 4);
    EXPECT_EQ(v, grpc->embedding(i));
  }
  // A list of one string is the same input.
  const json listed = {{"model", kModel}, {"input", json::array({"ABCABC"})}};
  EXPECT_EQ(HttpPost(t.port(), "/v1/embeddings", listed.dump()).json()["data"], j["data"]);
}

TEST(HttpApiTest, ScoreEqualsGrpcScore) {
  HttpTestServer t;
  const json request = {{"model", kModel}, {"text", "DEF"}, {"context", "ABC"}};
  HttpResult r = HttpPost(t.port(), "/v1/score", request.dump());
  ASSERT_EQ(r.status, 200) << r.body;
  const json j = r.json();
  v1::ScoreRequest grpc_request;
  grpc_request.set_model(kModel);
  grpc_request.set_text("DEF");
  grpc_request.set_context("ABC");
  auto grpc = t.client->Score(grpc_request);
  ASSERT_TRUE(grpc.ok()) << grpc.status();
  EXPECT_EQ(j["scored_tokens"], grpc->scored_tokens());
  ASSERT_EQ(j["token_logprobs"].size(), 3u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_FLOAT_EQ(j["token_logprobs"][i].get<float>(), grpc->token_logprobs(i));
  }
  EXPECT_NEAR(j["total_logprob"].get<double>(), grpc->total_logprob(), 1e-9);
}

TEST(HttpApiTest, PlaygroundPageIsServed) {
  HttpTestServer t;
  HttpResult r = HttpGet(t.port(), "/");
  ASSERT_EQ(r.status, 200);
  EXPECT_THAT(r.content_type, StartsWith("text/html"));
  EXPECT_THAT(r.body, HasSubstr("<title>"));
  EXPECT_EQ(HttpGet(t.port(), "/health/ready").status, 200);
  EXPECT_EQ(HttpGet(t.port(), "/health/live").status, 200);
}

TEST(HttpApiTest, KeepAliveServesSeveralRequestsOnOneConnection) {
  HttpTestServer t;
  HttpConnection c(t.port());
  for (int i = 0; i < 3; ++i) {
    json request = Completion("AB", 5);
    request["stream"] = (i % 2 == 1);
    HttpResult r = c.Send("POST", "/v1/completions", request.dump());
    ASSERT_EQ(r.status, 200) << i;
    EXPECT_TRUE(r.keep_alive);
  }
  EXPECT_EQ(c.Send("GET", "/v1/models", "").status, 200);
}

// One bad request: its HTTP status, and the error object.
struct BadCase {
  const char* name;
  std::string body;
  int status;
  const char* param;  // nullptr: "param" is null
  const char* message_start;
};

TEST(HttpApiTest, BadInputsAreOpenAiErrorsNamingTheField) {
  HttpTestServer t;
  auto with = [](const char* key, json value) {
    json j = Completion("ABC", 5);
    j[key] = std::move(value);
    return j.dump();
  };
  auto without = [](const char* key) {
    json j = Completion("ABC", 5);
    j.erase(key);
    return j.dump();
  };
  const BadCase cases[] = {
      {"malformed", "{\"model\": ", 400, nullptr, "the request body is not valid JSON"},
      {"not an object", "[1,2]", 400, nullptr, "the request body must be a JSON object, got a list"},
      {"deep", std::string(100, '[') + std::string(100, ']'), 400, nullptr,
       "the request body is not valid JSON: arrays and objects nest deeper"},
      {"model missing", without("model"), 400, "model", "model is missing"},
      {"model type", with("model", 5), 400, "model", "model must be a string, got a number"},
      {"prompt missing", without("prompt"), 400, "prompt", "prompt is missing"},
      {"prompt type", with("prompt", json::object()), 400, "prompt", "prompt must be a string"},
      {"prompt list", with("prompt", json::array({"a", "b"})), 400, "prompt", "prompt is a list of 2"},
      {"prompt empty", with("prompt", ""), 400, "prompt", "prompt is empty"},
      {"max_tokens type", with("max_tokens", "ten"), 400, "max_tokens",
       "max_tokens must be an integer, got a string"},
      {"max_tokens float", with("max_tokens", 2.5), 400, "max_tokens",
       "max_tokens must be an integer, got a non-integer number"},
      {"max_tokens huge", with("max_tokens", 1LL << 40), 400, "max_tokens",
       "max_tokens is 1099511627776; it must fit in 32 bits"},
      {"max_tokens zero", with("max_tokens", 0), 400, "max_tokens",
       "max_tokens is 0; it must be in [1, 4096]"},
      {"temperature", with("temperature", -1), 400, "temperature", "temperature is -1"},
      {"temperature type", with("temperature", "hot"), 400, "temperature",
       "temperature must be a number, got a string"},
      {"top_p", with("top_p", 2), 400, "top_p", "top_p is 2; it must be in (0, 1]"},
      {"top_k", with("top_k", -3), 400, "top_k", "top_k is -3; it must be >= 0"},
      {"seed", with("seed", -1), 400, "seed", "seed is -1; it must be >= 0"},
      {"stop type", with("stop", 7), 400, "stop", "stop must be a string or a list of strings"},
      {"stop entry", with("stop", json::array({"a", 1})), 400, "stop[1]", "stop[1] must be a string"},
      {"stop empty", with("stop", json::array({""})), 400, "stop[0]", "stop[0] is empty"},
      {"stop many", with("stop", std::vector<std::string>(9, "x")), 400, "stop",
       "stop has 9 entries; the limit is 8"},
      {"logprobs", with("logprobs", 99), 400, "logprobs", "logprobs is 99; it must be in [0, 20]"},
      {"logprobs type", with("logprobs", true), 400, "logprobs", "logprobs must be an integer"},
      {"stream type", with("stream", "yes"), 400, "stream", "stream must be a boolean"},
      {"stream_interval", with("stream_interval", -2), 400, "stream_interval",
       "stream_interval is -2; it must be in [0, "},
      {"stream_options type", with("stream_options", {{"include_usage", 1}}), 400,
       "stream_options.include_usage", "stream_options.include_usage must be a boolean"},
      {"echo", with("echo", true), 400, "echo", "echo is true; only false is supported"},
      {"n", with("n", 2), 400, "n", "n is 2; only 1 is supported"},
      {"penalty", with("presence_penalty", 0.5), 400, "presence_penalty",
       "presence_penalty is 0.5; only 0 is supported"},
      {"prompt out of vocabulary", with("prompt", "xyz~"), 400, "prompt", "prompt"},
      {"unknown model", with("model", "nope"), 404, nullptr, "model 'nope'"},
  };
  for (const BadCase& c : cases) {
    SCOPED_TRACE(c.name);
    HttpResult r = HttpPost(t.port(), "/v1/completions", c.body);
    EXPECT_EQ(r.status, c.status) << r.body;
    const json j = r.json();
    ASSERT_TRUE(j.contains("error")) << r.body;
    const json& e = j["error"];
    EXPECT_THAT(e["message"].get<std::string>(), StartsWith(c.message_start));
    if (c.param == nullptr) {
      EXPECT_TRUE(e["param"].is_null()) << e;
    } else {
      EXPECT_EQ(e["param"], c.param);
    }
    EXPECT_EQ(e["type"], c.status == 404 ? "invalid_request_error" : "invalid_request_error");
    EXPECT_TRUE(e["code"].is_string());
  }
}

TEST(HttpApiTest, ValidationMessagesAreTheGrpcOnes) {
  HttpTestServer t;
  struct Case {
    json http;
    v1::GenerateRequest grpc;
  };
  std::vector<Case> cases;
  auto add = [&](const char* key, json value, auto set) {
    json j = Completion("ABC", 5);
    j[key] = value;
    v1::GenerateRequest g = GreedyRequest("ABC", 5);
    set(g);
    cases.push_back({j, g});
  };
  add("max_tokens", 99999, [](v1::GenerateRequest& g) { g.set_max_tokens(99999); });
  add("temperature", -0.5, [](v1::GenerateRequest& g) { g.set_temperature(-0.5f); });
  add("top_p", 0, [](v1::GenerateRequest& g) { g.set_top_p(0.0f); });
  add("logprobs", 21, [](v1::GenerateRequest& g) { g.set_logprobs(21); });
  add("stop", json::array({std::string(65, 's')}), [](v1::GenerateRequest& g) { g.add_stop(std::string(65, 's')); });
  add("prompt", std::string(5000, 'A'), [](v1::GenerateRequest& g) { g.set_prompt(std::string(5000, 'A')); });
  add("model", "other", [](v1::GenerateRequest& g) { g.set_model("other"); });
  for (const Case& c : cases) {
    SCOPED_TRACE(c.http.dump().substr(0, 200));
    const json e = HttpPost(t.port(), "/v1/completions", c.http.dump()).json()["error"];
    auto g = t.client->GenerateText(c.grpc);
    ASSERT_FALSE(g.ok());
    EXPECT_EQ(e["message"], std::string(g.status().message()));
    EXPECT_EQ(e["code"], absl::AsciiStrToLower(absl::StatusCodeToString(g.status().code())));
  }
}

TEST(HttpApiTest, EmbeddingAndScoreErrorsNameTheField) {
  HttpTestServer t;
  struct Case {
    const char* target;
    json body;
    const char* param;
  };
  const Case cases[] = {
      {"/v1/embeddings", {{"model", kModel}}, "input"},
      {"/v1/embeddings", {{"model", kModel}, {"input", 3}}, "input"},
      {"/v1/embeddings", {{"model", kModel}, {"input", ""}}, "input"},
      {"/v1/embeddings", {{"model", kModel}, {"input", "AB"}, {"encoding_format", "int8"}},
       "encoding_format"},
      {"/v1/score", {{"model", kModel}}, "text"},
      {"/v1/score", {{"model", kModel}, {"text", "AB"}, {"context", 1}}, "context"},
      {"/v1/score", {{"model", kModel}, {"text", ""}}, "text"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.body.dump());
    HttpResult r = HttpPost(t.port(), c.target, c.body.dump());
    EXPECT_EQ(r.status, 400);
    EXPECT_EQ(r.json()["error"]["param"], c.param) << r.body;
  }
}

TEST(HttpApiTest, ModelVersionPinsAVersionAsOverGrpc) {
  HttpTestServer t;
  // Absent or 0: the serving version, named in every answer.
  HttpResult r = HttpPost(t.port(), "/v1/completions", Completion("AB", 3).dump());
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json()["model_version"], 1);
  struct Case {
    const char* target;
    json body;
  };
  const Case routes[] = {
      {"/v1/completions", Completion("AB", 3)},
      {"/v1/embeddings", {{"model", kModel}, {"input", "AB"}}},
      {"/v1/score", {{"model", kModel}, {"text", "AB"}}},
  };
  for (const Case& c : routes) {
    SCOPED_TRACE(c.target);
    json pinned = c.body;
    pinned["model_version"] = 1;
    r = HttpPost(t.port(), c.target, pinned.dump());
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.json()["model_version"], 1);

    pinned["model_version"] = 7;
    r = HttpPost(t.port(), c.target, pinned.dump());
    EXPECT_EQ(r.status, 404) << r.body;
    EXPECT_EQ(r.json()["error"]["message"],
              absl::StrCat("model_version 7 of model '", kModel,
                           "' is not loaded; loaded versions: 1"));

    pinned["model_version"] = -1;
    r = HttpPost(t.port(), c.target, pinned.dump());
    EXPECT_EQ(r.status, 400) << r.body;
    EXPECT_EQ(r.json()["error"]["param"], "model_version") << r.body;
    EXPECT_THAT(r.json()["error"]["message"].get<std::string>(),
                HasSubstr("model_version is -1; it must be >= 0"));

    pinned["model_version"] = "1";
    r = HttpPost(t.port(), c.target, pinned.dump());
    EXPECT_EQ(r.status, 400) << r.body;
    EXPECT_EQ(r.json()["error"]["param"], "model_version") << r.body;
  }
}

TEST(HttpApiTest, UnknownRouteIs404AndWrongMethodIs405) {
  HttpTestServer t;
  HttpResult r = HttpGet(t.port(), "/v2/nothing");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.json()["error"]["message"], "no route for GET /v2/nothing");
  EXPECT_EQ(HttpGet(t.port(), "/v1/completions").status, 405);
  EXPECT_EQ(HttpPost(t.port(), "/v1/models", "{}").status, 405);
}

TEST(HttpApiTest, RequestIdOverTheLimitIs400) {
  HttpTestServer t;
  HttpResult r = HttpPost(t.port(), "/v1/completions", Completion("AB", 2).dump(),
                          {{"X-Request-Id", std::string(300, 'r')}});
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.json()["error"]["message"], "X-Request-Id header is 300 bytes; the limit is 256");
  // Without one, the server assigns one and echoes it.
  HttpResult ok = HttpPost(t.port(), "/v1/completions", Completion("AB", 2).dump());
  EXPECT_FALSE(ok.request_id.empty());
  EXPECT_EQ(ok.json()["id"], "cmpl-" + ok.request_id);
}

TEST(HttpApiTest, BodyOverTheLimitIs413) {
  ServerOptions o = HttpOptions();
  o.http.max_body_bytes = 1000;
  HttpTestServer t(o);
  HttpResult r = HttpPost(t.port(), "/v1/completions",
                          Completion(std::string(2000, 'A'), 2).dump());
  EXPECT_EQ(r.status, 413) << r.body;
  EXPECT_THAT(r.json()["error"]["message"].get<std::string>(),
              HasSubstr("over the limit of 1000 bytes"));
  EXPECT_EQ(HttpPost(t.port(), "/v1/completions", Completion("AB", 2).dump()).status, 200);
}

TEST(HttpApiTest, FullQueueIs429) {
  ServerOptions o = HttpOptions();
  o.scheduler.max_batch = 1;
  o.scheduler.max_queue = 1;
  o.limits.max_tokens_limit = 100000000;
  HttpTestServer t(o);
  // A holds the only slot.
  HttpStream a(t.port(), json{{"model", kModel}, {"prompt", "AB"}, {"max_tokens", 100000000},
                              {"stream", true}});
  ASSERT_THAT(a.ReadUntil("data: "), HasSubstr("data: "));
  // B and C race for the one queue place: one waits, the other is refused.
  HttpStream b(t.port(), json{{"model", kModel}, {"prompt", "AB"}, {"max_tokens", 2}});
  HttpStream c(t.port(), json{{"model", kModel}, {"prompt", "AB"}, {"max_tokens", 2},
                              {"stream", true}});
  HttpStream* refused = nullptr;
  while (refused == nullptr) {
    pollfd fds[] = {{b.fd(), POLLIN, 0}, {c.fd(), POLLIN, 0}};
    ASSERT_GT(poll(fds, 2, 60000), 0);
    refused = fds[0].revents != 0 ? &b : &c;
  }
  const std::string answer = refused->ReadUntil("}}");
  EXPECT_THAT(answer, StartsWith("HTTP/1.1 429"));
  EXPECT_THAT(answer, HasSubstr("\"type\":\"rate_limit_error\""));
  EXPECT_THAT(answer, HasSubstr("--max-queue"));
  // A's disconnect lets the waiting one through.
  a.Close();
  HttpStream* waiting = refused == &b ? &c : &b;
  EXPECT_THAT(waiting->ReadUntil("HTTP/1.1 200"), StartsWith("HTTP/1.1 200"));
}

TEST(HttpApiTest, BearerTokenIsRequiredWhenConfigured) {
  const std::string path = ::testing::TempDir() + "/http_tokens";
  {
    std::ofstream f(path);
    f << "secret-token\n";
  }
  ServerOptions o = HttpOptions();
  o.security.auth_token_file = path;
  std::vector<NamedEngine> engines;
  engines.push_back({kModel, ReferenceEngine(TinyShape())});
  auto server = LanguageModelServer::Start(o, std::move(engines));
  ASSERT_TRUE(server.ok()) << server.status();
  const int port = (*server)->http_port();
  const std::string body = Completion("AB", 2).dump();
  HttpResult missing = HttpPost(port, "/v1/completions", body);
  EXPECT_EQ(missing.status, 401);
  EXPECT_EQ(missing.json()["error"]["type"], "authentication_error");
  EXPECT_EQ(HttpPost(port, "/v1/completions", body, {{"Authorization", "Bearer wrong"}}).status,
            401);
  EXPECT_EQ(HttpGet(port, "/v1/models").status, 401);
  EXPECT_EQ(HttpPost(port, "/v1/completions", body, {{"Authorization", "Bearer secret-token"}})
                .status,
            200);
  // The page and health stay open (probes cannot send a token).
  EXPECT_EQ(HttpGet(port, "/").status, 200);
  EXPECT_EQ(HttpGet(port, "/health/ready").status, 200);
}

}  // namespace
}  // namespace lstmserve::testing
