#include "test/support/app_servers.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>

#include "dns/header.h"
#include "dns/message.h"
#include "dns/name_text.h"

namespace dnsproxy::test {
namespace {

constexpr const char* kServersV4 = "203.0.113.0/24";
constexpr const char* kServersV6 = "2001:db8:e::/64";

std::string errno_text(int err) {
  return std::strerror(err);
}

// Runs `body` with the calling thread inside `ns`, so the sockets it opens live there.
template <class Body>
auto inside(const NetNs& ns, Body&& body) -> decltype(body()) {
  auto entered = ScopedNetns::enter(ns);
  if (!entered) return tl::unexpected(entered.error());
  return body();
}

Result<int> open_listener() {
  const int fd = socket(AF_INET6, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return fail("socket: ", errno_text(errno));
  const int off = 0, on = 1;
  setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof(off));  // IPv4 arrives v4-mapped
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
  sockaddr_in6 any{};
  any.sin6_family = AF_INET6;
  any.sin6_port = htons(AppServers::kPort);
  any.sin6_addr = in6addr_any;
  if (bind(fd, reinterpret_cast<const sockaddr*>(&any), sizeof(any)) != 0 ||
      listen(fd, 4096) != 0) {
    const int err = errno;
    close(fd);
    return fail("listening on [::]:", std::to_string(AppServers::kPort), ": ", errno_text(err));
  }
  return fd;
}

// The routes that make both ranges reach the upstream host and be local there.
struct Route {
  const NetNs* ns;
  std::vector<std::string> args;  // after `ip route add` / `ip route del`
};

std::vector<Route> server_routes(const Topology& topology) {
  return {{&topology.node(), {"-4", kServersV4, "via", Topology::kUpstreamV4}},
          {&topology.node(), {"-6", kServersV6, "via", Topology::kUpstreamV6}},
          {&topology.upstream(), {"-4", "local", kServersV4, "dev", "lo"}},
          {&topology.upstream(), {"-6", "local", kServersV6, "dev", "lo"}}};
}

Result<void> change_route(const Route& route, const char* verb) {
  std::vector<std::string> args = {route.args[0], "route", verb};
  args.insert(args.end(), route.args.begin() + 1, route.args.end());
  auto done = route.ns->ip(args);
  if (!done) return tl::unexpected(done.error());
  return {};
}

}  // namespace

Result<std::unique_ptr<AppServers>> AppServers::start(const Topology& topology) {
  std::unique_ptr<AppServers> servers(new AppServers(topology));
  for (const Route& route : server_routes(topology))
    if (auto added = change_route(route, "add"); !added) return tl::unexpected(added.error());
  auto listener = inside(topology.upstream(), open_listener);
  if (!listener) return tl::unexpected(listener.error());
  servers->stop_fd_ = eventfd(0, EFD_CLOEXEC);
  if (servers->stop_fd_ < 0) {
    close(*listener);
    return fail("eventfd: ", errno_text(errno));
  }
  servers->thread_ = std::thread([raw = servers.get(), fd = *listener] { raw->serve(fd); });
  return servers;
}

void AppServers::serve(int listen_fd) {
  std::array<pollfd, 2> fds = {pollfd{listen_fd, POLLIN, 0}, pollfd{stop_fd_, POLLIN, 0}};
  for (;;) {
    if (poll(fds.data(), fds.size(), -1) < 0 && errno != EINTR) break;
    if (fds[1].revents != 0) break;
    for (int connection; (connection = accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC)) >= 0;) {
      close(connection);
      accepted_.fetch_add(1);
    }
  }
  close(listen_fd);
}

