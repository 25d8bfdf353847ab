// The worker loop over an in-memory packet I/O backend: a second implementation of the
// xsk::PacketIo concept with a real FramePool, so frame ownership is checked exactly as with
// AF_XDP. The AF_XDP backend itself is covered end to end (test/e2e).
#include "datapath/worker.h"

#include <gtest/gtest.h>

#include <cstring>
#include <deque>
#include <vector>

namespace dnsproxy::datapath {
namespace {

constexpr uint32_t kFrameSize = 2048;
constexpr uint32_t kHeadroom = 256;  // where the kernel puts the packet in a frame

class MemoryPacketIo {
 public:
  MemoryPacketIo(std::vector<uint32_t> port_ifindex, uint32_t tx_capacity)
      : pool_(64, kFrameSize),
        memory_(size_t{64} * kFrameSize),
        port_ifindex_(std::move(port_ifindex)),
        rx_(port_ifindex_.size()),
        sent_(port_ifindex_.size()),
        tx_capacity_(tx_capacity) {}

  // Puts a packet (with its metadata in front) on a port's RX queue, as the kernel would.
  void inject(size_t port, const std::vector<std::byte>& packet, const dns_steer_meta& meta) {
    std::array<uint64_t, 1> frame{};
    ASSERT_EQ(pool_.allocate(frame, xsk::FramePlace::kKernelRx), 1u);
    const uint64_t addr = frame[0] + kHeadroom;
    std::memcpy(memory_.data() + addr - sizeof(meta), &meta, sizeof(meta));
    std::memcpy(memory_.data() + addr, packet.data(), packet.size());
    rx_[port].push_back(xsk::Packet{addr, static_cast<uint32_t>(packet.size())});
  }
  // Completes every sent frame, as the kernel does after transmission.
  void complete_all() {
    for (auto& port : sent_)
      for (const xsk::Packet& packet : port) pool_.release(packet.addr, xsk::FramePlace::kKernelTx);
  }

  size_t port_count() const noexcept { return port_ifindex_.size(); }
  int port_for_ifindex(uint32_t ifindex) const noexcept {
    for (size_t i = 0; i < port_ifindex_.size(); ++i)
      if (port_ifindex_[i] == ifindex) return static_cast<int>(i);
    return -1;
  }
  void service() noexcept {}
  uint32_t receive(size_t port, std::span<xsk::Packet> out) noexcept {
    uint32_t n = 0;
    while (n < out.size() && !rx_[port].empty()) {
      out[n] = rx_[port].front();
      rx_[port].pop_front();
      pool_.move(out[n++].addr, xsk::FramePlace::kKernelRx, xsk::FramePlace::kWorker);
    }
    return n;
  }
  uint32_t transmit(size_t port, std::span<const xsk::Packet> packets) noexcept {
    uint32_t n = 0;
    for (; n < packets.size() && tx_capacity_ > 0; ++n, --tx_capacity_) {
      pool_.move(packets[n].addr, xsk::FramePlace::kWorker, xsk::FramePlace::kKernelTx);
      sent_[port].push_back(packets[n]);
    }
    return n;
  }
  void release(xsk::Packet packet) noexcept {
    pool_.release(packet.addr, xsk::FramePlace::kWorker);
  }
  std::span<std::byte> bytes(xsk::Packet packet) noexcept {
    return {memory_.data() + packet.addr, packet.len};
  }
  void flush() noexcept {}
  void wait_for_packets(int) noexcept {}
  uint64_t frames_in_worker() const noexcept { return pool_.count(xsk::FramePlace::kWorker); }

  const std::vector<xsk::Packet>& sent(size_t port) const { return sent_[port]; }
  const xsk::FramePool& pool() const { return pool_; }

