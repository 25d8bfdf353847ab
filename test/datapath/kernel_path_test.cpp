// RawKernelPath against the real stack of a namespace of the test's own: an IP packet handed to
// it arrives at a UDP socket of that namespace, as a to_kernel verdict's packet would reach the
// node's stack; a packet that is not a whole IP packet is refused.
#include "datapath/kernel_path.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "test/support/netns.h"
#include "test/support/privileges.h"

namespace dnsproxy::datapath {
namespace {

constexpr uint16_t kPort = 5353;
const std::vector<uint8_t> kPayload = {0xab, 0xcd, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0};

uint16_t fold(uint32_t sum) {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}
uint32_t add_words(const uint8_t* data, size_t n, uint32_t sum = 0) {
  for (size_t i = 0; i + 1 < n; i += 2) sum += uint32_t{data[i]} << 8 | data[i + 1];
  if (n % 2) sum += uint32_t{data[n - 1]} << 8;
  return sum;
}

// IPv4 / UDP from 127.0.0.2:40000 to 127.0.0.1:5353 (UDP checksum 0: none, allowed on IPv4),
// followed by `padding` bytes that are not part of the IP packet (Ethernet padding).
std::vector<std::byte> ipv4_udp(size_t padding) {
  std::vector<uint8_t> p = {0x45, 0, 0, 0, 0,   1, 0x40, 0, 64,   17,   0,          0,
                            127,  0, 0, 2, 127, 0, 0,    1, 0x9c, 0x40, kPort >> 8, kPort & 0xff,
                            0,    0, 0, 0};
  p.insert(p.end(), kPayload.begin(), kPayload.end());
  p[3] = static_cast<uint8_t>(p.size());
  p[25] = static_cast<uint8_t>(8 + kPayload.size());
  p.resize(p.size() + padding, 0xee);
  std::vector<std::byte> out(p.size());
  std::memcpy(out.data(), p.data(), p.size());
  return out;
}

// IPv6 / UDP from ::1 port 40000 to ::1 port 5353 with its (mandatory) checksum.
std::vector<std::byte> ipv6_udp() {
  std::vector<uint8_t> p(40, 0);
  p[0] = 0x60;
  p[5] = static_cast<uint8_t>(8 + kPayload.size());
  p[6] = 17;
  p[7] = 64;
  p[23] = 1;  // source ::1
  p[39] = 1;  // destination ::1
  const std::vector<uint8_t> udp_head = {
      0x9c, 0x40, kPort >> 8, kPort & 0xff, 0, static_cast<uint8_t>(8 + kPayload.size()), 0, 0};
  p.insert(p.end(), udp_head.begin(), udp_head.end());
  p.insert(p.end(), kPayload.begin(), kPayload.end());
  uint32_t sum = add_words(p.data() + 8, 32);  // pseudo header: addresses, length, next header
  sum += 8 + static_cast<uint32_t>(kPayload.size()) + 17;
  const uint16_t checksum = fold(add_words(p.data() + 40, p.size() - 40, sum));
  p[46] = static_cast<uint8_t>(checksum >> 8);
  p[47] = static_cast<uint8_t>(checksum & 0xff);
  std::vector<std::byte> out(p.size());
  std::memcpy(out.data(), p.data(), p.size());
  return out;
}

// A UDP socket on loopback port 5353; returns what one datagram carried (empty after 2 s).
class Receiver {
 public:
  explicit Receiver(int family) : fd_(socket(family, SOCK_DGRAM, 0)) {
    if (family == AF_INET) {
      sockaddr_in addr{};
      addr.sin_family = AF_INET;
      addr.sin_port = htons(kPort);
      addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      bound_ = bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
    } else {
      sockaddr_in6 addr{};
      addr.sin6_family = AF_INET6;
      addr.sin6_port = htons(kPort);
      addr.sin6_addr = in6addr_loopback;
      bound_ = bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
    }
  }
  ~Receiver() { ::close(fd_); }
  bool bound() const { return bound_; }
  std::vector<uint8_t> receive() {
    pollfd pfd{fd_, POLLIN, 0};
    if (poll(&pfd, 1, 2000) != 1) return {};
    std::vector<uint8_t> buffer(2048);
    const ssize_t n = recv(fd_, buffer.data(), buffer.size(), 0);
    buffer.resize(n > 0 ? static_cast<size_t>(n) : 0);
    return buffer;
  }

 private:
  int fd_;
  bool bound_ = false;
};

class KernelPathTest : public ::testing::Test {
 protected:
  void SetUp() override {
    DNSPROXY_REQUIRE_PRIVILEGES();
    auto ns = test::NetNs::create("kpath");
    ASSERT_TRUE(ns) << ns.error().message;
    ns_.emplace(std::move(*ns));
    auto inside = test::ScopedNetns::enter(*ns_);
    ASSERT_TRUE(inside) << inside.error().message;
    inside_ = std::move(*inside);
  }
  void TearDown() override {
    inside_.reset();
    ns_.reset();
  }
  std::optional<test::NetNs> ns_;
  std::unique_ptr<test::ScopedNetns> inside_;
};

TEST_F(KernelPathTest, AnIpv4PacketWithEthernetPaddingReachesTheStack) {
  Receiver receiver(AF_INET);
  ASSERT_TRUE(receiver.bound());
  auto kernel = RawKernelPath::open();
  ASSERT_TRUE(kernel) << kernel.error().message;
  EXPECT_TRUE(kernel->send(ipv4_udp(6)));
  EXPECT_EQ(receiver.receive(), kPayload);
}

TEST_F(KernelPathTest, AnIpv6PacketReachesTheStack) {
  Receiver receiver(AF_INET6);
  ASSERT_TRUE(receiver.bound());
  auto kernel = RawKernelPath::open();
  ASSERT_TRUE(kernel) << kernel.error().message;
  EXPECT_TRUE(kernel->send(ipv6_udp()));
  EXPECT_EQ(receiver.receive(), kPayload);
}

TEST_F(KernelPathTest, WhatIsNotAWholeIpPacketIsRefused) {
  auto kernel = RawKernelPath::open();
  ASSERT_TRUE(kernel) << kernel.error().message;
  const std::vector<std::byte> v4 = ipv4_udp(0);
  const std::vector<std::byte> v6 = ipv6_udp();
  EXPECT_FALSE(kernel->send({}));
  EXPECT_FALSE(kernel->send(std::span(v4).first(19)));             // shorter than the header
  EXPECT_FALSE(kernel->send(std::span(v4).first(v4.size() - 1)));  // shorter than its length
  EXPECT_FALSE(kernel->send(std::span(v6).first(v6.size() - 1)));
  std::vector<std::byte> v5 = v4;
  v5[0] = std::byte{0x55};  // IP version 5
  EXPECT_FALSE(kernel->send(v5));
}

}  // namespace
}  // namespace dnsproxy::datapath
