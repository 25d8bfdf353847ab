#include "tools/loadgen/next_hop.h"

#include <arpa/inet.h>
#include <linux/neighbour.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <optional>
#include <thread>
#include <vector>

namespace dnsproxy::loadgen {
namespace {

// A netlink socket closed on scope exit.
struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) close(fd);
  }
};

// Sends one rtnetlink request and collects the payloads of every reply message (a dump ends with
// NLMSG_DONE, a plain request after its one answer).
Result<std::vector<std::vector<uint8_t>>> request(const void* message, size_t length, bool dump) {
  Fd sock{socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE)};
  if (sock.fd < 0) return fail("netlink socket: ", std::strerror(errno));
  if (send(sock.fd, message, length, 0) < 0) return fail("netlink send: ", std::strerror(errno));
  std::vector<std::vector<uint8_t>> replies;
  std::vector<uint8_t> buffer(1 << 16);
  for (;;) {
    const ssize_t got = recv(sock.fd, buffer.data(), buffer.size(), 0);
    if (got < 0) return fail("netlink recv: ", std::strerror(errno));
    int left = static_cast<int>(got);
    for (auto* header = reinterpret_cast<nlmsghdr*>(buffer.data()); NLMSG_OK(header, left);
         header = NLMSG_NEXT(header, left)) {
      if (header->nlmsg_type == NLMSG_DONE) return replies;
      if (header->nlmsg_type == NLMSG_ERROR) {
        const auto* error = static_cast<const nlmsgerr*>(NLMSG_DATA(header));
        if (error->error == 0) return replies;
        return fail(std::strerror(-error->error));
      }
      const auto* data = static_cast<const uint8_t*>(NLMSG_DATA(header));
      replies.emplace_back(data, data + NLMSG_PAYLOAD(header, 0));
      if (!dump) return replies;
    }
  }
}

struct Route {
  uint32_t oif = 0;
  std::optional<IpAddress> gateway;
};

Result<Route> route_to(const IpAddress& server) {
  struct {
    nlmsghdr header;
    rtmsg route;
    char attributes[64];
  } message{};
  message.header.nlmsg_type = RTM_GETROUTE;
  message.header.nlmsg_flags = NLM_F_REQUEST;
  message.route.rtm_family = static_cast<uint8_t>(server.family);
  message.route.rtm_dst_len = static_cast<uint8_t>(server.size() * 8);
  auto* attribute = reinterpret_cast<rtattr*>(message.attributes);
  attribute->rta_type = RTA_DST;
  attribute->rta_len = static_cast<unsigned short>(RTA_LENGTH(server.size()));
  std::memcpy(RTA_DATA(attribute), server.bytes.data(), server.size());
  message.header.nlmsg_len = NLMSG_LENGTH(sizeof(rtmsg)) + RTA_ALIGN(attribute->rta_len);
  auto replies = request(&message, message.header.nlmsg_len, false);
  if (!replies) return fail("no route to ", to_string(server), ": ", replies.error().message);
  if (replies->empty()) return fail("no route to ", to_string(server));
  const std::vector<uint8_t>& reply = replies->front();
  Route route;
  int left = static_cast<int>(reply.size() - NLMSG_ALIGN(sizeof(rtmsg)));
  for (auto* at = reinterpret_cast<const rtattr*>(reply.data() + NLMSG_ALIGN(sizeof(rtmsg)));
       RTA_OK(at, left); at = RTA_NEXT(at, left)) {
    if (at->rta_type == RTA_OIF) std::memcpy(&route.oif, RTA_DATA(at), sizeof(route.oif));
    if (at->rta_type == RTA_GATEWAY && RTA_PAYLOAD(at) == server.size()) {
      IpAddress gateway{.family = server.family};
      std::memcpy(gateway.bytes.data(), RTA_DATA(at), server.size());
      route.gateway = gateway;
    }
  }
  if (route.oif == 0) return fail("the route to ", to_string(server), " names no interface");
  return route;
}

