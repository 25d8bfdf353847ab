// dns_steer chained into an L3AF-style chain (SteerSettings::chain_into, datapath/chain.h):
//
//   n0 XDP: chain_root --tail call xdp_root_array[0]--> dns_steer --dns_steer_next[0]-->
//           chain_counter (counts by kind, passes)
//
// Before dnsproxy arrives the chain is chain_root -> chain_counter. As data (BPF_PROG_TEST_RUN on
// chain_root) and on a veth pair between namespaces: DNS goes to the AF_XDP socket, everything
// else reaches chain_counter; the slot gets chain_counter back at detach, after a crashed run's
// dns_steer is replaced, and no packet is lost while dns_steer goes in and out under a ping
// flood. The programs are test/datapath/bpf/chain_test.bpf.c.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <gtest/gtest.h>
#include <linux/bpf.h>
#include <linux/if_link.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "chain_test.skel.h"
#include "datapath/chain.h"
#include "datapath/steer_program.h"
#include "test/datapath/bpf/chain_test_abi.h"
#include "test/datapath/frame_builder.h"
#include "test/datapath/test_xsk.h"
#include "test/support/bpffs.h"
#include "test/support/netns.h"
#include "test/support/privileges.h"

namespace dnsproxy::datapath {
namespace {

using ::dnsproxy::test::BpfFsMount;
using ::dnsproxy::test::NetNs;
using ::dnsproxy::test::ScopedNetns;
using ::dnsproxy::test::VethPair;

uint32_t program_id(int prog_fd) {
  bpf_prog_info info{};
  uint32_t length = sizeof(info);
  if (bpf_obj_get_info_by_fd(prog_fd, &info, &length) != 0) return 0;
  return info.id;
}

// Program id in slot 0 of the program array pinned at `path` (0: empty or unreadable).
uint32_t slot0_of_pin(const std::string& path) {
  const int fd = bpf_obj_get(path.c_str());
  if (fd < 0) return 0;
  auto id = prog_array_slot0(fd);
  close(fd);
  return id ? *id : 0;
}

struct ChainPrograms {
  chain_test* skeleton = nullptr;
  ~ChainPrograms() { chain_test::destroy(skeleton); }
  int root_fd() const { return bpf_program__fd(skeleton->progs.chain_root); }
  int counter_fd() const { return bpf_program__fd(skeleton->progs.chain_counter); }
  int array_fd() const { return bpf_map__fd(skeleton->maps.xdp_root_array); }
  uint64_t count(chain_count kind) const {
    const uint32_t key = kind;
    uint64_t value = 0;
    bpf_map_lookup_elem(bpf_map__fd(skeleton->maps.chain_counts), &key, &value);
    return value;
  }
};

// client ns [c0] --- [n0] node ns; chain_root owns n0's XDP (native), its array pinned in a
// private bpffs, chain_counter in slot 0. Tests run inside `node`.
class ChainTest : public testing::Test {
 protected:
  void SetUp() override {
    DNSPROXY_REQUIRE_PRIVILEGES();
    auto bpffs = BpfFsMount::create();
    ASSERT_TRUE(bpffs) << bpffs.error().message;
    bpffs_.emplace(std::move(*bpffs));
    settings_.pin_dir = bpffs_->path() + "/dnsproxy";
    array_pin_ = bpffs_->path() + "/xdp_root_array";
    settings_.chain_into = array_pin_;
    for (auto* ns : {&client_, &node_}) {
      auto created = NetNs::create("chain");
      ASSERT_TRUE(created) << created.error().message;
      ns->emplace(std::move(*created));
    }
    auto link =
        VethPair::create({.name_a = "n0", .ns_a = &*node_, .name_b = "c0", .ns_b = &*client_});
    ASSERT_TRUE(link) << link.error().message;
    n0_ = link->ifindex_a();
    link_.emplace(std::move(*link));
    ASSERT_TRUE(node_->add_address("n0", "192.0.2.1/24"));
    ASSERT_TRUE(client_->add_address("c0", "192.0.2.10/24"));
    auto inside = ScopedNetns::enter(*node_);
    ASSERT_TRUE(inside) << inside.error().message;
    inside_ = std::move(*inside);

    programs_.skeleton = chain_test::open_and_load();
    ASSERT_NE(programs_.skeleton, nullptr) << std::strerror(errno);
    ASSERT_EQ(bpf_map__pin(programs_.skeleton->maps.xdp_root_array, array_pin_.c_str()), 0);
    set_slot(programs_.counter_fd());
    ASSERT_EQ(
        bpf_xdp_attach(static_cast<int>(n0_), programs_.root_fd(), XDP_FLAGS_DRV_MODE, nullptr), 0)
        << std::strerror(errno);
    counter_id_ = program_id(programs_.counter_fd());
  }

