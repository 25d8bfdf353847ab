#include "datapath/daemon/admin.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace dnsproxy::daemon {
namespace {

constexpr size_t kMaxRequest = 256;  // one command line; anything longer is refused

// Writes all of `text` on a connected socket; the client reads it at once (a stuck client is
// given up after the send timeout set at accept, so the control loop never blocks for long).
void send_all(int fd, std::string_view text) {
  while (!text.empty()) {
    const ssize_t n = ::send(fd, text.data(), text.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    text.remove_prefix(static_cast<size_t>(n));
  }
}

}  // namespace

Setup<std::unique_ptr<AdminServer>> AdminServer::listen(const std::string& path, ControlLoop& loop,
                                                        Handler handle) {
  sockaddr_un addr{};
  if (path.size() >= sizeof(addr.sun_path))
    return failure(kExitBadConfig, "--admin-socket " + path + ": path too long");
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return failure(kExitSocket, fmt::format("--admin-socket: {}", std::strerror(errno)));
  // A socket file left by a crashed run: nobody listens on it any more.
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) ::unlink(path.c_str());
  const mode_t old_mask = ::umask(0177);  // created 0600: root only
  const int bound = ::bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr));
  ::umask(old_mask);
  if (bound != 0 || ::listen(fd, 16) != 0) {
    const int err = errno;
    ::close(fd);
    return failure(kExitSocket, fmt::format("--admin-socket {}: {}", path, std::strerror(err)));
  }
  std::unique_ptr<AdminServer> server(new AdminServer(path, fd, loop, std::move(handle)));
  if (auto added = loop.add_fd(fd, [raw = server.get()] { raw->accept_one(); }); !added) {
    ::close(fd);
    ::unlink(path.c_str());
    return failure(kExitSocket, added.error().message);
  }
  return server;
}

AdminServer::~AdminServer() {
  while (!clients_.empty()) close_client(clients_.begin()->first);
  loop_.remove_fd(fd_);
  ::close(fd_);
  ::unlink(path_.c_str());
}

void AdminServer::accept_one() {
  // Blocking, for the reply's send() and its SO_SNDTIMEO; reads use MSG_DONTWAIT.
  const int client = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
  if (client < 0) return;
  ucred peer{};
  socklen_t length = sizeof(peer);
  if (::getsockopt(client, SOL_SOCKET, SO_PEERCRED, &peer, &length) != 0 || peer.uid != 0) {
    spdlog::warn("admin socket: refused a connection from uid {}", peer.uid);
    ::close(client);
    return;
  }
  const timeval timeout{.tv_sec = 0, .tv_usec = 200'000};
  (void)::setsockopt(client, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout));
  if (!loop_.add_fd(client, [this, client] { serve(client); })) {
    ::close(client);
    return;
  }
  clients_[client];
}

void AdminServer::serve(int client) {
  std::string& request = clients_[client];
  char buffer[kMaxRequest];
  const ssize_t n = ::recv(client, buffer, sizeof(buffer), MSG_DONTWAIT);
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
  if (n <= 0) return close_client(client);  // closed before a whole line
  request.append(buffer, static_cast<size_t>(n));
  const size_t end = request.find('\n');
  if (end == std::string::npos && request.size() < kMaxRequest) return;  // more to come
  nlohmann::json answer;
  if (end == std::string::npos)
    answer = {{"error", "request too long"}};
  else
    answer = handle_(std::string_view(request).substr(0, end));
  send_all(client, answer.dump() + "\n");
  close_client(client);
}

void AdminServer::close_client(int client) {
  loop_.remove_fd(client);
  ::close(client);
  clients_.erase(client);
}

}  // namespace dnsproxy::daemon
