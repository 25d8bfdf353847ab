#include "datapath/kernel_path.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <utility>

#include "datapath/packet_io.h"

namespace dnsproxy::datapath {

static_assert(KernelPath<RawKernelPath>);

Result<RawKernelPath> RawKernelPath::open() {
  const int fd4 = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, IPPROTO_RAW);
  if (fd4 < 0) return fail("cannot open a raw IPv4 socket: ", std::strerror(errno));
  const int fd6 = socket(AF_INET6, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK, IPPROTO_RAW);
  if (fd6 < 0) {
    const int err = errno;
    ::close(fd4);
    return fail("cannot open a raw IPv6 socket: ", std::strerror(err));
  }
  const int on = 1;
  if (setsockopt(fd6, IPPROTO_IPV6, IPV6_HDRINCL, &on, sizeof(on)) != 0) {
    const int err = errno;
    ::close(fd4);
    ::close(fd6);
    return fail("cannot set IPV6_HDRINCL: ", std::strerror(err));
  }
  return RawKernelPath(fd4, fd6);
}

RawKernelPath::RawKernelPath(RawKernelPath&& other) noexcept
    : fd4_(std::exchange(other.fd4_, -1)), fd6_(std::exchange(other.fd6_, -1)) {}

RawKernelPath::~RawKernelPath() {
  if (fd4_ >= 0) ::close(fd4_);
  if (fd6_ >= 0) ::close(fd6_);
}

bool RawKernelPath::send(std::span<const std::byte> ip) noexcept {
  if (ip.empty()) return false;
  const auto byte = [&](size_t i) { return std::to_integer<uint8_t>(ip[i]); };
  const uint8_t version = byte(0) >> 4;
  if (version == 4) {
    if (ip.size() < 20) return false;
    const size_t length = size_t{byte(2)} << 8 | byte(3);
    if (length < 20 || length > ip.size()) return false;
    sockaddr_in to{};
    to.sin_family = AF_INET;
    std::memcpy(&to.sin_addr, ip.data() + 16, 4);
    return sendto(fd4_, ip.data(), length, MSG_DONTWAIT, reinterpret_cast<const sockaddr*>(&to),
                  sizeof(to)) == static_cast<ssize_t>(length);
  }
  if (version == 6) {
    if (ip.size() < 40) return false;
    const size_t length = 40 + (size_t{byte(4)} << 8 | byte(5));
    if (length > ip.size()) return false;
    sockaddr_in6 to{};
    to.sin6_family = AF_INET6;
    std::memcpy(&to.sin6_addr, ip.data() + 24, 16);
    return sendto(fd6_, ip.data(), length, MSG_DONTWAIT, reinterpret_cast<const sockaddr*>(&to),
                  sizeof(to)) == static_cast<ssize_t>(length);
  }
  return false;
}

}  // namespace dnsproxy::datapath
