#include "server/listen_sockets.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"

namespace lstmserve {
namespace {

enum class SocketKind { kOther, kListening, kConnected };

// What `fd` is with respect to local TCP port `port`.
SocketKind Classify(int fd, int port) {
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISSOCK(st.st_mode)) return SocketKind::kOther;
  int type = 0;
  socklen_t len = sizeof(type);
  if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0 || type != SOCK_STREAM) {
    return SocketKind::kOther;
  }
  sockaddr_storage addr{};
  len = sizeof(addr);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) return SocketKind::kOther;
  int local_port = -1;
  if (addr.ss_family == AF_INET) {
    local_port = ntohs(reinterpret_cast<const sockaddr_in*>(&addr)->sin_port);
  } else if (addr.ss_family == AF_INET6) {
    local_port = ntohs(reinterpret_cast<const sockaddr_in6*>(&addr)->sin6_port);
  }
  if (local_port != port) return SocketKind::kOther;
  int listening = 0;
  len = sizeof(listening);
  if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) != 0) return SocketKind::kOther;
  if (listening != 0) return SocketKind::kListening;
  // Connected: it has a peer (a listener StopAccepting shut down has none).
  sockaddr_storage peer{};
  len = sizeof(peer);
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &len) != 0) return SocketKind::kOther;
  return SocketKind::kConnected;
}

// The open descriptors of this process (a snapshot: other threads open and
// close sockets meanwhile, so each is classified again right before use).
std::vector<int> OpenDescriptors() {
  std::vector<int> fds;
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return fds;
  const int own = dirfd(dir);
  while (const dirent* entry = readdir(dir)) {
    char* end = nullptr;
    const long fd = std::strtol(entry->d_name, &end, 10);
    if (end != entry->d_name && *end == '\0' && fd != own) fds.push_back(static_cast<int>(fd));
  }
  closedir(dir);
  return fds;
}

}  // namespace

absl::StatusOr<int> StopAccepting(int port) {
  if (port <= 0) return 0;
  int stopped = 0;
  for (int fd : OpenDescriptors()) {
    if (Classify(fd, port) != SocketKind::kListening) continue;
    if (shutdown(fd, SHUT_RDWR) != 0) {
      return absl::InternalError(absl::StrCat("shutdown of the listening socket (fd ", fd,
                                              ", port ", port, "): ", std::strerror(errno)));
    }
    ++stopped;
  }
  return stopped;
}

int ConnectionCount(int port) {
  if (port <= 0) return 0;
  int connections = 0;
  for (int fd : OpenDescriptors()) {
    if (Classify(fd, port) == SocketKind::kConnected) ++connections;
  }
  return connections;
}

}  // namespace lstmserve
