// StopAccepting refuses new connections and keeps accepted ones;
// ConnectionCount counts the accepted ones on the port.
#include "server/listen_sockets.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "gtest/gtest.h"

namespace lstmserve {
namespace {

sockaddr_in Loopback(int port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(port));
  return a;
}

// A listening socket on a free loopback port.
int Listen(int* port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a = Loopback(0);
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 || listen(fd, 8) != 0) return -1;
  socklen_t len = sizeof(a);
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  *port = ntohs(a.sin_port);
  return fd;
}

// Connects to `port`; returns the socket, or -errno.
int Connect(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a = Loopback(port);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    const int error = errno;
    close(fd);
    return -error;
  }
  return fd;
}

TEST(ListenSocketsTest, StopAcceptingRefusesNewConnectionsAndKeepsAcceptedOnes) {
  int port = 0;
  const int listener = Listen(&port);
  ASSERT_GE(listener, 0);
  const int client = Connect(port);
  ASSERT_GE(client, 0);
  const int accepted = accept(listener, nullptr, nullptr);
  ASSERT_GE(accepted, 0);
  // The accepted side has local port `port`; the client side does not.
  EXPECT_EQ(ConnectionCount(port), 1);

  absl::StatusOr<int> stopped = StopAccepting(port);
  ASSERT_TRUE(stopped.ok()) << stopped.status();
  EXPECT_EQ(*stopped, 1);
  EXPECT_EQ(Connect(port), -ECONNREFUSED);
  // The accepted connection still carries data both ways.
  ASSERT_EQ(write(client, "ping", 4), 4);
  char buffer[4];
  ASSERT_EQ(read(accepted, buffer, 4), 4);
  ASSERT_EQ(write(accepted, "pong", 4), 4);
  ASSERT_EQ(read(client, buffer, 4), 4);
  EXPECT_EQ(ConnectionCount(port), 1);  // the stopped listener is not counted

  close(accepted);
  EXPECT_EQ(ConnectionCount(port), 0);
  // Nothing listens there any more.
  stopped = StopAccepting(port);
  ASSERT_TRUE(stopped.ok()) << stopped.status();
  EXPECT_EQ(*stopped, 0);
  close(client);
  close(listener);
}

TEST(ListenSocketsTest, NoPortIsNothingToDo) {
  absl::StatusOr<int> stopped = StopAccepting(0);
  ASSERT_TRUE(stopped.ok()) << stopped.status();
  EXPECT_EQ(*stopped, 0);
  EXPECT_EQ(ConnectionCount(0), 0);
}

}  // namespace
}  // namespace lstmserve
