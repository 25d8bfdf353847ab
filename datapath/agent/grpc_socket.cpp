#include "datapath/agent/grpc_socket.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace dnsproxy::datapath::agent {
namespace {

Result<sockaddr_un> unix_address(const std::string& path) {
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (path.size() >= sizeof(address.sun_path))
    return fail(path, ": longer than a unix socket path may be (",
                std::to_string(sizeof(address.sun_path) - 1), " bytes)");
  std::memcpy(address.sun_path, path.data(), path.size());
  return address;
}

Result<Fd> unix_stream_socket() {
  Fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (fd.get() < 0) return fail("socket(AF_UNIX): ", std::strerror(errno));
  return fd;
}

}  // namespace

Result<std::string> unix_socket_path(std::string_view target, std::string_view flag) {
  constexpr std::string_view kScheme = "unix:";
  if (!target.starts_with(kScheme) || target.size() == kScheme.size())
    return fail(std::string(flag), ": \"", std::string(target), "\" is not unix:PATH");
  return std::string(target.substr(kScheme.size()));
}

Result<Fd> connect_unix(const std::string& path) {
  auto address = unix_address(path);
  if (!address) return tl::unexpected(address.error());
  auto fd = unix_stream_socket();
  if (!fd) return fd;
  if (::connect(fd->get(), reinterpret_cast<const sockaddr*>(&*address), sizeof(*address)) != 0)
    return fail("connect ", path, ": ", std::strerror(errno));
  return fd;
}

Result<Fd> listen_unix(const std::string& path, uid_t owner) {
  auto address = unix_address(path);
  if (!address) return tl::unexpected(address.error());
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) return fail(path, " exists and is not a socket");
    ::unlink(path.c_str());  // a dead run's: the bind would fail on it
  }
  auto fd = unix_stream_socket();
  if (!fd) return fd;
  // The file is created 0600 by bind (no window with a wider mode), then given to `owner`.
  const mode_t previous = ::umask(0177);
  const int bound =
      ::bind(fd->get(), reinterpret_cast<const sockaddr*>(&*address), sizeof(*address));
  const int bind_errno = errno;
  ::umask(previous);
  if (bound != 0) return fail("bind ", path, ": ", std::strerror(bind_errno));
  if (owner != ::geteuid() && ::chown(path.c_str(), owner, static_cast<gid_t>(-1)) != 0)
    return fail("chown ", path, " to uid ", std::to_string(owner), ": ", std::strerror(errno));
  if (::listen(fd->get(), SOMAXCONN) != 0) return fail("listen ", path, ": ", std::strerror(errno));
  return fd;
}

Result<PeerCredentials> peer_credentials(int fd) {
  ucred credentials{};
  socklen_t length = sizeof(credentials);
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &credentials, &length) != 0)
    return fail("getsockopt(SO_PEERCRED): ", std::strerror(errno));
  return PeerCredentials{.pid = credentials.pid, .uid = credentials.uid};
}

}  // namespace dnsproxy::datapath::agent
