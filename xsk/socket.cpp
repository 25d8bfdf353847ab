#include "xsk/socket.h"

#include <linux/ethtool.h>
#include <linux/if_xdp.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>

namespace dnsproxy::xsk {

Result<BindMode> parse_bind_mode(std::string_view text) {
  if (text == "auto") return BindMode::kAuto;
  if (text == "zerocopy") return BindMode::kZeroCopy;
  if (text == "copy") return BindMode::kCopy;
  return fail("unsupported AF_XDP bind mode '", std::string(text),
              "' (use auto, zerocopy or copy)");
}

Result<uint32_t> receive_queue_count(const std::string& interface) {
  if (interface.size() >= IFNAMSIZ) return fail("interface name ", interface, " is too long");
  const int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return fail("cannot open a socket to query ", interface, ": ", std::strerror(errno));
  ethtool_channels channels{};
  channels.cmd = ETHTOOL_GCHANNELS;
  ifreq request{};
  std::memcpy(request.ifr_name, interface.c_str(), interface.size() + 1);
  request.ifr_data = reinterpret_cast<char*>(&channels);
  const int rc = ioctl(fd, SIOCETHTOOL, &request);
  const int err = errno;
  close(fd);
  if (rc != 0) {
    if (err == EOPNOTSUPP) return 1u;
    if (err == ENODEV) return fail("interface ", interface, " not found");
    return fail("cannot read the channels of ", interface, ": ", std::strerror(err));
  }
  return std::max({channels.combined_count, channels.rx_count, 1u});
}

namespace {

// Whether (interface, queue) binds in zero-copy mode, tried on a small throwaway UMEM: a failed
// bind leaves libxdp's ring setup on the real UMEM's first socket unusable for a retry.
bool zero_copy_binds(const SocketConfig& config) {
  auto probe_umem =
      Umem::create(UmemConfig{.frame_count = 64, .frame_size = 2048, .ring_size = 64});
  if (!probe_umem) return false;
  SocketConfig probe = config;
  probe.bind_mode = BindMode::kZeroCopy;
  probe.ring_size = 64;
  probe.busy_poll = false;
  return Socket::create(**probe_umem, probe).has_value();
}

}  // namespace

Socket::Socket(Umem& umem, SocketConfig config)
    : umem_(umem), pool_(umem.pool()), config_(std::move(config)), fill_share_(config_.ring_size) {}

Result<std::unique_ptr<Socket>> Socket::create(Umem& umem, const SocketConfig& config) {
  std::unique_ptr<Socket> socket(new Socket(umem, config));
  socket->ifindex_ = if_nametoindex(config.interface.c_str());
  if (socket->ifindex_ == 0) return fail("interface ", config.interface, " not found");

  BindMode mode = config.bind_mode;
  if (mode == BindMode::kAuto)
    mode = zero_copy_binds(config) ? BindMode::kZeroCopy : BindMode::kCopy;
  const uint16_t flags =
      XDP_USE_NEED_WAKEUP | (mode == BindMode::kZeroCopy ? XDP_ZEROCOPY : XDP_COPY);
  if (auto bound = socket->bind(flags); !bound) return tl::unexpected(bound.error());
  if (config.busy_poll) {
    if (auto enabled = socket->enable_busy_poll(); !enabled) return tl::unexpected(enabled.error());
  }

  xdp_options options{};
  socklen_t length = sizeof(options);
  if (getsockopt(socket->fd(), SOL_XDP, XDP_OPTIONS, &options, &length) == 0)
    socket->zero_copy_ = (options.flags & XDP_OPTIONS_ZEROCOPY) != 0;
  return socket;
}

Result<void> Socket::bind(uint16_t bind_flags) {
  const xsk_socket_config socket_config{.rx_size = config_.ring_size,
                                        .tx_size = config_.ring_size,
                                        .libxdp_flags = XSK_LIBXDP_FLAGS__INHIBIT_PROG_LOAD,
                                        .xdp_flags = 0,
                                        .bind_flags = bind_flags};
  // Every socket gets its own fill and completion rings: libxdp hands the UMEM's initial pair to
  // the first socket and creates new ones for the others (XDP_SHARED_UMEM).
  const int err =
      xsk_socket__create_shared(&xsk_, config_.interface.c_str(), config_.queue, umem_.handle(),
                                &rx_, &tx_, &fill_, &completion_, &socket_config);
  if (err == 0) return {};
  xsk_ = nullptr;
  const char* mode = (bind_flags & XDP_ZEROCOPY) != 0 ? "zero-copy" : "copy";
  std::string why = std::string("cannot bind an AF_XDP socket to ") + config_.interface +
                    " queue " + std::to_string(config_.queue) + " in " + mode +
                    " mode: " + std::strerror(-err);
  if (err == -EOPNOTSUPP && (bind_flags & XDP_ZEROCOPY) != 0)
    why += " (the driver has no zero-copy support: use --bind-mode copy or auto)";
  if (err == -EINVAL) why += " (does the interface have that queue? see ethtool -l)";
  return tl::unexpected(Error{std::move(why)});
}

Result<void> Socket::enable_busy_poll() {
  const int prefer = 1;
  const int usecs = 20;
  const int budget = static_cast<int>(config_.busy_poll_budget);
  if (setsockopt(fd(), SOL_SOCKET, SO_PREFER_BUSY_POLL, &prefer, sizeof(prefer)) != 0 ||
      setsockopt(fd(), SOL_SOCKET, SO_BUSY_POLL, &usecs, sizeof(usecs)) != 0 ||
      setsockopt(fd(), SOL_SOCKET, SO_BUSY_POLL_BUDGET, &budget, sizeof(budget)) != 0)
    return fail("cannot enable busy polling on ", config_.interface, ": ", std::strerror(errno));
  return {};
}

Socket::~Socket() {
  if (xsk_ != nullptr) xsk_socket__delete(xsk_);
}

int Socket::fd() const noexcept {
  return xsk_socket__fd(xsk_);
}

uint32_t Socket::refill() noexcept {
  if (rx_held_ >= fill_share_) return 0;
  const uint32_t wanted =
      std::min({pool_.free_count(), xsk_prod_nb_free(&fill_, fill_.size), fill_share_ - rx_held_});
  if (wanted == 0) return 0;
  uint32_t index = 0;
  const uint32_t reserved = xsk_ring_prod__reserve(&fill_, wanted, &index);
  uint32_t done = 0;
  std::array<uint64_t, 64> chunk;
  while (done < reserved) {
    const uint32_t n =
        pool_.allocate(std::span(chunk).first(std::min<size_t>(chunk.size(), reserved - done)),
                       FramePlace::kKernelRx);
    for (uint32_t i = 0; i < n; ++i) *xsk_ring_prod__fill_addr(&fill_, index + done + i) = chunk[i];
    done += n;
  }
  xsk_ring_prod__submit(&fill_, reserved);
  rx_held_ += reserved;
  return reserved;
}

uint32_t Socket::receive(std::span<Packet> out) noexcept {
  uint32_t index = 0;
  const uint32_t n = xsk_ring_cons__peek(&rx_, static_cast<uint32_t>(out.size()), &index);
  for (uint32_t i = 0; i < n; ++i) {
    const xdp_desc* desc = xsk_ring_cons__rx_desc(&rx_, index + i);
    out[i] = Packet{desc->addr, desc->len};
    pool_.move(desc->addr, FramePlace::kKernelRx, FramePlace::kWorker);
  }
  if (n > 0) xsk_ring_cons__release(&rx_, n);
  rx_held_ -= n;
  return n;
}

uint32_t Socket::transmit(std::span<const Packet> packets) noexcept {
  if (packets.empty()) return 0;
  uint32_t index = 0;
  const uint32_t free = xsk_prod_nb_free(&tx_, static_cast<uint32_t>(packets.size()));
  const uint32_t n = xsk_ring_prod__reserve(
      &tx_, std::min<uint32_t>(free, static_cast<uint32_t>(packets.size())), &index);
  for (uint32_t i = 0; i < n; ++i) {
    xdp_desc* desc = xsk_ring_prod__tx_desc(&tx_, index + i);
    desc->addr = packets[i].addr;
    desc->len = packets[i].len;
    desc->options = 0;
    pool_.move(packets[i].addr, FramePlace::kWorker, FramePlace::kKernelTx);
  }
  if (n > 0) xsk_ring_prod__submit(&tx_, n);
  tx_outstanding_ += n;
  return n;
}

uint32_t Socket::reclaim_completions() noexcept {
  uint32_t index = 0;
  const uint32_t n = xsk_ring_cons__peek(&completion_, completion_.size, &index);
  for (uint32_t i = 0; i < n; ++i)
    pool_.release(*xsk_ring_cons__comp_addr(&completion_, index + i), FramePlace::kKernelTx);
  if (n > 0) xsk_ring_cons__release(&completion_, n);
  tx_outstanding_ -= n;
  return n;
}

void Socket::kick_tx() noexcept {
  if (tx_outstanding_ == 0 || xsk_ring_prod__needs_wakeup(&tx_) == 0) return;
  // In copy mode one sendto() transmits at most 32 descriptors (the kernel's TX batch) and says
  // EAGAIN while more are queued: repeat until the ring is drained, or a bounded number of times
  // (EAGAIN also means "completion ring full": the next iteration reclaims and kicks again).
  // EBUSY / ENOBUFS / ENETDOWN: try again on the next iteration.
  const uint32_t max_kicks = tx_.size / 32 + 1;
  for (uint32_t kick = 0; kick < max_kicks; ++kick) {
    if (sendto(fd(), nullptr, 0, MSG_DONTWAIT, nullptr, 0) >= 0 || errno != EAGAIN) return;
  }
}

void Socket::wake_rx() noexcept {
  if (xsk_ring_prod__needs_wakeup(&fill_) != 0)
    (void)recvfrom(fd(), nullptr, 0, MSG_DONTWAIT, nullptr, nullptr);
}

Socket::KernelStats Socket::kernel_stats() const noexcept {
  xdp_statistics stats{};
  socklen_t length = sizeof(stats);
  if (getsockopt(fd(), SOL_XDP, XDP_STATISTICS, &stats, &length) != 0) return {};
  return KernelStats{stats.rx_dropped,   stats.rx_invalid_descs,         stats.tx_invalid_descs,
                     stats.rx_ring_full, stats.rx_fill_ring_empty_descs, stats.tx_ring_empty_descs};
}

}  // namespace dnsproxy::xsk
