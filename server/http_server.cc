#include "server/http_server.h"

#include <boost/asio/dispatch.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <atomic>
#include <optional>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "server/http_status_util.h"

namespace lstmserve {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using tcp = net::ip::tcp;
using SslStream = beast::ssl_stream<beast::tcp_stream>;

struct HttpServer::State {
  HttpOptions options;
  Handler handler;
  std::optional<net::ssl::context> ssl;  // set: TLS
  // Reset by Stop: the acceptor first, then the io_context, whose pending
  // operations own the connections (destroying it closes them).
  std::unique_ptr<net::io_context> ioc = std::make_unique<net::io_context>();
  std::optional<tcp::acceptor> acceptor;
  std::vector<std::thread> threads;
  std::atomic<bool> draining{false};
  std::atomic<int> connections{0};
  std::atomic<int> exchanges{0};
  absl::Mutex stop_mu;
  bool stopped ABSL_GUARDED_BY(stop_mu) = false;
};

namespace {

std::chrono::steady_clock::duration Chrono(absl::Duration d) {
  return absl::ToChronoNanoseconds(std::min(d, absl::Hours(24 * 365)));
}

std::string Peer(const tcp::socket& socket) {
  beast::error_code ec;
  const tcp::endpoint endpoint = socket.remote_endpoint(ec);
  if (ec) return "http:unknown";
  return absl::StrCat("http:", endpoint.address().to_string(), ":", endpoint.port());
}

// One connection. Everything but the HttpExchange methods runs on the
// connection's strand; the exchange methods queue under mu_ and post a pump.
template <class Stream>
class Connection final : public HttpExchange,
                         public std::enable_shared_from_this<Connection<Stream>> {
 public:
  Connection(HttpServer::State* server, Stream stream)
      : server_(server), stream_(std::move(stream)) {
    server_->connections.fetch_add(1);
  }
  ~Connection() override { server_->connections.fetch_sub(1); }

  void Run() {
    net::dispatch(stream_.get_executor(), [self = this->shared_from_this()] { self->Begin(); });
  }

  // HttpExchange (any thread).
  void SetRequestId(const std::string& id) override {
    absl::MutexLock lock(&mu_);
    request_id_ = id;
  }
  void Reply(HttpReply reply) override {
    {
      absl::MutexLock lock(&mu_);
      reply_ = std::move(reply);
    }
    Pump();
  }
  void StartStream(const std::string& content_type, std::function<void()> wake,
                   int resume_threshold) override {
    {
      absl::MutexLock lock(&mu_);
      stream_type_ = content_type;
      wake_ = std::move(wake);
      resume_threshold_ = resume_threshold;
      stream_requested_ = true;
    }
    Pump();
  }
  void StreamWrite(std::string data, int tokens) override {
    if (gone_.load()) return;
    {
      absl::MutexLock lock(&mu_);
      queued_ += data;
      queued_tokens_ += tokens;
      pending_tokens_.fetch_add(tokens);
    }
    Pump();
  }
  void EndStream() override {
    {
      absl::MutexLock lock(&mu_);
      end_requested_ = true;
    }
    Pump();
  }
  bool client_gone() const override { return gone_.load(); }
  int pending_tokens() const override { return pending_tokens_.load(); }

 private:
  static constexpr bool kTls = std::is_same_v<Stream, SslStream>;
  // Above this many buffered bytes of a next (pipelined) request, stop
  // reading ahead until the current exchange is answered.
  static constexpr size_t kMaxReadAhead = 64 << 10;

  beast::tcp_stream& Lowest() { return beast::get_lowest_layer(stream_); }

  void Begin() {
    if constexpr (kTls) {
      Lowest().expires_after(Chrono(server_->options.read_timeout));
      stream_.async_handshake(net::ssl::stream_base::server,
                              [self = this->shared_from_this()](beast::error_code ec) {
                                if (ec) return self->Close();
                                self->ReadRequest();
                              });
    } else {
      ReadRequest();
    }
  }

  void ReadRequest() {
    parser_.emplace();
    parser_->header_limit(static_cast<uint32_t>(server_->options.max_header_bytes));
    parser_->body_limit(static_cast<uint64_t>(server_->options.max_body_bytes));
    // The first request must come within the read timeout; a keep-alive
    // connection may wait idle_timeout for its next one.
    Lowest().expires_after(
        Chrono(requests_ == 0 ? server_->options.read_timeout : server_->options.idle_timeout));
    http::async_read_header(stream_, buffer_, *parser_,
                            [self = this->shared_from_this()](beast::error_code ec, size_t) {
                              self->OnHeader(ec);
                            });
  }

  void OnHeader(beast::error_code ec) {
    if (ec) return OnReadError(ec);
    const auto length = parser_->content_length();
    if (length.has_value() && *length > static_cast<uint64_t>(server_->options.max_body_bytes)) {
      return Fail(413, absl::ResourceExhaustedError(absl::StrCat(
                           "the request body is ", *length, " bytes; the limit is ",
                           server_->options.max_body_bytes, " (--http-max-body-bytes)")));
    }
    if (parser_->is_done()) return OnRequest();
    Lowest().expires_after(Chrono(server_->options.read_timeout));
    http::async_read(stream_, buffer_, *parser_,
                     [self = this->shared_from_this()](beast::error_code ec, size_t) {
                       if (ec) return self->OnReadError(ec);
                       self->OnRequest();
                     });
  }

  void OnReadError(beast::error_code ec) {
    if (ec == http::error::header_limit) {
      return Fail(431, absl::InvalidArgumentError(absl::StrCat(
                           "the request headers are over the limit of ",
                           server_->options.max_header_bytes, " bytes")));
    }
    if (ec == http::error::body_limit) {
      return Fail(413, absl::ResourceExhaustedError(absl::StrCat(
                           "the request body is over the limit of ",
                           server_->options.max_body_bytes, " bytes (--http-max-body-bytes)")));
    }
    if (ec == http::error::end_of_stream || ec == net::error::eof ||
        ec == beast::error::timeout || ec == net::error::operation_aborted ||
        ec == net::error::connection_reset || ec == net::ssl::error::stream_truncated) {
      return Close();
    }
    if (ec.category() == beast::http::make_error_code(http::error::bad_target).category()) {
      return Fail(400, absl::InvalidArgumentError(
                           absl::StrCat("malformed HTTP request: ", ec.message())));
    }
    Close();
  }

  // Answers a request the transport itself refuses, then closes.
  void Fail(int status, const absl::Status& error) {
    keep_alive_ = false;
    replied_keep_alive_ = false;
    server_->exchanges.fetch_add(1);
    open_ = true;
    HttpError e = ToHttpError(error, status);
    Reply(HttpReply{e.http_status, "application/json", std::move(e.body)});
  }

  void OnRequest() {
    ++requests_;
    http::request<http::string_body> message = parser_->release();
    parser_.reset();
    keep_alive_ = message.keep_alive();
    replied_keep_alive_ = false;
    HttpRequest request;
    request.method = std::string(message.method_string());
    request.target = std::string(message.target());
    request.body = std::move(message.body());
    if (auto it = message.find(http::field::authorization); it != message.end()) {
      request.authorization = std::string(it->value());
      request.has_authorization = true;
    }
    if (auto it = message.find("X-Request-Id"); it != message.end()) {
      request.request_id = std::string(it->value());
    }
    request.peer = Peer(Lowest().socket());
    server_->exchanges.fetch_add(1);
    open_ = true;
    Watch();
    server_->handler(std::move(request), this->shared_from_this());
  }

  // Reads while an exchange is open, to notice a client that goes away (and
  // to buffer the start of a pipelined request).
  void Watch() {
    if (watching_ || buffer_.size() >= kMaxReadAhead) return;
    watching_ = true;
    if (!lingering_) Lowest().expires_never();
    stream_.async_read_some(buffer_.prepare(4096), [self = this->shared_from_this()](
                                                       beast::error_code ec, size_t n) {
      self->OnWatch(ec, n);
    });
  }

  void OnWatch(beast::error_code ec, size_t n) {
    watching_ = false;
    if (lingering_) {
      if (ec) return Close();
      buffer_.clear();
      return Watch();
    }
    if (ec == net::error::operation_aborted && read_after_watch_) {
      read_after_watch_ = false;
      return ReadRequest();
    }
    if (ec) {
      ClientGone();
      if (!open_) Close();
      return;
    }
    buffer_.commit(n);
    if (open_) {
      Watch();
    } else if (read_after_watch_) {
      read_after_watch_ = false;
      ReadRequest();
    }
  }

  void ClientGone() {
    if (gone_.exchange(true)) return;
    std::function<void()> wake;
    {
      absl::MutexLock lock(&mu_);
      wake = wake_;
      queued_.clear();
      queued_tokens_ = 0;
      pending_tokens_.store(0);
    }
    if (wake) wake();
  }

  // Schedules Drive on the strand (once while one is scheduled).
  void Pump() {
    if (pump_scheduled_.exchange(true)) return;
    net::post(stream_.get_executor(), [self = this->shared_from_this()] {
      self->pump_scheduled_.store(false);
      self->Drive();
    });
  }

  // Starts the next write, if none is in flight (strand).
  void Drive() {
    if (writing_ || closed_) return;
    std::optional<HttpReply> reply;
    bool start = false, end = false;
    int tokens = 0;
    std::string content_type;
    {
      absl::MutexLock lock(&mu_);
      if (reply_.has_value()) {
        reply = std::move(reply_);
        reply_.reset();
      } else if (stream_requested_ && !stream_started_) {
        start = true;
        stream_started_ = true;
        content_type = stream_type_;
      } else if (stream_started_ && !queued_.empty()) {
        writing_data_ = std::move(queued_);
        queued_.clear();
        tokens = queued_tokens_;
        queued_tokens_ = 0;
      } else if (stream_started_ && end_requested_) {
        end = true;
        end_requested_ = false;
      } else {
        return;
      }
      id_header_ = request_id_;
    }
    if (gone_.load()) return EndExchange();
    writing_ = true;
    Lowest().expires_after(Chrono(server_->options.write_timeout));
    auto self = this->shared_from_this();
    if (reply.has_value()) {
      response_.emplace(static_cast<http::status>(reply->status), 11);
      response_->set(http::field::content_type, reply->content_type);
      SetCommonHeaders(*response_);
      response_->body() = std::move(reply->body);
      response_->prepare_payload();
      http::async_write(stream_, *response_, [self](beast::error_code ec, size_t) {
        self->writing_ = false;
        self->response_.reset();
        if (ec) self->ClientGone();
        self->EndExchange();
      });
    } else if (start) {
      head_.emplace(http::status::ok, 11);
      head_->set(http::field::content_type, content_type);
      head_->set(http::field::cache_control, "no-cache");
      head_->set("X-Accel-Buffering", "no");  // nginx: do not buffer this response
      SetCommonHeaders(*head_);
      head_->chunked(true);
      serializer_.emplace(*head_);
      http::async_write_header(stream_, *serializer_, [self](beast::error_code ec, size_t) {
        self->AfterWrite(ec, 0);
      });
    } else if (end) {
      net::async_write(stream_, http::make_chunk_last(), [self](beast::error_code ec, size_t) {
        self->writing_ = false;
        if (ec) self->ClientGone();
        self->EndExchange();
      });
    } else {
      net::async_write(stream_, http::make_chunk(net::buffer(writing_data_)),
                       [self, tokens](beast::error_code ec, size_t) {
                         self->AfterWrite(ec, tokens);
                       });
    }
  }

  template <class Message>
  void SetCommonHeaders(Message& m) {
    m.set(http::field::server, "lstmserve");
    if (!id_header_.empty()) m.set("X-Request-Id", id_header_);
    // Decided once per response: EndExchange keeps the connection open
    // exactly when this response told the client it could reuse it (a drain
    // starting in between must not close a connection promised keep-alive;
    // its next request is answered 503 with Connection: close).
    replied_keep_alive_ = keep_alive_ && !server_->draining.load();
    m.keep_alive(replied_keep_alive_);
  }

  void AfterWrite(beast::error_code ec, int tokens) {
    writing_ = false;
    writing_data_.clear();
    if (ec) {
      ClientGone();
      return EndExchange();
    }
    const int before = pending_tokens_.fetch_sub(tokens);
    std::function<void()> wake;
    {
      absl::MutexLock lock(&mu_);
      if (before > resume_threshold_ && before - tokens <= resume_threshold_) wake = wake_;
    }
    if (wake) wake();
    Drive();
  }

  // The exchange is over (answered, or the client is gone): next request or
  // close (strand).
  void EndExchange() {
    if (!open_) return;
    open_ = false;
    server_->exchanges.fetch_sub(1);
    {
      absl::MutexLock lock(&mu_);
      reply_.reset();
      stream_requested_ = stream_started_ = end_requested_ = false;
      queued_.clear();
      queued_tokens_ = 0;
      wake_ = nullptr;
      request_id_.clear();
    }
    head_.reset();
    serializer_.reset();
    if (gone_.load()) return Close();
    if (!replied_keep_alive_) return Linger();
    if (watching_) {
      // Stop watching (the idle timeout applies to the next read only once
      // it starts); OnWatch then starts reading the next request.
      read_after_watch_ = true;
      beast::error_code ignored;
      Lowest().socket().cancel(ignored);
    } else {
      ReadRequest();
    }
  }

  // After the last response: stop sending, then read (and drop) what the
  // client still sends for a second before closing, so that closing with
  // unread input does not reset the connection before the client has read
  // the response (a 413 answered before the body was read).
  void Linger() {
    if (closed_) return;
    beast::error_code ignored;
    Lowest().socket().shutdown(tcp::socket::shutdown_send, ignored);
    lingering_ = true;
    if (watching_) {  // its read has no timeout: end it (OnWatch closes)
      Lowest().socket().cancel(ignored);
      return;
    }
    Lowest().expires_after(std::chrono::seconds(1));
    buffer_.clear();
    Watch();
  }

  void Close() {
    if (closed_) return;
    closed_ = true;
    gone_.store(true);
    beast::error_code ignored;
    Lowest().socket().shutdown(tcp::socket::shutdown_both, ignored);
    Lowest().close();
  }

  HttpServer::State* const server_;  // outlives every connection
  Stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  // Strand only.
  int requests_ = 0;
  bool keep_alive_ = true;
  bool replied_keep_alive_ = false;  // what the last response's headers said
  bool open_ = false;  // an exchange is open
  bool watching_ = false;
  bool read_after_watch_ = false;
  bool writing_ = false;
  bool closed_ = false;
  bool lingering_ = false;  // the last response is out; closing
  std::string id_header_;
  std::string writing_data_;
  std::optional<http::response<http::string_body>> response_;
  std::optional<http::response<http::empty_body>> head_;
  std::optional<http::response_serializer<http::empty_body>> serializer_;

  std::atomic<bool> gone_{false};
  std::atomic<bool> pump_scheduled_{false};
  std::atomic<int> pending_tokens_{0};
  absl::Mutex mu_;
  std::string request_id_ ABSL_GUARDED_BY(mu_);
  std::string stream_type_ ABSL_GUARDED_BY(mu_);
  std::optional<HttpReply> reply_ ABSL_GUARDED_BY(mu_);
  bool stream_requested_ ABSL_GUARDED_BY(mu_) = false;
  bool stream_started_ ABSL_GUARDED_BY(mu_) = false;
  bool end_requested_ ABSL_GUARDED_BY(mu_) = false;
  std::string queued_ ABSL_GUARDED_BY(mu_);
  int queued_tokens_ ABSL_GUARDED_BY(mu_) = 0;
  std::function<void()> wake_ ABSL_GUARDED_BY(mu_);
  int resume_threshold_ ABSL_GUARDED_BY(mu_) = 0;
};

void Accept(HttpServer::State* server) {
  server->acceptor->async_accept(
      net::make_strand(*server->ioc), [server](beast::error_code ec, tcp::socket socket) {
        if (ec == net::error::operation_aborted || !server->acceptor->is_open()) return;
        if (!ec) {
          beast::tcp_stream stream(std::move(socket));
          if (server->ssl.has_value()) {
            std::make_shared<Connection<SslStream>>(server, SslStream(std::move(stream), *server->ssl))
                ->Run();
          } else {
            std::make_shared<Connection<beast::tcp_stream>>(server, std::move(stream))->Run();
          }
        }
        Accept(server);
      });
}

absl::Status SetUpTls(const SecurityOptions& security, HttpServer::State* state) {
  if (security.tls_cert_file.empty() && security.tls_key_file.empty()) return absl::OkStatus();
  try {
    state->ssl.emplace(net::ssl::context::tls_server);
    state->ssl->set_options(net::ssl::context::default_workarounds | net::ssl::context::no_sslv2 |
                            net::ssl::context::no_sslv3 | net::ssl::context::no_tlsv1 |
                            net::ssl::context::no_tlsv1_1);
    state->ssl->use_certificate_chain_file(security.tls_cert_file);
    state->ssl->use_private_key_file(security.tls_key_file, net::ssl::context::pem);
    if (!security.tls_client_ca_file.empty()) {
      state->ssl->load_verify_file(security.tls_client_ca_file);
      state->ssl->set_verify_mode(net::ssl::verify_peer | net::ssl::verify_fail_if_no_peer_cert);
    }
  } catch (const boost::system::system_error& e) {
    return absl::InvalidArgumentError(absl::StrCat(
        "HTTP TLS: cannot load --tls-cert '", security.tls_cert_file, "' / --tls-key '",
        security.tls_key_file, "' / --tls-client-ca '", security.tls_client_ca_file,
        "': ", e.what()));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(const HttpOptions& options,
                                                              const SecurityOptions& security,
                                                              Handler handler) {
  std::unique_ptr<HttpServer> server(new HttpServer());
  server->state_ = std::make_unique<State>();
  State* state = server->state_.get();
  state->options = options;
  state->handler = std::move(handler);
  if (absl::Status tls = SetUpTls(security, state); !tls.ok()) return tls;
  const std::string& listen = options.listen;
  const size_t colon = listen.rfind(':');
  int port = -1;
  if (colon == std::string::npos || !absl::SimpleAtoi(listen.substr(colon + 1), &port) ||
      port < 0 || port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("--http-listen '", listen, "' is not HOST:PORT"));
  }
  std::string host = listen.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  beast::error_code ec;
  state->acceptor.emplace(net::make_strand(*state->ioc));
  tcp::resolver resolver(*state->ioc);
  auto endpoints = resolver.resolve(host, std::to_string(port), tcp::resolver::passive, ec);
  if (ec || endpoints.empty()) {
    return absl::UnavailableError(
        absl::StrCat("cannot resolve --http-listen '", listen, "': ", ec.message()));
  }
  const tcp::endpoint endpoint = endpoints.begin()->endpoint();
  state->acceptor->open(endpoint.protocol(), ec);
  if (!ec) state->acceptor->set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) state->acceptor->bind(endpoint, ec);
  if (!ec) state->acceptor->listen(net::socket_base::max_listen_connections, ec);
  if (ec) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on --http-listen '", listen, "': ", ec.message()));
  }
  server->port_ = state->acceptor->local_endpoint().port();
  Accept(state);
  const int threads = std::max(1, options.threads);
  for (int i = 0; i < threads; ++i) {
    state->threads.emplace_back([state] { state->ioc->run(); });
  }
  return server;
}

HttpServer::~HttpServer() { Stop(absl::Now()); }

void HttpServer::StopAccepting() {
  State* state = state_.get();
  state->draining.store(true);
  absl::MutexLock lock(&state->stop_mu);
  if (state->stopped || !state->acceptor.has_value()) return;
  net::post(state->acceptor->get_executor(), [state] {
    beast::error_code ignored;
    state->acceptor->close(ignored);
  });
}

void HttpServer::Stop(absl::Time deadline) {
  State* state = state_.get();
  {
    absl::MutexLock lock(&state->stop_mu);
    if (state->stopped) return;
    state->stopped = true;
    state->draining.store(true);
    if (state->acceptor.has_value()) {
      net::post(state->acceptor->get_executor(), [state] {
        beast::error_code ignored;
        state->acceptor->close(ignored);
      });
    }
  }
  while (state->exchanges.load() > 0 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  state->ioc->stop();
  for (std::thread& t : state->threads) t.join();
  state->threads.clear();
  // Destroying the operations that never completed releases the
  // connections (their sockets close) while the State they point to still
  // exists.
  state->acceptor.reset();
  state->ioc.reset();
}

int HttpServer::connections() const { return state_->connections.load(); }
int HttpServer::exchanges() const { return state_->exchanges.load(); }

}  // namespace lstmserve
