// RawKernelPath: the worker's way into the node's own network stack (the KernelPath concept of
// datapath/packet_io.h). Two raw sockets with a caller-built IP header (IPPROTO_RAW, which implies
// IP_HDRINCL; IPV6_HDRINCL for IPv6), opened in the node's network namespace at setup. The kernel
// routes the packet as if the node sent it: it resolves the next-hop neighbour (queuing the packet
// meanwhile), which is what a packet whose FIB lookup in XDP found no neighbour needs.
//
// send() copies the bytes into the kernel; the caller keeps (and then frees) its frame. One
// RawKernelPath may be shared by every worker: sendto() on a raw socket is thread-safe.
#pragma once

#include <cstddef>
#include <span>

#include "common/result.h"

namespace dnsproxy::datapath {

class RawKernelPath {
 public:
  // Needs CAP_NET_RAW in the calling thread's network namespace.
  [[nodiscard]] static Result<RawKernelPath> open();
  RawKernelPath(RawKernelPath&& other) noexcept;
  RawKernelPath& operator=(RawKernelPath&&) = delete;
  RawKernelPath(const RawKernelPath&) = delete;
  ~RawKernelPath();

  // `ip_packet` starts at an IPv4 or IPv6 header; what follows the IP packet's own length (e.g.
  // Ethernet padding) is not sent. Non-blocking: false when the packet is not a whole IP packet or
  // the kernel refused it (no buffer space, no route, ...).
  [[nodiscard]] bool send(std::span<const std::byte> ip_packet) noexcept;

 private:
  RawKernelPath(int fd4, int fd6) noexcept : fd4_(fd4), fd6_(fd6) {}
  int fd4_ = -1;
  int fd6_ = -1;
};

}  // namespace dnsproxy::datapath