  void TearDown() override {
    if (n0_ != 0) bpf_xdp_detach(static_cast<int>(n0_), XDP_FLAGS_DRV_MODE, nullptr);
    if (!array_pin_.empty()) unlink(array_pin_.c_str());
    inside_.reset();
  }

  void set_slot(int prog_fd) {
    const uint32_t key = 0;
    const uint32_t value = static_cast<uint32_t>(prog_fd);
    ASSERT_EQ(bpf_map_update_elem(programs_.array_fd(), &key, &value, BPF_ANY), 0);
  }

  // The program dns_steer chains to, read through its pin as an operator would.
  uint32_t steer_next_id() const { return slot0_of_pin(settings_.pin_dir + "/dns_steer_next"); }

  void ping(int count) {
    auto sent =
        client_->exec({"ping", "-c", std::to_string(count), "-i", "0.01", "-W", "2", "192.0.2.1"});
    ASSERT_TRUE(sent) << sent.error().message;
  }

  const std::vector<std::string> n0_only_ = {"n0"};
  SteerSettings settings_;
  std::string array_pin_;
  std::optional<BpfFsMount> bpffs_;
  std::optional<NetNs> client_, node_;
  std::optional<VethPair> link_;
  std::unique_ptr<ScopedNetns> inside_;
  ChainPrograms programs_;
  uint32_t n0_ = 0;
  uint32_t counter_id_ = 0;
};

TEST_F(ChainTest, TakesTheSlotChainsToItsOldProgramAndGivesItBack) {
  auto steer = SteerProgram::attach(n0_only_, settings_);
  ASSERT_TRUE(steer) << steer.error().message;
  const uint32_t steer_id = program_id((*steer)->program_fd());
  EXPECT_EQ(slot0_of_pin(array_pin_), steer_id);
  EXPECT_EQ(steer_next_id(), counter_id_);
  const Attachment* attachment = (*steer)->attachment(n0_);
  ASSERT_NE(attachment, nullptr);
  EXPECT_EQ(attachment->kind, AttachKind::kChained);
  EXPECT_EQ(attachment->mode, XdpMode::kNative);  // chain_root's mode
  EXPECT_FALSE(attachment->replaced_stale);
  EXPECT_NE((*steer)->describe().find("chained into " + array_pin_), std::string::npos)
      << (*steer)->describe();
  uint32_t attached = 0;
  ASSERT_EQ(bpf_xdp_query_id(static_cast<int>(n0_), XDP_FLAGS_DRV_MODE, &attached), 0);
  EXPECT_EQ(attached, program_id(programs_.root_fd()));  // the owner stays the owner

  const uint64_t icmp_before = programs_.count(CHAIN_COUNT_ICMP);
  ping(3);
  EXPECT_EQ(programs_.count(CHAIN_COUNT_ICMP) - icmp_before, 3u);
  auto counters = (*steer)->counters();
  ASSERT_TRUE(counters) << counters.error().message;
  EXPECT_GE((*counters)[DNS_STEER_STAT_PASS_NOT_UDP], 3u);  // dns_steer saw them first

  auto detached = (*steer)->detach();
  EXPECT_TRUE(detached) << detached.error().message;
  EXPECT_EQ(slot0_of_pin(array_pin_), counter_id_);
  ASSERT_EQ(bpf_xdp_query_id(static_cast<int>(n0_), XDP_FLAGS_DRV_MODE, &attached), 0);
  EXPECT_EQ(attached, program_id(programs_.root_fd()));
}

TEST_F(ChainTest, AnEmptySlotStaysEmptyBehindAndAfterIt) {
  const uint32_t key = 0;
  ASSERT_EQ(bpf_map_delete_elem(programs_.array_fd(), &key), 0);
  auto steer = SteerProgram::attach(n0_only_, settings_);
  ASSERT_TRUE(steer) << steer.error().message;
  EXPECT_EQ(slot0_of_pin(array_pin_), program_id((*steer)->program_fd()));
  EXPECT_EQ(steer_next_id(), 0u);
  ping(1);  // passes to the kernel through the empty next slot: answered
  steer->reset();
  EXPECT_EQ(slot0_of_pin(array_pin_), 0u);
}

// As data: chain_root run with BPF_PROG_TEST_RUN; a DNS query for the node goes to the socket
// bound for (n0, queue 0) and never reaches chain_counter, anything else does.
TEST_F(ChainTest, AsDataDnsGoesToTheSocketTheRestToTheNextProgram) {
  auto steer = SteerProgram::attach(n0_only_, settings_);
  ASSERT_TRUE(steer) << steer.error().message;
  auto xsk = test::TestXsk::create("n0", 0);
  ASSERT_TRUE(xsk) << xsk.error().message;
  ASSERT_TRUE((*steer)->bind_socket(n0_, 0, (*xsk)->fd()));

  const auto run = [&](const test::FrameSpec& spec) {
    const std::vector<uint8_t> frame = test::build_frame(spec);
    xdp_md ctx{};
    ctx.data_end = static_cast<uint32_t>(frame.size());
    ctx.ingress_ifindex = n0_;
    ctx.rx_queue_index = 0;
    std::vector<uint8_t> out(frame.size() + 64);
    LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = frame.data(), .data_out = out.data(),
                .data_size_in = static_cast<uint32_t>(frame.size()),
                .data_size_out = static_cast<uint32_t>(out.size()), .ctx_in = &ctx,
                .ctx_size_in = sizeof(ctx), .repeat = 1);
    EXPECT_EQ(bpf_prog_test_run_opts(programs_.root_fd(), &opts), 0) << std::strerror(errno);
    return opts.retval;
  };
  const test::FrameSpec dns{.ipv4 = test::Ipv4Spec{.src = {192, 0, 2, 10}, .dst = {192, 0, 2, 1}}};
  test::FrameSpec not_dns = dns;
  not_dns.dport = 5353;

