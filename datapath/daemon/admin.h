// The admin socket (`--admin-socket PATH`): a unix stream socket, mode 0600 and root peers only
// (SO_PEERCRED), served by the control loop. A client sends one command line ("status", "stats")
// and reads one JSON object back; the daemon then closes the connection. dnsproxyctl is the
// client (README, "Admin socket").
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "datapath/daemon/config.h"
#include "datapath/daemon/control_loop.h"

namespace dnsproxy::daemon {

class AdminServer {
 public:
  // `handle(command)` answers one command; it runs on the control thread.
  using Handler = std::function<nlohmann::json(std::string_view command)>;

  // Binds and listens at `path` (replacing a stale socket file left by a crashed run) and
  // registers with `loop`; exit 6 when that fails.
  [[nodiscard]] static Setup<std::unique_ptr<AdminServer>> listen(const std::string& path,
                                                                  ControlLoop& loop,
                                                                  Handler handle);
  ~AdminServer();  // unregisters, closes every connection, removes the socket file
  AdminServer(const AdminServer&) = delete;
  AdminServer& operator=(const AdminServer&) = delete;

 private:
  AdminServer(std::string path, int fd, ControlLoop& loop, Handler handle)
      : path_(std::move(path)), fd_(fd), loop_(loop), handle_(std::move(handle)) {}
  void accept_one();
  void serve(int client);
  void close_client(int client);

  std::string path_;
  int fd_;
  ControlLoop& loop_;
  Handler handle_;
  std::map<int, std::string> clients_;  // fd -> the request bytes read so far
};

}  // namespace dnsproxy::daemon