 private:
  xsk::FramePool pool_;
  std::vector<std::byte> memory_;
  std::vector<uint32_t> port_ifindex_;
  std::vector<std::deque<xsk::Packet>> rx_;
  std::vector<std::vector<xsk::Packet>> sent_;
  uint32_t tx_capacity_;
};
static_assert(xsk::PacketIo<MemoryPacketIo>);

std::vector<std::byte> ipv4_query() {
  const uint8_t raw[] = {2,    0,    0,   0,  0,   2,  2,    0,    0,  0,  0, 1,  0x08, 0x00,
                         0x45, 0,    0,   40, 0,   1,  0x40, 0,    64, 17, 0, 0,  192,  0,
                         2,    10,   198, 51, 100, 53, 0x30, 0x39, 0,  53, 0, 20, 0,    0,
                         0xab, 0xcd, 1,   0,  0,   1,  0,    0,    0,  0,  0, 0};
  std::vector<std::byte> out(sizeof(raw));
  std::memcpy(out.data(), raw, sizeof(raw));
  return out;
}

dns_steer_meta meta_to(uint32_t ifindex, uint8_t fib_status = DNS_STEER_FIB_OK) {
  dns_steer_meta meta{};
  meta.egress_ifindex = ifindex;
  meta.l3_offset = 14;
  meta.dns_offset = 42;
  meta.fib_status = fib_status;
  return meta;
}

TEST(WorkerTest, ForwardsToTheEgressPortAndAccountsForEveryFrame) {
  MemoryPacketIo io({10, 20}, 64);
  ForwardAllHandler handler;
  WorkerCounters counters;
  Worker worker(io, handler, counters, WorkerConfig{.batch_size = 4});
  for (int i = 0; i < 6; ++i)
    io.inject(0, ipv4_query(), meta_to(20));  // queries: in on 10, out on 20
  io.inject(1, ipv4_query(), meta_to(10));    // a response the other way

  EXPECT_EQ(worker.run_once(), 5u);  // 4 from port 0 (one batch), 1 from port 1
  EXPECT_EQ(worker.run_once(), 2u);
  EXPECT_EQ(io.sent(1).size(), 6u);
  EXPECT_EQ(io.sent(0).size(), 1u);
  EXPECT_EQ(counters.tx_packets.get(), 7u);
  EXPECT_EQ(counters.leaked_frames.get(), 0u);
  EXPECT_EQ(std::to_integer<int>(io.bytes(io.sent(1)[0])[22]), 63);  // TTL decremented

  io.complete_all();
  const xsk::FrameCounts frames = io.pool().snapshot();
  EXPECT_TRUE(frames.consistent());
  EXPECT_EQ(frames.at(xsk::FramePlace::kFree), frames.total);
}

TEST(WorkerTest, EveryDropHasItsReasonAndReturnsTheFrame) {
  MemoryPacketIo io({10, 20}, 1);  // TX takes one packet, then is full
  ForwardAllHandler handler;
  WorkerCounters counters;
  Worker worker(io, handler, counters, WorkerConfig{.batch_size = 8});
  io.inject(0, ipv4_query(), meta_to(20, DNS_STEER_FIB_NOT_FORWARDED));
  io.inject(0, ipv4_query(), meta_to(99));  // no socket for ifindex 99 in this worker
  io.inject(0, ipv4_query(), meta_to(20));
  io.inject(0, ipv4_query(), meta_to(20));  // TX ring full by now

  EXPECT_EQ(worker.run_once(), 4u);
  EXPECT_EQ(counters.drop(DropReason::kNotForwarded), 1u);
  EXPECT_EQ(counters.drop(DropReason::kNoEgressPort), 1u);
  EXPECT_EQ(counters.drop(DropReason::kTxRingFull), 1u);
  EXPECT_EQ(counters.tx_packets.get(), 1u);
  EXPECT_EQ(counters.leaked_frames.get(), 0u);
  const xsk::FrameCounts frames = io.pool().snapshot();
  EXPECT_TRUE(frames.consistent());
  EXPECT_EQ(frames.at(xsk::FramePlace::kKernelTx), 1u);
  EXPECT_EQ(frames.at(xsk::FramePlace::kFree), frames.total - 1);
}

// A frame taken off a ring and never handed on (a bug in a backend or a handler) stays in the
// worker's hands after the iteration: the leak counter sees it.
TEST(WorkerTest, AFrameLeftInTheWorkersHandsIsCountedAsLeaked) {
  MemoryPacketIo io({10}, 64);
  ForwardAllHandler handler;
  WorkerCounters counters;
  Worker worker(io, handler, counters, WorkerConfig{.batch_size = 4});
  io.inject(0, ipv4_query(), meta_to(10));
  std::array<xsk::Packet, 1> stolen{};
  ASSERT_EQ(io.receive(0, stolen), 1u);  // taken out behind the worker's back, never returned
  (void)worker.run_once();
  EXPECT_EQ(counters.leaked_frames.get(), 1u);
  (void)worker.run_once();  // still one frame leaked, not one more per iteration
  EXPECT_EQ(counters.leaked_frames.get(), 1u);
}

}  // namespace
}  // namespace dnsproxy::datapath
