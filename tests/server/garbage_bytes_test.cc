// Garbage bytes on the gRPC TCP port (random bytes, HTTP/1.1, a TLS
// ClientHello on a plaintext port, broken HTTP/2 framing, truncated prefaces,
// idle connections): dropped, and serving goes on with the same answers.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/server/bad_input_support.h"

namespace lstmserve::testing {
namespace {

// Connects to 127.0.0.1:port; the socket (reads time out after 10 s).
int Connect(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  EXPECT_GE(fd, 0);
  timeval timeout{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  return fd;
}

void SendAll(int fd, const std::string& bytes) {
  size_t sent = 0;
  while (sent < bytes.size()) {
    const ssize_t n = send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) return;  // the server may close on the first bad byte
    sent += static_cast<size_t>(n);
  }
}

// Reads until the server closes the connection (true) or 10 s pass (false);
// what it sent goes to *received.
bool ReadUntilClosed(int fd, std::string* received) {
  char buf[4096];
  for (;;) {
    const ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n == 0) return true;
    if (n < 0) return errno == ECONNRESET;
    received->append(buf, static_cast<size_t>(n));
  }
}

constexpr char kPreface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

using GarbageBytesTest = BadInputTest;

TEST_F(GarbageBytesTest, GarbageOnTheGrpcPortIsDroppedAndServingGoesOn) {
  const Answers before = Ask(*t_.client);
  const int port = t_.server->port();
  std::mt19937 rng(5);
  std::string random_bytes(1 << 16, '\0');
  for (char& c : random_bytes) c = static_cast<char>(rng());

  // The server closes these connections itself: they can never become HTTP/2.
  const std::vector<std::pair<std::string, std::string>> closed_by_server = {
      {"random bytes", random_bytes},
      {"HTTP/1.1 request", "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n\r\n"},
      {"HTTP/1.1 POST of a gRPC method",
       "POST /lstmserve.v1.LanguageModelService/Generate HTTP/1.1\r\nHost: x\r\n"
       "Content-Type: application/grpc\r\nContent-Length: 3\r\n\r\nabc"},
      {"TLS ClientHello on a plaintext port",
       Bytes({0x16, 0x03, 0x01, 0x00, 0x2F, 0x01, 0x00, 0x00, 0x2B, 0x03, 0x03}) +
           std::string(43, '\x11')},
      {"preface then a garbage frame", std::string(kPreface) + random_bytes.substr(0, 4096)},
      {"preface then a frame of 16 MiB declared length",
       std::string(kPreface) + Bytes({0xFF, 0xFF, 0xFF, 0x00, 0x00, 0, 0, 0, 0})},
  };
  for (const auto& [name, bytes] : closed_by_server) {
    SCOPED_TRACE(name);
    const int fd = Connect(port);
    SendAll(fd, bytes);
    std::string received;
    EXPECT_TRUE(ReadUntilClosed(fd, &received)) << "the server kept the connection open";
    close(fd);
  }

  // These the client abandons: a truncated preface, a preface and half a
  // frame header, a connection opened and closed at once, and 50 idle
  // connections held open while real requests are served.
  for (const std::string& bytes : {std::string(kPreface).substr(0, 10),
                                   std::string(kPreface) + Bytes({0x00, 0x00}), std::string()}) {
    const int fd = Connect(port);
    SendAll(fd, bytes);
    close(fd);
  }
  std::vector<int> idle;
  for (int i = 0; i < 50; ++i) {
    idle.push_back(Connect(port));
    if (i % 2 == 0) SendAll(idle.back(), std::string(kPreface).substr(0, 5 + i % 15));
  }
  ExpectSameAnswers(*t_.client, before);
  for (int fd : idle) close(fd);

  // A fresh client (new connection) gets the same answers too.
  LanguageModelClient fresh(absl::StrCat("127.0.0.1:", port));
  ExpectSameAnswers(fresh, before);
}

}  // namespace
}  // namespace lstmserve::testing