uint64_t AppServers::wait_accepted(uint64_t count, std::chrono::milliseconds timeout) const {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (accepted_.load() < count && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  return accepted_.load();
}

AppServers::~AppServers() {
  if (thread_.joinable()) {
    const uint64_t one = 1;
    (void)!write(stop_fd_, &one, sizeof(one));
    thread_.join();
  }
  if (stop_fd_ >= 0) close(stop_fd_);
  for (const Route& route : server_routes(topology_)) (void)change_route(route, "del");
}

namespace {

using Clock = std::chrono::steady_clock;

// A socket address from text ("198.51.100.53", "2001:db8:5::53") and a port.
struct Endpoint {
  sockaddr_storage address{};
  socklen_t length = 0;
};

Result<Endpoint> endpoint(const std::string& text, uint16_t port) {
  Endpoint result;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&result.address);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&result.address);
  if (inet_pton(AF_INET, text.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    result.length = sizeof(*v4);
  } else if (inet_pton(AF_INET6, text.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    result.length = sizeof(*v6);
  } else {
    return fail("not an IP address: ", text);
  }
  return result;
}

// An address record's RDATA as a socket address on AppServers::kPort.
Endpoint endpoint_of(std::span<const uint8_t> rdata) {
  Endpoint result;
  if (rdata.size() == 4) {
    auto* v4 = reinterpret_cast<sockaddr_in*>(&result.address);
    v4->sin_family = AF_INET;
    v4->sin_port = htons(AppServers::kPort);
    std::memcpy(&v4->sin_addr, rdata.data(), 4);
    result.length = sizeof(*v4);
  } else {
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&result.address);
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(AppServers::kPort);
    std::memcpy(&v6->sin6_addr, rdata.data(), 16);
    result.length = sizeof(*v6);
  }
  return result;
}

// A query for `name` / `qtype` (class IN, RD set), or empty if the name is not valid.
std::vector<uint8_t> query(uint16_t id, const std::string& name, uint16_t qtype) {
  std::array<uint8_t, dns::kMaxNameWireLength> wire_name{};
  auto length = dns::name_from_text(name, wire_name);
  if (!length) return {};
  std::vector<uint8_t> packet(dns::kHeaderSize + *length + 4, 0);
  dns::store_u16(&packet[dns::header::kIdOffset], id);
  packet[dns::header::kFlags1Offset] = dns::header::kRdMask;
  dns::store_u16(&packet[dns::header::kQdCountOffset], 1);
  std::memcpy(&packet[dns::kHeaderSize], wire_name.data(), *length);
  dns::store_u16(&packet[dns::kHeaderSize + *length], qtype);
  dns::store_u16(&packet[dns::kHeaderSize + *length + 2], 1);
  return packet;
}

int remaining_ms(Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return left.count() < 0 ? 0 : static_cast<int>(left.count());
}

enum class Outcome { kConnected, kDnsTimeout, kDnsError, kConnectFailed };

// The answer to query `id`, or nothing by the deadline (answers to earlier, timed-out queries
// are skipped).
std::optional<std::vector<uint8_t>> await_answer(int fd, uint16_t id, Clock::time_point deadline) {
  std::vector<uint8_t> buffer(65535);
  for (;;) {
    pollfd readable{fd, POLLIN, 0};
    if (poll(&readable, 1, remaining_ms(deadline)) <= 0) return std::nullopt;
    const ssize_t n = recv(fd, buffer.data(), buffer.size(), 0);
    if (n >= static_cast<ssize_t>(dns::kHeaderSize) && dns::load_u16(buffer.data()) == id) {
      buffer.resize(static_cast<size_t>(n));
      return buffer;
    }
  }
}

bool connect_within(const Endpoint& target, std::chrono::milliseconds timeout) {
  const int fd = socket(target.address.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  bool connected = false;
  if (connect(fd, reinterpret_cast<const sockaddr*>(&target.address), target.length) == 0) {
    connected = true;
  } else if (errno == EINPROGRESS) {
    pollfd writable{fd, POLLOUT, 0};
    int error = 0;
    socklen_t length = sizeof(error);
    connected = poll(&writable, 1, static_cast<int>(timeout.count())) == 1 &&
                getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) == 0 && error == 0;
  }
  close(fd);
  return connected;
}

Outcome trial(int dns_fd, uint16_t id, const std::string& name,
              const ResolveConnectOptions& options, double& elapsed_ms) {
  const std::vector<uint8_t> packet = query(id, name, options.qtype);
  const Clock::time_point sent = Clock::now();
  if (packet.empty() || send(dns_fd, packet.data(), packet.size(), 0) < 0)
    return Outcome::kDnsError;
  auto answer = await_answer(dns_fd, id, sent + options.dns_timeout);
  if (!answer) return Outcome::kDnsTimeout;
  auto message = dns::parse_response(*answer);
  if (!message || message->rcode() != 0) return Outcome::kDnsError;
  dns::AnswerWalk walk(*message);
  dns::AnswerRecord record;
  while (walk.next(record)) {
    if (!record.on_chain || static_cast<uint16_t>(record.type) != options.qtype) continue;
    if (!connect_within(endpoint_of(record.rdata), options.connect_timeout))
      return Outcome::kConnectFailed;
    elapsed_ms = std::chrono::duration<double, std::milli>(Clock::now() - sent).count();
    return Outcome::kConnected;
  }
  return Outcome::kDnsError;
}

}  // namespace

Result<ResolveConnectReport> resolve_then_connect(const NetNs& client,
                                                  const std::vector<std::string>& names,
                                                  const ResolveConnectOptions& options) {
  auto server = endpoint(options.server, 53);
  if (!server) return tl::unexpected(server.error());
  return inside(client, [&]() -> Result<ResolveConnectReport> {
    const int fd = socket(server->address.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return fail("socket: ", errno_text(errno));
    if (connect(fd, reinterpret_cast<const sockaddr*>(&server->address), server->length) != 0) {
      const int err = errno;
      close(fd);
      return fail("connect to ", options.server, ": ", errno_text(err));
    }
    ResolveConnectReport report;
    uint16_t id = 0x4d00;
    for (const std::string& name : names) {
      double elapsed_ms = 0;
      ++report.trials;
      switch (trial(fd, ++id, name, options, elapsed_ms)) {
        case Outcome::kConnected:
          ++report.connected;
          report.resolve_to_connect_ms.push_back(elapsed_ms);
          continue;
        case Outcome::kDnsTimeout:
          ++report.dns_timeouts;
          break;
        case Outcome::kDnsError:
          ++report.dns_errors;
          break;
        case Outcome::kConnectFailed:
          ++report.connect_failures;
          break;
      }
      report.failed_names.push_back(name);
    }
    close(fd);
    return report;
  });
}

}  // namespace dnsproxy::test
