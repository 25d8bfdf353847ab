// IP addresses and prefixes as the policy tables key them: one type for IPv4 and IPv6, so a
// worker never branches on the family before a lookup.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>

#include "common/result.h"

namespace dnsproxy::policy {

// Values match AF_INET / AF_INET6 and DNSPROXY_FAMILY_* in datapath/bpf/dnsproxy_abi.h.
enum class Family : uint8_t { kV4 = 2, kV6 = 10 };

struct IpAddress {
  Family family = Family::kV4;
  std::array<uint8_t, 16> bytes{};  // network order; IPv4 in bytes[0..3], the rest zero

  [[nodiscard]] static IpAddress v4(std::span<const uint8_t, 4> addr) noexcept {
    IpAddress a;
    std::memcpy(a.bytes.data(), addr.data(), 4);
    return a;
  }
  [[nodiscard]] static IpAddress v6(std::span<const uint8_t, 16> addr) noexcept {
    IpAddress a;
    a.family = Family::kV6;
    std::memcpy(a.bytes.data(), addr.data(), 16);
    return a;
  }
  // "192.0.2.1" or "2001:db8::1" (cold path).
  [[nodiscard]] static Result<IpAddress> parse(std::string_view text);

  [[nodiscard]] unsigned max_prefix_length() const noexcept {
    return family == Family::kV4 ? 32 : 128;
  }
  [[nodiscard]] std::string to_string() const;

  friend auto operator<=>(const IpAddress&, const IpAddress&) = default;
};

struct IpPrefix {
  IpAddress address;  // host bits are zero
  uint8_t length = 0;

  // "10.0.0.0/8", "2001:db8::/32"; a bare address is a host prefix. Host bits set is an error
  // (a typo in a CIDR should not silently widen or narrow it).
  [[nodiscard]] static Result<IpPrefix> parse(std::string_view text);
  [[nodiscard]] std::string to_string() const;

  friend auto operator<=>(const IpPrefix&, const IpPrefix&) = default;
};

}  // namespace dnsproxy::policy
