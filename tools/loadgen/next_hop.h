// Where dnsproxy-loadgen's packets go: the source address the kernel would pick for the server,
// the interface's own MAC and the next hop's MAC from the kernel's neighbour table (rtnetlink),
// so the load generator builds frames exactly as the namespace's own stack would.
#pragma once

#include <netinet/in.h>

#include <array>
#include <cstdint>
#include <string>

#include "common/result.h"

namespace dnsproxy::loadgen {

struct IpAddress {
  int family = AF_INET;             // AF_INET or AF_INET6
  std::array<uint8_t, 16> bytes{};  // network order; IPv4 in the first 4
  [[nodiscard]] size_t size() const noexcept { return family == AF_INET ? 4 : 16; }
  bool operator==(const IpAddress&) const = default;
};

// "198.51.100.53" or "2001:db8:5::53".
[[nodiscard]] Result<IpAddress> parse_ip(const std::string& text);
[[nodiscard]] std::string to_string(const IpAddress& address);

struct Path {
  uint32_t ifindex = 0;
  IpAddress source;
  IpAddress next_hop;  // the gateway, or the server itself when it is on link
  std::array<uint8_t, 6> source_mac{};
  std::array<uint8_t, 6> next_hop_mac{};
};

// The route to `server` must leave through `interface`. A missing neighbour entry is resolved by
// sending one empty UDP datagram to the server's discard port through the kernel and waiting up
// to a second for the entry.
[[nodiscard]] Result<Path> resolve_path(const std::string& interface, const IpAddress& server);

}  // namespace dnsproxy::loadgen