// The neighbour entry's MAC for `address` on `ifindex`, if the kernel has a usable one.
Result<std::optional<std::array<uint8_t, 6>>> neighbour_mac(uint32_t ifindex,
                                                            const IpAddress& address) {
  struct {
    nlmsghdr header;
    ndmsg neighbour;
  } message{};
  message.header.nlmsg_len = NLMSG_LENGTH(sizeof(ndmsg));
  message.header.nlmsg_type = RTM_GETNEIGH;
  message.header.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  message.neighbour.ndm_family = static_cast<uint8_t>(address.family);
  auto replies = request(&message, message.header.nlmsg_len, true);
  if (!replies) return fail("reading the neighbour table: ", replies.error().message);
  for (const std::vector<uint8_t>& reply : *replies) {
    const auto* entry = reinterpret_cast<const ndmsg*>(reply.data());
    if (static_cast<uint32_t>(entry->ndm_ifindex) != ifindex ||
        (entry->ndm_state & (NUD_INCOMPLETE | NUD_FAILED | NUD_NOARP)) != 0)
      continue;
    bool match = false;
    std::optional<std::array<uint8_t, 6>> mac;
    int left = static_cast<int>(reply.size() - NLMSG_ALIGN(sizeof(ndmsg)));
    for (auto* at = reinterpret_cast<const rtattr*>(reply.data() + NLMSG_ALIGN(sizeof(ndmsg)));
         RTA_OK(at, left); at = RTA_NEXT(at, left)) {
      if (at->rta_type == NDA_DST && RTA_PAYLOAD(at) == address.size())
        match = std::memcmp(RTA_DATA(at), address.bytes.data(), address.size()) == 0;
      if (at->rta_type == NDA_LLADDR && RTA_PAYLOAD(at) == 6) {
        mac.emplace();
        std::memcpy(mac->data(), RTA_DATA(at), 6);
      }
    }
    if (match && mac) return mac;
  }
  return std::nullopt;
}

sockaddr_storage socket_address(const IpAddress& address, uint16_t port) {
  sockaddr_storage storage{};
  if (address.family == AF_INET) {
    auto* in = reinterpret_cast<sockaddr_in*>(&storage);
    in->sin_family = AF_INET;
    in->sin_port = htons(port);
    std::memcpy(&in->sin_addr, address.bytes.data(), 4);
  } else {
    auto* in6 = reinterpret_cast<sockaddr_in6*>(&storage);
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(port);
    std::memcpy(&in6->sin6_addr, address.bytes.data(), 16);
  }
  return storage;
}

}  // namespace

Result<IpAddress> parse_ip(const std::string& text) {
  IpAddress address;
  if (inet_pton(AF_INET, text.c_str(), address.bytes.data()) == 1) return address;
  address.family = AF_INET6;
  if (inet_pton(AF_INET6, text.c_str(), address.bytes.data()) == 1) return address;
  return fail("'", text, "' is not an IPv4 or IPv6 address");
}

std::string to_string(const IpAddress& address) {
  char text[INET6_ADDRSTRLEN] = {};
  inet_ntop(address.family, address.bytes.data(), text, sizeof(text));
  return text;
}

Result<Path> resolve_path(const std::string& interface, const IpAddress& server) {
  Path path;
  path.ifindex = if_nametoindex(interface.c_str());
  if (path.ifindex == 0) return fail("interface ", interface, " not found");
  auto route = route_to(server);
  if (!route) return tl::unexpected(route.error());
  if (route->oif != path.ifindex) {
    char name[IF_NAMESIZE] = "?";
    if_indextoname(route->oif, name);
    return fail("the route to ", to_string(server), " leaves through ", name, ", not -i ",
                interface);
  }
  path.next_hop = route->gateway.value_or(server);

  // The source address the kernel picks, and a datagram that makes it resolve the next hop.
  Fd udp{socket(server.family, SOCK_DGRAM | SOCK_CLOEXEC, 0)};
  const sockaddr_storage to = socket_address(server, 9);
  const socklen_t to_length = server.family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6);
  if (udp.fd < 0 || connect(udp.fd, reinterpret_cast<const sockaddr*>(&to), to_length) != 0)
    return fail("cannot route a datagram to ", to_string(server), ": ", std::strerror(errno));
  sockaddr_storage local{};
  socklen_t local_length = sizeof(local);
  getsockname(udp.fd, reinterpret_cast<sockaddr*>(&local), &local_length);
  path.source.family = server.family;
  if (server.family == AF_INET)
    std::memcpy(path.source.bytes.data(), &reinterpret_cast<sockaddr_in*>(&local)->sin_addr, 4);
  else
    std::memcpy(path.source.bytes.data(), &reinterpret_cast<sockaddr_in6*>(&local)->sin6_addr, 16);

  for (int attempt = 0; attempt < 20; ++attempt) {
    auto mac = neighbour_mac(path.ifindex, path.next_hop);
    if (!mac) return tl::unexpected(mac.error());
    if (*mac) {
      path.next_hop_mac = **mac;
      break;
    }
    if (attempt == 0) (void)send(udp.fd, "", 0, 0);
    if (attempt == 19)
      return fail("no neighbour entry for ", to_string(path.next_hop), " on ", interface,
                  " after 1 s");
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }

  ifreq request{};
  std::strncpy(request.ifr_name, interface.c_str(), IFNAMSIZ - 1);
  if (ioctl(udp.fd, SIOCGIFHWADDR, &request) != 0)
    return fail("cannot read the MAC of ", interface, ": ", std::strerror(errno));
  std::memcpy(path.source_mac.data(), request.ifr_hwaddr.sa_data, 6);
  return path;
}

}  // namespace dnsproxy::loadgen