  const uint64_t all_before = programs_.count(CHAIN_COUNT_ALL);
  EXPECT_EQ(run(dns), uint32_t{XDP_REDIRECT});
  EXPECT_EQ(programs_.count(CHAIN_COUNT_ALL), all_before);  // taken by dns_steer
  EXPECT_EQ(run(not_dns), uint32_t{XDP_PASS});
  EXPECT_EQ(programs_.count(CHAIN_COUNT_UDP), 1u);
  EXPECT_EQ(programs_.count(CHAIN_COUNT_ALL), all_before + 1);
  auto counters = (*steer)->counters();
  ASSERT_TRUE(counters) << counters.error().message;
  EXPECT_EQ((*counters)[DNS_STEER_STAT_REDIRECT], 1u);
  EXPECT_EQ((*counters)[DNS_STEER_STAT_PASS_NOT_DNS], 1u);
}

// On the veth: DNS datagrams from the client arrive at the AF_XDP socket; pings reach
// chain_counter (and the kernel, which answers them).
TEST_F(ChainTest, OnVethDnsReachesTheSocketAndPingsTheNextProgram) {
  auto steer = SteerProgram::attach(n0_only_, settings_);
  ASSERT_TRUE(steer) << steer.error().message;
  auto xsk = test::TestXsk::create("n0", 0);
  ASSERT_TRUE(xsk) << xsk.error().message;
  ASSERT_TRUE((*steer)->bind_socket(n0_, 0, (*xsk)->fd()));
  ping(2);  // also resolves the neighbour, so the datagrams below go out at once

  auto sent = client_->exec({"python3", "-c",
                             "import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
                             "for i in range(5): s.sendto(bytes(29), ('192.0.2.1', 53))\n"});
  ASSERT_TRUE(sent) << sent.error().message;
  int received = 0;
  while (received < 5 && (*xsk)->receive(2000)) ++received;
  EXPECT_EQ(received, 5);
  EXPECT_EQ(programs_.count(CHAIN_COUNT_DNS), 0u);
  EXPECT_EQ(programs_.count(CHAIN_COUNT_ICMP), 2u);
}

// Ping floods run while dns_steer is chained in and out again and again: chain_counter sees
// every echo request exactly once, and every one is answered. A flood is sent again until
// dns_steer went in and out kMinCycles times (a fast machine ends one flood in a few cycles).
TEST_F(ChainTest, NothingIsLostWhileDnsSteerGoesInAndOut) {
  constexpr int kPings = 10000;
  constexpr int kMinCycles = 5;
  std::atomic<bool> done = false;
  std::atomic<int> cycles = 0;
  int floods = 0;
  std::string failed_flood;  // the output of a flood that lost or failed, if one did
  std::thread sender([&] {
    do {
      auto flood =
          client_->run({"ping", "-f", "-c", std::to_string(kPings), "-W", "1", "192.0.2.1"});
      ++floods;
      if (!flood || flood->exit_code != 0 ||
          flood->output.find(std::to_string(kPings) + " received") == std::string::npos) {
        failed_flood = flood ? flood->output : flood.error().message;
        break;
      }
    } while (cycles.load() < kMinCycles);
    done = true;
  });
  while (!done) {
    auto steer = SteerProgram::attach(n0_only_, settings_);
    if (!steer) {  // no ASSERT here: the sender thread must be joined first
      ADD_FAILURE() << steer.error().message;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    steer->reset();
    ++cycles;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  sender.join();
  EXPECT_EQ(failed_flood, "");
  EXPECT_EQ(programs_.count(CHAIN_COUNT_ICMP), uint64_t{kPings} * static_cast<uint64_t>(floods));
  EXPECT_GE(cycles.load(), kMinCycles);
  EXPECT_EQ(slot0_of_pin(array_pin_), counter_id_);
}

TEST_F(ChainTest, ReplacesTheDnsSteerOfACrashedRunAndRestoresWhatWasBeforeIt) {
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    auto crashed = SteerProgram::attach(n0_only_, settings_);
    _exit(crashed ? 0 : 1);  // no destructor runs, as after SIGKILL
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  const uint32_t stale_id = slot0_of_pin(array_pin_);
  ASSERT_NE(stale_id, 0u);
  ASSERT_NE(stale_id, counter_id_);
  // The dead run's dns_steer still passes to chain_counter: its next map is pinned.
  ping(1);
  EXPECT_EQ(programs_.count(CHAIN_COUNT_ICMP), 1u);

  auto steer = SteerProgram::attach(n0_only_, settings_);
  ASSERT_TRUE(steer) << steer.error().message;
  EXPECT_TRUE((*steer)->attachment(n0_)->replaced_stale);
  EXPECT_EQ((*steer)->stale_pins_removed(), 5);  // every map dns_steer pins
  const uint32_t fresh_id = program_id((*steer)->program_fd());
  EXPECT_NE(fresh_id, stale_id);
  EXPECT_EQ(slot0_of_pin(array_pin_), fresh_id);
  EXPECT_EQ(steer_next_id(), counter_id_);
  ping(1);
  EXPECT_EQ(programs_.count(CHAIN_COUNT_ICMP), 2u);

  steer->reset();
  EXPECT_EQ(slot0_of_pin(array_pin_), counter_id_);  // as before the crashed run
}

TEST_F(ChainTest, SecondInstanceOnTheSamePinDirIsRefused) {
  auto first = SteerProgram::attach(n0_only_, settings_);
  ASSERT_TRUE(first) << first.error().message;
  const uint32_t first_id = program_id((*first)->program_fd());
  auto second = SteerProgram::attach(n0_only_, settings_);
  ASSERT_FALSE(second);
  EXPECT_NE(second.error().message.find("in use by another running dnsproxy"), std::string::npos)
      << second.error().message;
  EXPECT_EQ(slot0_of_pin(array_pin_), first_id);
  EXPECT_EQ(steer_next_id(), counter_id_);
}

TEST_F(ChainTest, ClearErrorsForWhatCannotBeChainedInto) {
  settings_.chain_into = bpffs_->path() + "/nosuch";
  auto missing = SteerProgram::attach(n0_only_, settings_);
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message.find("--chain-into " + settings_.chain_into), std::string::npos)
      << missing.error().message;

  settings_.chain_into = bpffs_->path() + "/chain_counts";
  ASSERT_EQ(bpf_map__pin(programs_.skeleton->maps.chain_counts, settings_.chain_into.c_str()), 0);
  auto not_array = SteerProgram::attach(n0_only_, settings_);
  ASSERT_FALSE(not_array);
  EXPECT_NE(not_array.error().message.find("not a program array"), std::string::npos)
      << not_array.error().message;
  unlink(settings_.chain_into.c_str());

  settings_.chain_into = array_pin_;
  ASSERT_EQ(bpf_xdp_detach(static_cast<int>(n0_), XDP_FLAGS_DRV_MODE, nullptr), 0);
  auto no_owner = SteerProgram::attach(n0_only_, settings_);
  ASSERT_FALSE(no_owner);
  EXPECT_NE(no_owner.error().message.find("no XDP program runs on n0"), std::string::npos)
      << no_owner.error().message;
  EXPECT_EQ(slot0_of_pin(array_pin_), counter_id_);  // untouched by every failure
}

}  // namespace
}  // namespace dnsproxy::datapath
