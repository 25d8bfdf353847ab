#include "xsk/packet_io.h"

#include <sys/socket.h>

#include <chrono>

namespace dnsproxy::xsk {

Result<std::unique_ptr<XskPacketIo>> XskPacketIo::create(std::unique_ptr<Umem> umem,
                                                         std::span<const SocketConfig> sockets) {
  std::unique_ptr<XskPacketIo> io(new XskPacketIo(std::move(umem)));
  for (const SocketConfig& config : sockets) {
    auto socket = Socket::create(*io->umem_, config);
    if (!socket) return tl::unexpected(socket.error());
    io->poll_fds_.push_back(pollfd{.fd = (*socket)->fd(), .events = POLLIN, .revents = 0});
    io->busy_poll_ = io->busy_poll_ || config.busy_poll;
    io->sockets_.push_back(std::move(*socket));
  }
  io->poll_fds_.push_back(pollfd{.fd = -1, .events = POLLIN, .revents = 0});  // the wake fd
  io->port_counters_ = std::make_unique<PortCounters[]>(io->sockets_.size());
  // Fair share: every socket may hold frame_count / sockets frames in its fill and RX rings (at
  // most its ring size); what the shares leave over stays free for TX.
  const uint32_t share = fill_share(io->umem_->config().frame_count, io->sockets_.size());
  for (auto& socket : io->sockets_) socket->set_fill_share(share);
  return io;
}

XskPacketIo::~XskPacketIo() {
  // Sockets first: the kernel keeps the UMEM registered while a socket is bound to it.
  sockets_.clear();
}

int XskPacketIo::port_for_ifindex(uint32_t ifindex) const noexcept {
  for (size_t port = 0; port < sockets_.size(); ++port)
    if (sockets_[port]->ifindex() == ifindex) return static_cast<int>(port);
  return -1;
}

void XskPacketIo::service() noexcept {
  for (auto& socket : sockets_) socket->reclaim_completions();
  for (auto& socket : sockets_) {
    (void)socket->refill();
    socket->wake_rx();
  }
}

void XskPacketIo::flush() noexcept {
  for (auto& socket : sockets_) socket->kick_tx();
}

void XskPacketIo::wait_for_packets(int timeout_ms, int wake_fd) noexcept {
  if (busy_poll_) {
    for (auto& socket : sockets_)
      (void)recvfrom(socket->fd(), nullptr, 0, MSG_DONTWAIT, nullptr, nullptr);
    return;
  }
  poll_fds_.back().fd = wake_fd;  // poll() ignores a negative fd
  (void)poll(poll_fds_.data(), poll_fds_.size(), timeout_ms);
}

bool XskPacketIo::drain_tx(int timeout_ms) noexcept {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    uint32_t outstanding = 0;
    for (auto& socket : sockets_) {
      socket->kick_tx();
      socket->reclaim_completions();
      outstanding += socket->tx_outstanding();
    }
    if (outstanding == 0) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    (void)poll(nullptr, 0, 1);
  }
}

}  // namespace dnsproxy::xsk
