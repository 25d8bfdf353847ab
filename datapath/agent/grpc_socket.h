// The agent link's unix socket, for both ends (issue 12): dnsproxyd connects it (GrpcAgent), the
// reference agent listens on it (tools/dnsproxy-agent/). Each end makes the socket itself and
// hands the connected fd to gRPC (grpc::CreateCustomInsecureChannelFromFd on the proxy,
// grpc::AddInsecureChannelFromFd on the agent), so the peer's uid is read with SO_PEERCRED on
// the very socket gRPC then speaks over: no window between the check and the use.
#pragma once

#include <sys/types.h>

#include <string>
#include <string_view>

#include "common/result.h"
#include "datapath/policy_mirror.h"  // Fd

namespace dnsproxy::datapath::agent {

// The socket path of a "unix:PATH" target (--agent, --listen); an error naming `flag` otherwise.
[[nodiscard]] Result<std::string> unix_socket_path(std::string_view target,
                                                   std::string_view flag = "--agent");

// A non-blocking connect to `path`. A unix socket connects at once or fails at once (no
// listener, no file, a full backlog: EAGAIN), so this never waits.
[[nodiscard]] Result<Fd> connect_unix(const std::string& path);

// A listening socket at `path`, mode 0600 and owned by `owner` (the one uid that may connect
// through the file system; the SO_PEERCRED check backs it up for peers the mode does not stop,
// such as root). A socket file a dead run left is replaced; anything else at `path` is an error.
[[nodiscard]] Result<Fd> listen_unix(const std::string& path, uid_t owner);

struct PeerCredentials {
  pid_t pid = 0;
  uid_t uid = 0;
};
// The credentials of the process at the other end of a connected unix socket, as the kernel
// recorded them when it connected (or listened).
[[nodiscard]] Result<PeerCredentials> peer_credentials(int fd);

}  // namespace dnsproxy::datapath::agent
