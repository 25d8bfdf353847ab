// AF_XDP sockets on a real veth pair in a private namespace: shared UMEM, achieved mode, TX and
// completion bringing every frame back, and the errors an operator sees.
#include "xsk/socket.h"

#include <gtest/gtest.h>

#include <cstring>

#include "test/support/netns.h"
#include "test/support/privileges.h"
#include "xsk/packet_io.h"

namespace dnsproxy::xsk {
namespace {

class SocketTest : public ::testing::Test {
 protected:
  void SetUp() override {
    DNSPROXY_REQUIRE_PRIVILEGES();
    auto ns = test::NetNs::create("xsk");
    ASSERT_TRUE(ns) << ns.error().message;
    ns_ = std::make_unique<test::NetNs>(std::move(*ns));
    auto link = test::VethPair::create(
        {.name_a = "xa", .ns_a = ns_.get(), .name_b = "xb", .ns_b = ns_.get()});
    ASSERT_TRUE(link) << link.error().message;
    link_ = std::make_unique<test::VethPair>(std::move(*link));
    auto inside = test::ScopedNetns::enter(*ns_);
    ASSERT_TRUE(inside) << inside.error().message;
    inside_ = std::move(*inside);
  }
  void TearDown() override {
    inside_.reset();
    link_.reset();
    ns_.reset();
  }

  static constexpr UmemConfig kUmem{.frame_count = 256, .frame_size = 2048, .ring_size = 64};
  std::unique_ptr<test::NetNs> ns_;
  std::unique_ptr<test::VethPair> link_;
  std::unique_ptr<test::ScopedNetns> inside_;
};

TEST_F(SocketTest, TwoInterfacesShareOneUmemInCopyMode) {
  const SocketConfig sockets[] = {{.interface = "xa", .ring_size = 64},
                                  {.interface = "xb", .ring_size = 64}};
  auto umem = Umem::create(kUmem);
  ASSERT_TRUE(umem) << umem.error().message;
  auto io = XskPacketIo::create(std::move(*umem), sockets);
  ASSERT_TRUE(io) << io.error().message;
  ASSERT_EQ((*io)->port_count(), 2u);
  // veth has no zero-copy support: auto falls back to copy mode and says so.
  EXPECT_FALSE((*io)->socket(0).zero_copy());
  EXPECT_FALSE((*io)->socket(1).zero_copy());
  EXPECT_EQ((*io)->port_for_ifindex(link_->ifindex_b()), 1);
  EXPECT_EQ((*io)->port_for_ifindex(0), -1);

  (*io)->service();  // fill rings take 64 frames each
  const FrameCounts counts = (*io)->frame_counts();
  EXPECT_EQ(counts.at(FramePlace::kKernelRx), 128u);
  EXPECT_EQ(counts.at(FramePlace::kFree), 128u);
  EXPECT_TRUE(counts.consistent());
}

TEST_F(SocketTest, SocketsSharingAUmemTooSmallForAllRingsGetEqualFillShares) {
  // 96 frames cannot fill two 64-entry rings: each socket gets 48 instead of the first taking 64.
  const SocketConfig sockets[] = {{.interface = "xa", .ring_size = 64},
                                  {.interface = "xb", .ring_size = 64}};
  auto umem = Umem::create(UmemConfig{.frame_count = 96, .frame_size = 2048, .ring_size = 64});
  ASSERT_TRUE(umem) << umem.error().message;
  auto io = XskPacketIo::create(std::move(*umem), sockets);
  ASSERT_TRUE(io) << io.error().message;
  EXPECT_EQ((*io)->socket(0).fill_share(), 48u);
  EXPECT_EQ((*io)->socket(1).fill_share(), 48u);
  EXPECT_EQ((*io)->socket(0).refill(), 48u);
  EXPECT_EQ((*io)->socket(1).refill(), 48u);
  (*io)->service();  // already at their shares: nothing more moves
  const FrameCounts counts = (*io)->frame_counts();
  EXPECT_EQ(counts.at(FramePlace::kKernelRx), 96u);
  EXPECT_TRUE(counts.consistent());
}

TEST_F(SocketTest, TransmittedFramesComeBackThroughTheCompletionRing) {
  auto umem = Umem::create(kUmem);
  ASSERT_TRUE(umem) << umem.error().message;
  auto socket = Socket::create(**umem, {.interface = "xa", .ring_size = 64});
  ASSERT_TRUE(socket) << socket.error().message;
  FramePool& pool = (*umem)->pool();

  // Eight broadcast frames built in place in the UMEM by the worker, then sent.
  std::array<uint64_t, 8> frames{};
  ASSERT_EQ(pool.allocate(frames, FramePlace::kWorker), 8u);
  std::array<Packet, 8> packets{};
  for (size_t i = 0; i < frames.size(); ++i) {
    std::byte* data = (*umem)->data(frames[i]);
    std::memset(data, 0xff, 6);                              // broadcast destination
    std::memset(data + 6, 0x02, 6);                          // locally administered source
    data[12] = std::byte{0x88}, data[13] = std::byte{0xb5};  // local experimental ethertype
    std::memset(data + 14, 0, 46);
    packets[i] = Packet{frames[i], 60};
  }
  ASSERT_EQ((*socket)->transmit(packets), 8u);
  EXPECT_EQ(pool.count(FramePlace::kKernelTx), 8u);
  EXPECT_EQ(pool.count(FramePlace::kWorker), 0u);

  for (int tries = 0; tries < 1000 && (*socket)->tx_outstanding() > 0; ++tries) {
    (*socket)->kick_tx();
    (*socket)->reclaim_completions();
  }
  EXPECT_EQ((*socket)->tx_outstanding(), 0u);
  const FrameCounts counts = pool.snapshot();
  EXPECT_EQ(counts.at(FramePlace::kFree), counts.total);
  EXPECT_TRUE(counts.consistent());
}

TEST_F(SocketTest, AMissingInterfaceIsNamedInTheError) {
  auto umem = Umem::create(kUmem);
  ASSERT_TRUE(umem) << umem.error().message;
  auto socket = Socket::create(**umem, {.interface = "nosuch0", .ring_size = 64});
  ASSERT_FALSE(socket);
  EXPECT_EQ(socket.error().message, "interface nosuch0 not found");
}

TEST_F(SocketTest, ForcedZeroCopyOnVethFailsClearly) {
  auto umem = Umem::create(kUmem);
  ASSERT_TRUE(umem) << umem.error().message;
  auto socket = Socket::create(
      **umem, {.interface = "xa", .bind_mode = BindMode::kZeroCopy, .ring_size = 64});
  ASSERT_FALSE(socket);
  EXPECT_NE(socket.error().message.find("zero-copy mode"), std::string::npos)
      << socket.error().message;
}

TEST_F(SocketTest, AQueueTheInterfaceDoesNotHaveIsRefused) {
  auto umem = Umem::create(kUmem);
  ASSERT_TRUE(umem) << umem.error().message;
  auto socket = Socket::create(
      **umem, {.interface = "xa", .queue = 5, .bind_mode = BindMode::kCopy, .ring_size = 64});
  ASSERT_FALSE(socket);
  EXPECT_NE(socket.error().message.find("queue 5"), std::string::npos) << socket.error().message;
}

}  // namespace
}  // namespace dnsproxy::xsk
