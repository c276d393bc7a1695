// Test helper: a blocking HTTP/1.1 client over plain sockets (Boost.Beast)
// for the HTTP front, and a parser of Server-Sent Events. Header-only.
#ifndef LSTMSERVE_TESTS_SERVER_HTTP_CLIENT_H_
#define LSTMSERVE_TESTS_SERVER_HTTP_CLIENT_H_

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "nlohmann/json.hpp"

namespace lstmserve::testing {

struct HttpResult {
  int status = 0;  // 0: no response (connection failed or closed)
  std::string body;
  std::string content_type;
  std::string request_id;  // X-Request-Id
  bool keep_alive = false;
  nlohmann::json json() const { return nlohmann::json::parse(body, nullptr, false); }
};

// One connection; requests on it reuse it (keep-alive).
class HttpConnection {
 public:
  explicit HttpConnection(int port) : socket_(ioc_) {
    boost::asio::ip::tcp::endpoint endpoint(boost::asio::ip::make_address("127.0.0.1"),
                                            static_cast<unsigned short>(port));
    socket_.connect(endpoint, error_);
  }
  bool connected() const { return !error_; }

  HttpResult Send(const std::string& method, const std::string& target, const std::string& body,
                  const std::map<std::string, std::string>& headers = {}) {
    namespace http = boost::beast::http;
    http::request<http::string_body> request(
        http::string_to_verb(method), target, 11);
    request.set(http::field::host, "127.0.0.1");
    for (const auto& [name, value] : headers) request.set(name, value);
    if (!body.empty() || method == "POST") {
      request.set(http::field::content_type, "application/json");
      request.body() = body;
      request.prepare_payload();
    }
    boost::beast::error_code ec;
    http::write(socket_, request, ec);
    HttpResult result;
    if (ec) return result;
    http::response_parser<http::string_body> parser;
    parser.body_limit(1 << 30);
    http::read(socket_, buffer_, parser, ec);
    if (ec) return result;
    const auto& response = parser.get();
    result.status = response.result_int();
    result.body = response.body();
    result.content_type = std::string(response[http::field::content_type]);
    result.request_id = std::string(response["X-Request-Id"]);
    result.keep_alive = response.keep_alive();
    return result;
  }

  boost::asio::ip::tcp::socket& socket() { return socket_; }

 private:
  boost::asio::io_context ioc_;
  boost::asio::ip::tcp::socket socket_;
  boost::beast::flat_buffer buffer_;
  boost::beast::error_code error_;
};

inline HttpResult HttpPost(int port, const std::string& target, const std::string& body,
                           const std::map<std::string, std::string>& headers = {}) {
  HttpConnection c(port);
  return c.Send("POST", target, body, headers);
}
inline HttpResult HttpGet(int port, const std::string& target,
                          const std::map<std::string, std::string>& headers = {}) {
  HttpConnection c(port);
  return c.Send("GET", target, "", headers);
}

// The `data:` payloads of an event stream, in order ("[DONE]" included).
inline std::vector<std::string> SseData(const std::string& stream) {
  std::vector<std::string> events;
  for (absl::string_view event : absl::StrSplit(stream, "\n\n", absl::SkipEmpty())) {
    for (absl::string_view line : absl::StrSplit(event, '\n')) {
      if (absl::StartsWith(line, "data: ")) events.emplace_back(line.substr(6));
    }
  }
  return events;
}

// The text of a completion stream's events joined, and the last
// completion chunk (the one with finish_reason).
struct SseCompletion {
  std::string text;
  nlohmann::json last;  // the last JSON event
  bool done = false;    // ended with [DONE]
  int events = 0;       // JSON events
};
inline SseCompletion JoinCompletion(const std::string& stream) {
  SseCompletion out;
  for (const std::string& data : SseData(stream)) {
    if (data == "[DONE]") {
      out.done = true;
      continue;
    }
    nlohmann::json chunk = nlohmann::json::parse(data, nullptr, false);
    ++out.events;
    if (chunk.contains("choices") && !chunk["choices"].empty()) {
      out.text += chunk["choices"][0]["text"].get<std::string>();
    }
    out.last = chunk;
  }
  return out;
}

}  // namespace lstmserve::testing

#endif  // LSTMSERVE_TESTS_SERVER_HTTP_CLIENT_H_
