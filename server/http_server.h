// HttpServer: the HTTP/1.1 transport of the HTTP/JSON front, on Boost.Beast
// and Boost.Asio (server/README.md says why). One io_context runs on a small
// fixed pool of threads (HttpOptions::threads); every connection is a chain
// of asynchronous accept/read/write operations on its own strand, so
// hundreds of Server-Sent-Event streams cost memory, not threads.
//
// Per connection: requests are read with a header limit (431), a body limit
// (413, checked against Content-Length before the body is read), and a read
// timeout (slow-loris); keep-alive; TLS when SecurityOptions has a
// certificate. What a request means is the Handler's business
// (server/http_routes.h): it gets the parsed request and an HttpExchange to
// answer on, from any thread, at any later time.
//
// While an exchange is open the connection also reads, so a client that
// disconnects is noticed at once (HttpExchange::client_gone) and the wake
// callback runs: a streaming generation ends within one scheduler step.
//
// Thread-safety: Start/StopAccepting/Stop/port are thread-safe. The Handler
// runs on the event-loop threads and must not block. HttpExchange methods
// are thread-safe.
#ifndef LSTMSERVE_SERVER_HTTP_SERVER_H_
#define LSTMSERVE_SERVER_HTTP_SERVER_H_

#include <atomic>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "server/options.h"

namespace lstmserve {

// One request as the handler sees it.
struct HttpRequest {
  std::string method;  // "GET", "POST", ...
  std::string target;  // path and query, e.g. "/v1/completions"
  std::string body;
  std::string authorization;  // the Authorization header
  bool has_authorization = false;
  std::string request_id;  // the X-Request-Id header ("" when absent)
  std::string peer;        // "http:127.0.0.1:5555"
};

// A whole response.
struct HttpReply {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
};

// The answer side of one request. Either Reply once, or StartStream, then
// StreamWrite any number of times, then EndStream once. Thread-safe; calls
// after the client is gone are dropped.
class HttpExchange {
 public:
  virtual ~HttpExchange() = default;
  // Echoed as the X-Request-Id response header; call before answering.
  virtual void SetRequestId(const std::string& id) = 0;
  virtual void Reply(HttpReply reply) = 0;
  // A 200 response with chunked body of `content_type`. `wake` (may be
  // empty) is called on an event-loop thread when the client is gone, and
  // when the unwritten tokens fall to `resume_threshold` or below from
  // above (a paused generation may resume).
  virtual void StartStream(const std::string& content_type, std::function<void()> wake,
                           int resume_threshold) = 0;
  // Queues `data` (carrying `tokens` generated tokens) for the client;
  // queued data is written in as few writes as possible.
  virtual void StreamWrite(std::string data, int tokens) = 0;
  virtual void EndStream() = 0;
  // True once the connection is closed, reset or timed out.
  virtual bool client_gone() const = 0;
  // Tokens queued by StreamWrite and not yet written.
  virtual int pending_tokens() const = 0;
};

class HttpServer {
 public:
  using Handler = std::function<void(HttpRequest, std::shared_ptr<HttpExchange>)>;

  // Listens on options.listen and starts the threads. TLS when security has
  // tls_cert_file/tls_key_file (mutual with tls_client_ca_file).
  // UNAVAILABLE naming the address when it cannot listen; INVALID_ARGUMENT
  // naming the file when a certificate or key cannot be loaded.
  static absl::StatusOr<std::unique_ptr<HttpServer>> Start(const HttpOptions& options,
                                                           const SecurityOptions& security,
                                                           Handler handler);
  // Stop(now).
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  int port() const { return port_; }
  // Closes the listener (new connections are refused); from now on every
  // response says Connection: close. Open exchanges go on.
  void StopAccepting();
  // Waits until no exchange is open or `deadline`, then closes every
  // connection and joins the threads. Idempotent.
  void Stop(absl::Time deadline);

  // Open connections and exchanges (requests read and not yet answered).
  int connections() const;
  int exchanges() const;

  struct State;  // shared with the connections (http_server.cc)

 private:
  HttpServer() = default;
  std::unique_ptr<State> state_;
  int port_ = 0;
};

}  // namespace lstmserve

#endif  // LSTMSERVE_SERVER_HTTP_SERVER_H_
