#include "test/datapath/test_xsk.h"

#include <poll.h>
#include <sys/mman.h>
#include <xdp/xsk.h>

#include <cerrno>
#include <cstring>

namespace dnsproxy::datapath::test {
namespace {

constexpr uint32_t kFrames = 64;
constexpr uint32_t kFrameSize = XSK_UMEM__DEFAULT_FRAME_SIZE;
constexpr uint32_t kRingSize = 64;

}  // namespace

struct TestXsk::Rings {
  xsk_ring_prod fill{};
  xsk_ring_cons completion{};
  xsk_ring_cons rx{};
  xsk_ring_prod tx{};
};

TestXsk::TestXsk() : rings_(std::make_unique<Rings>()) {}

Result<std::unique_ptr<TestXsk>> TestXsk::create(const std::string& ifname, uint32_t queue) {
  std::unique_ptr<TestXsk> xsk(new TestXsk());
  const size_t size = size_t{kFrames} * kFrameSize;
  void* buffer = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (buffer == MAP_FAILED) return fail("mmap UMEM: ", std::strerror(errno));
  xsk->buffer_ = buffer;
  const xsk_umem_config umem_config{.fill_size = kRingSize,
                                    .comp_size = kRingSize,
                                    .frame_size = kFrameSize,
                                    .frame_headroom = 0,
                                    .flags = 0};
  if (int err = xsk_umem__create(&xsk->umem_, buffer, size, &xsk->rings_->fill,
                                 &xsk->rings_->completion, &umem_config);
      err != 0) {
    return fail("xsk_umem__create: ", std::strerror(-err));
  }
  xsk_socket_config config{};
  config.rx_size = kRingSize;
  config.tx_size = kRingSize;
  config.libxdp_flags = XSK_LIBXDP_FLAGS__INHIBIT_PROG_LOAD;
  config.bind_flags = XDP_COPY;
  if (int err = xsk_socket__create(&xsk->socket_, ifname.c_str(), queue, xsk->umem_,
                                   &xsk->rings_->rx, &xsk->rings_->tx, &config);
      err != 0) {
    return fail("xsk_socket__create on ", ifname, " queue ", std::to_string(queue), ": ",
                std::strerror(-err));
  }
  // Hand every frame to the kernel for receiving.
  uint32_t index = 0;
  if (xsk_ring_prod__reserve(&xsk->rings_->fill, kRingSize, &index) != kRingSize) {
    return fail("fill ring reservation failed");
  }
  for (uint32_t i = 0; i < kRingSize; ++i) {
    *xsk_ring_prod__fill_addr(&xsk->rings_->fill, index + i) = uint64_t{i} * kFrameSize;
  }
  xsk_ring_prod__submit(&xsk->rings_->fill, kRingSize);
  return xsk;
}

TestXsk::~TestXsk() {
  if (socket_) xsk_socket__delete(socket_);
  if (umem_) xsk_umem__delete(umem_);
  if (buffer_) munmap(buffer_, size_t{kFrames} * kFrameSize);
}

int TestXsk::fd() const {
  return xsk_socket__fd(socket_);
}

std::optional<ReceivedFrame> TestXsk::receive(int timeout_ms) {
  pollfd wait{.fd = fd(), .events = POLLIN, .revents = 0};
  if (poll(&wait, 1, timeout_ms) <= 0) return std::nullopt;
  uint32_t index = 0;
  if (xsk_ring_cons__peek(&rings_->rx, 1, &index) != 1) return std::nullopt;
  const xdp_desc* desc = xsk_ring_cons__rx_desc(&rings_->rx, index);
  const auto* data = static_cast<const uint8_t*>(xsk_umem__get_data(buffer_, desc->addr));
  ReceivedFrame received;
  received.frame.assign(data, data + desc->len);
  std::memcpy(&received.meta, data - sizeof(dns_steer_meta), sizeof(dns_steer_meta));
  xsk_ring_cons__release(&rings_->rx, 1);
  return received;
}

}  // namespace dnsproxy::datapath::test
