#include "policy/ip_address.h"

#include <arpa/inet.h>

#include <charconv>

namespace dnsproxy::policy {

Result<IpAddress> IpAddress::parse(std::string_view text) {
  const std::string s(text);
  IpAddress a;
  if (inet_pton(AF_INET, s.c_str(), a.bytes.data()) == 1) return a;
  a.family = Family::kV6;
  if (inet_pton(AF_INET6, s.c_str(), a.bytes.data()) == 1) return a;
  return fail("\"", s, "\" is not an IPv4 or IPv6 address");
}

std::string IpAddress::to_string() const {
  char buffer[INET6_ADDRSTRLEN] = {};
  inet_ntop(family == Family::kV4 ? AF_INET : AF_INET6, bytes.data(), buffer, sizeof buffer);
  return buffer;
}

Result<IpPrefix> IpPrefix::parse(std::string_view text) {
  const size_t slash = text.find('/');
  auto address = IpAddress::parse(text.substr(0, slash));
  if (!address) return tl::unexpected(address.error());
  IpPrefix prefix{*address, static_cast<uint8_t>(address->max_prefix_length())};
  if (slash != std::string_view::npos) {
    const std::string_view digits = text.substr(slash + 1);
    unsigned length = 0;
    auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), length);
    if (ec != std::errc() || end != digits.data() + digits.size() || digits.empty() ||
        length > address->max_prefix_length()) {
      return fail("\"", std::string(text), "\": prefix length must be 0..",
                  std::to_string(address->max_prefix_length()));
    }
    prefix.length = static_cast<uint8_t>(length);
  }
  for (unsigned bit = prefix.length; bit < address->max_prefix_length(); ++bit) {
    if (prefix.address.bytes[bit / 8] & (0x80 >> (bit % 8)))
      return fail("\"", std::string(text), "\": host bits set beyond the prefix length");
  }
  return prefix;
}

std::string IpPrefix::to_string() const {
  return address.to_string() + "/" + std::to_string(length);
}

}  // namespace dnsproxy::policy
