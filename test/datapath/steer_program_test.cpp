// SteerProgram on real veths in namespaces of its own: attach and detach, modes, pins, the stale
// program of a crashed run, and the errors an operator sees (missing interface, unsupported
// mode, a foreign XDP program, a pin_dir held by a live instance).
#include "datapath/steer_program.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <gtest/gtest.h>
#include <linux/bpf.h>
#include <linux/if_link.h>
#include <linux/magic.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "datapath/package.h"
#include "test/support/bpffs.h"
#include "test/support/netns.h"
#include "test/support/privileges.h"

namespace dnsproxy::datapath {
namespace {

using test::BpfFsMount;
using test::NetNs;
using test::ScopedNetns;
using test::VethPair;

bool exists(const std::string& path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0;
}

bool on_bpffs(const char* path) {
  struct statfs fs {};
  return statfs(path, &fs) == 0 && fs.f_type == BPF_FS_MAGIC;
}

// The kernel's view: id of the XDP program attached in `flags` mode (0: none).
uint32_t attached_id(uint32_t ifindex, uint32_t flags) {
  uint32_t id = 0;
  if (bpf_xdp_query_id(static_cast<int>(ifindex), static_cast<int>(flags), &id) != 0) return 0;
  return id;
}

uint32_t program_id(int prog_fd) {
  bpf_prog_info info{};
  uint32_t length = sizeof(info);
  if (bpf_obj_get_info_by_fd(prog_fd, &info, &length) != 0) return 0;
  return info.id;
}

// client ns [c0] --- [n0] node ns [n1] --- [u0] upstream ns; the node side gets addresses so
// traffic from the client reaches n0. Tests run inside `node` (entered by the fixture).
class SteerProgramTest : public testing::Test {
 protected:
  void SetUp() override {
    DNSPROXY_REQUIRE_PRIVILEGES();
    auto bpffs = BpfFsMount::create();
    ASSERT_TRUE(bpffs) << bpffs.error().message;
    bpffs_.emplace(std::move(*bpffs));
    settings_.pin_dir = bpffs_->path() + "/dnsproxy";
    for (auto* ns : {&client_, &node_, &upstream_}) {
      auto created = NetNs::create("steer");
      ASSERT_TRUE(created) << created.error().message;
      ns->emplace(std::move(*created));
    }
    auto to_client =
        VethPair::create({.name_a = "n0", .ns_a = &*node_, .name_b = "c0", .ns_b = &*client_});
    ASSERT_TRUE(to_client) << to_client.error().message;
    auto to_upstream =
        VethPair::create({.name_a = "n1", .ns_a = &*node_, .name_b = "u0", .ns_b = &*upstream_});
    ASSERT_TRUE(to_upstream) << to_upstream.error().message;
    n0_ = to_client->ifindex_a();
    n1_ = to_upstream->ifindex_a();
    links_.push_back(std::move(*to_client));
    links_.push_back(std::move(*to_upstream));
    ASSERT_TRUE(node_->add_address("n0", "192.0.2.1/24"));
    ASSERT_TRUE(client_->add_address("c0", "192.0.2.10/24"));
    auto inside = ScopedNetns::enter(*node_);
    ASSERT_TRUE(inside) << inside.error().message;
    inside_ = std::move(*inside);
  }

  void TearDown() override { inside_.reset(); }

  const std::vector<std::string> both_ = {"n0", "n1"};
  SteerSettings settings_;
  std::optional<BpfFsMount> bpffs_;
  std::optional<NetNs> client_, node_, upstream_;
  std::vector<VethPair> links_;
  std::unique_ptr<ScopedNetns> inside_;
  uint32_t n0_ = 0, n1_ = 0;
};

TEST_F(SteerProgramTest, AttachesToEveryInterfacePinsAndCleansUp) {
  auto steer = SteerProgram::attach(both_, settings_);
  ASSERT_TRUE(steer) << steer.error().message;
  const uint32_t id = program_id((*steer)->program_fd());
  ASSERT_NE(id, 0u);
  for (uint32_t ifindex : {n0_, n1_}) {
    EXPECT_EQ((*steer)->attached_mode(ifindex), XdpMode::kNative);  // veth has native XDP
    EXPECT_EQ(attached_id(ifindex, XDP_FLAGS_DRV_MODE), id);
    ASSERT_NE((*steer)->attachment(ifindex), nullptr);
    // libxdp needs bpffs at /sys/fs/bpf for its dispatcher (and this machine's kernel refuses
    // the dispatcher anyway: freplace EPERM), so without it the only outcome is single program.
    if (!on_bpffs("/sys/fs/bpf")) {
      EXPECT_EQ((*steer)->attachment(ifindex)->kind, AttachKind::kSingleProgram);
    }
    EXPECT_FALSE((*steer)->attachment(ifindex)->replaced_stale);
  }
  EXPECT_EQ((*steer)->attachment(n0_)->xsk_slot_base, 0u);
  EXPECT_EQ((*steer)->attachment(n1_)->xsk_slot_base, uint32_t{DNS_STEER_MAX_QUEUES});
  EXPECT_EQ((*steer)->stale_pins_removed(), 0);
  EXPECT_NE((*steer)->describe().find("dns_steer on n0"), std::string::npos);
  for (const char* map :
       {"dns_steer_stats", "dns_steer_xsks", "dns_steer_ifaces", "dns_steer_next"}) {
    EXPECT_TRUE(exists(settings_.pin_dir + "/" + map)) << map;
  }

  steer->reset();
  EXPECT_EQ(attached_id(n0_, 0), 0u);
  EXPECT_EQ(attached_id(n1_, 0), 0u);
  EXPECT_FALSE(exists(settings_.pin_dir));
}

TEST_F(SteerProgramTest, SeesTrafficOnTheAttachedInterface) {
  auto steer = SteerProgram::attach(both_, settings_);
  ASSERT_TRUE(steer) << steer.error().message;
  auto ping = client_->exec({"ping", "-c", "2", "-i", "0.2", "-W", "2", "192.0.2.1"});
  ASSERT_TRUE(ping) << ping.error().message;  // not DNS: passed to the kernel, which answers
  auto counters = (*steer)->counters();
  ASSERT_TRUE(counters) << counters.error().message;
  EXPECT_GE((*counters)[DNS_STEER_STAT_RX], 2u);
  EXPECT_GE((*counters)[DNS_STEER_STAT_PASS_NOT_UDP], 2u);  // the ICMP echo requests
  EXPECT_EQ((*counters)[DNS_STEER_STAT_REDIRECT], 0u);
  // The same numbers through the pin, as dnsproxyctl reads them.
  auto pinned = read_pinned_counters(settings_.pin_dir);
  ASSERT_TRUE(pinned) << pinned.error().message;
  EXPECT_GE((*pinned)[DNS_STEER_STAT_PASS_NOT_UDP], (*counters)[DNS_STEER_STAT_PASS_NOT_UDP]);
  steer->reset();
  auto gone = read_pinned_counters(settings_.pin_dir);
  ASSERT_FALSE(gone);
  EXPECT_NE(gone.error().message.find("dns_steer_stats"), std::string::npos);
}

TEST_F(SteerProgramTest, GenericModeWhenAsked) {
  settings_.mode = XdpMode::kGeneric;
  auto steer = SteerProgram::attach(both_, settings_);
  ASSERT_TRUE(steer) << steer.error().message;
  EXPECT_EQ((*steer)->attached_mode(n0_), XdpMode::kGeneric);
  EXPECT_EQ(attached_id(n0_, XDP_FLAGS_SKB_MODE), program_id((*steer)->program_fd()));
  EXPECT_EQ(attached_id(n0_, XDP_FLAGS_DRV_MODE), 0u);
  steer->reset();
  EXPECT_EQ(attached_id(n0_, XDP_FLAGS_SKB_MODE), 0u);
}

TEST_F(SteerProgramTest, MissingInterfaceIsAClearErrorAndLeavesNothing) {
  const std::vector<std::string> interfaces = {"n0", "nosuch0"};
  auto steer = SteerProgram::attach(interfaces, settings_);
  ASSERT_FALSE(steer);
  EXPECT_NE(steer.error().message.find("interface nosuch0 not found"), std::string::npos)
      << steer.error().message;
  EXPECT_EQ(attached_id(n0_, 0), 0u);
  EXPECT_FALSE(exists(settings_.pin_dir));
}

TEST_F(SteerProgramTest, NativeModeOnAnInterfaceWithoutItFailsAndAutoFallsBack) {
  // A bridge has no native XDP (no ndo_bpf), only generic.
  ASSERT_TRUE(node_->ip({"link", "add", "br0", "type", "bridge"}));
  ASSERT_TRUE(node_->set_up("br0"));
  const std::vector<std::string> bridge = {"br0"};
  const uint32_t br0 = *node_->ifindex("br0");

  settings_.mode = XdpMode::kNative;
  auto native = SteerProgram::attach(bridge, settings_);
  ASSERT_FALSE(native);
  EXPECT_NE(native.error().message.find("br0"), std::string::npos) << native.error().message;
  EXPECT_NE(native.error().message.find("native mode failed"), std::string::npos)
      << native.error().message;
  EXPECT_EQ(attached_id(br0, 0), 0u);

  settings_.mode = XdpMode::kAuto;
  auto automatic = SteerProgram::attach(bridge, settings_);
  ASSERT_TRUE(automatic) << automatic.error().message;
  EXPECT_EQ((*automatic)->attached_mode(br0), XdpMode::kGeneric);
}

TEST_F(SteerProgramTest, RejectsBadSettings) {
  settings_.dns_ports = {};
  EXPECT_FALSE(SteerProgram::attach(both_, settings_));
  settings_.dns_ports = {53, 0};
  EXPECT_FALSE(SteerProgram::attach(both_, settings_));
  settings_.dns_ports = {53};
  const std::vector<std::string> twice = {"n0", "n0"};
  auto duplicate = SteerProgram::attach(twice, settings_);
  ASSERT_FALSE(duplicate);
  EXPECT_NE(duplicate.error().message.find("given twice"), std::string::npos);
  settings_.pin_dir = "/tmp";  // not a bpf filesystem
  auto not_bpffs = SteerProgram::attach(both_, settings_);
  ASSERT_FALSE(not_bpffs);
  EXPECT_NE(not_bpffs.error().message.find("not on a bpf filesystem"), std::string::npos)
      << not_bpffs.error().message;
  EXPECT_EQ(attached_id(n0_, 0), 0u);
}

TEST_F(SteerProgramTest, ForeignProgramIsNeverReplaced) {
  const bpf_insn return_pass[] = {
      {.code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = XDP_PASS},
      {.code = BPF_JMP | BPF_EXIT},
  };
  const int foreign = bpf_prog_load(BPF_PROG_TYPE_XDP, "foreign", "GPL", return_pass, 2, nullptr);
  ASSERT_GE(foreign, 0) << std::strerror(errno);
  ASSERT_EQ(bpf_xdp_attach(static_cast<int>(n1_), foreign, XDP_FLAGS_SKB_MODE, nullptr), 0);

  auto steer = SteerProgram::attach(both_, settings_);
  ASSERT_FALSE(steer);
  EXPECT_NE(steer.error().message.find("already runs XDP program 'foreign'"), std::string::npos)
      << steer.error().message;
  EXPECT_EQ(attached_id(n1_, XDP_FLAGS_SKB_MODE), program_id(foreign));  // untouched
  EXPECT_EQ(attached_id(n0_, 0), 0u);  // n0 was attached first and rolled back
  EXPECT_FALSE(exists(settings_.pin_dir));
  bpf_xdp_detach(static_cast<int>(n1_), XDP_FLAGS_SKB_MODE, nullptr);
  close(foreign);
}

// The counter layout is per build: a pinned dns_steer_stats with another slot count (a daemon
// of another build) is refused with a message, not read with the wrong names.
TEST_F(SteerProgramTest, PinnedCountersOfAnotherBuildAreRefused) {
  ASSERT_EQ(mkdir(settings_.pin_dir.c_str(), 0700), 0) << std::strerror(errno);
  const int fd = bpf_map_create(BPF_MAP_TYPE_PERCPU_ARRAY, "dns_steer_stats", sizeof(uint32_t),
                                sizeof(uint64_t), DNS_STEER_STAT__COUNT - 1, nullptr);
  ASSERT_GE(fd, 0) << std::strerror(errno);
  const std::string path = settings_.pin_dir + "/dns_steer_stats";
  ASSERT_EQ(bpf_obj_pin(fd, path.c_str()), 0) << std::strerror(errno);
  close(fd);
  auto other = read_pinned_counters(settings_.pin_dir);
  unlink(path.c_str());
  rmdir(settings_.pin_dir.c_str());
  ASSERT_FALSE(other);
  EXPECT_NE(other.error().message.find("another build"), std::string::npos)
      << other.error().message;
}

TEST_F(SteerProgramTest, SecondInstanceOnTheSamePinDirIsRefused) {
  const std::vector<std::string> first_interfaces = {"n0"};
  const std::vector<std::string> second_interfaces = {"n1"};
  auto first = SteerProgram::attach(first_interfaces, settings_);
  ASSERT_TRUE(first) << first.error().message;
  auto second = SteerProgram::attach(second_interfaces, settings_);
  ASSERT_FALSE(second);
  EXPECT_NE(second.error().message.find("in use by another running dnsproxy"), std::string::npos)
      << second.error().message;
  EXPECT_EQ(attached_id(n1_, 0), 0u);
  EXPECT_TRUE(exists(settings_.pin_dir + "/dns_steer_stats"));  // the first one's pins stay
}

TEST_F(SteerProgramTest, ReplacesTheProgramAndPinsOfACrashedRun) {
  // A child process attaches and dies without cleaning up, as after SIGKILL: the kernel keeps the
  // program attached (netlink attachment, not a link) and the pins stay in bpffs.
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    auto crashed = SteerProgram::attach(both_, settings_);
    _exit(crashed ? 0 : 1);  // no destructor runs
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  const uint32_t stale_id = attached_id(n0_, XDP_FLAGS_DRV_MODE);
  ASSERT_NE(stale_id, 0u);
  ASSERT_TRUE(exists(settings_.pin_dir + "/dns_steer_xsks"));

  auto steer = SteerProgram::attach(both_, settings_);
  ASSERT_TRUE(steer) << steer.error().message;
  EXPECT_TRUE((*steer)->attachment(n0_)->replaced_stale);
  EXPECT_TRUE((*steer)->attachment(n1_)->replaced_stale);
  EXPECT_EQ((*steer)->stale_pins_removed(), 5);  // stats, xsks, ifaces, next, sources
  const uint32_t fresh_id = program_id((*steer)->program_fd());
  EXPECT_NE(fresh_id, stale_id);
  EXPECT_EQ(attached_id(n0_, XDP_FLAGS_DRV_MODE), fresh_id);
  EXPECT_NE((*steer)->describe().find("replaced a stale dns_steer"), std::string::npos);

  steer->reset();
  EXPECT_EQ(attached_id(n0_, 0), 0u);
  EXPECT_EQ(attached_id(n1_, 0), 0u);
  EXPECT_FALSE(exists(settings_.pin_dir));
}

// What the child of MountsBpffsOnSysFsBpfWhenNothingIsMounted found; 0 is success.
enum MountCheck : int {
  kMountCheckOk = 0,
  kPrivateMountsFailed,
  kWithoutMountNotRefused,
  kAttachFailed,
  kNotReportedMounted,
  kNotOnBpffs,
};

// In a private mount namespace with a tmpfs over /sys/fs/bpf (so the host's mounts never change),
// attach with the conventional pin_dir: refused with mount_bpffs off, mounted with it on.
MountCheck attach_without_bpffs_mounted(const std::vector<std::string>& interfaces) {
  if (unshare(CLONE_NEWNS) != 0 ||
      mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
      mount("tmpfs", kBpffsMountPoint, "tmpfs", 0, nullptr) != 0) {
    return kPrivateMountsFailed;
  }
  SteerSettings settings;
  settings.pin_dir = std::string(kBpffsMountPoint) + "/dnsproxy-mount-test";
  settings.mount_bpffs = false;
  if (SteerProgram::attach(interfaces, settings)) return kWithoutMountNotRefused;
  settings.mount_bpffs = true;
  auto steer = SteerProgram::attach(interfaces, settings);
  if (!steer) return kAttachFailed;
  if (!(*steer)->mounted_bpffs()) return kNotReportedMounted;
  if (!on_bpffs(kBpffsMountPoint)) return kNotOnBpffs;
  return kMountCheckOk;
}

TEST_F(SteerProgramTest, MountsBpffsOnSysFsBpfWhenNothingIsMounted) {
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) _exit(attach_without_bpffs_mounted(both_));
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), kMountCheckOk);
  EXPECT_EQ(attached_id(n0_, 0), 0u);  // the child detached on its way out
}

TEST_F(SteerProgramTest, BindSocketRejectsWhatItCannotSteer) {
  auto steer = SteerProgram::attach(both_, settings_);
  ASSERT_TRUE(steer) << steer.error().message;
  auto unknown = (*steer)->bind_socket(9999, 0, 0);
  ASSERT_FALSE(unknown);
  EXPECT_NE(unknown.error().message.find("not attached to ifindex 9999"), std::string::npos);
  auto high_queue = (*steer)->bind_socket(n0_, DNS_STEER_MAX_QUEUES, 0);
  ASSERT_FALSE(high_queue);
  EXPECT_NE(high_queue.error().message.find("beyond"), std::string::npos);
  const int udp = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(udp, 0);
  auto not_xsk = (*steer)->bind_socket(n0_, 0, udp);
  close(udp);
  ASSERT_FALSE(not_xsk);
  EXPECT_NE(not_xsk.error().message.find("AF_XDP"), std::string::npos) << not_xsk.error().message;
  (*steer)->unbind_socket(n0_, 0);  // nothing bound: harmless
}

TEST_F(SteerProgramTest, DetachCopesWithAnInterfaceThatWentAway) {
  auto steer = SteerProgram::attach(both_, settings_);
  ASSERT_TRUE(steer) << steer.error().message;
  ASSERT_TRUE(node_->ip({"link", "del", "dev", "n1"}));  // takes the program with it
  auto detached = (*steer)->detach();
  EXPECT_TRUE(detached) << detached.error().message;
  EXPECT_EQ(attached_id(n0_, 0), 0u);
  EXPECT_FALSE(exists(settings_.pin_dir));
}

TEST_F(SteerProgramTest, ChainsANextProgramAndRefusesIncompatibleOnes) {
  auto steer = SteerProgram::attach(both_, settings_);
  ASSERT_TRUE(steer) << steer.error().message;
  const bpf_insn return_pass[] = {
      {.code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = XDP_PASS},
      {.code = BPF_JMP | BPF_EXIT},
  };
  LIBBPF_OPTS(bpf_prog_load_opts, xdp_options, .expected_attach_type = BPF_XDP);
  const int next = bpf_prog_load(BPF_PROG_TYPE_XDP, "next", "GPL", return_pass, 2, &xdp_options);
  ASSERT_GE(next, 0) << std::strerror(errno);
  const int filter =
      bpf_prog_load(BPF_PROG_TYPE_SOCKET_FILTER, "filter", "GPL", return_pass, 2, nullptr);
  ASSERT_GE(filter, 0) << std::strerror(errno);

  auto chained = (*steer)->set_next_program(next);
  EXPECT_TRUE(chained) << chained.error().message;
  auto refused = (*steer)->set_next_program(filter);
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().message.find("next program"), std::string::npos)
      << refused.error().message;
  (*steer)->clear_next_program();
  // Still serving: traffic passes (through the empty slot) and is counted.
  auto ping = client_->exec({"ping", "-c", "1", "-W", "2", "192.0.2.1"});
  EXPECT_TRUE(ping) << ping.error().message;
  close(next);
  close(filter);
}

// --bpf-package hands SteerProgram the verified object: that object is what loads.
TEST_F(SteerProgramTest, LoadsTheObjectItIsGivenInsteadOfTheEmbeddedOne) {
  settings_.object = {0x7f, 'E', 'L', 'F', 0};  // not a whole object: refused, so it was read
  auto refused = SteerProgram::attach(both_, settings_);
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().message.find("dns_steer BPF object of the package"), std::string::npos)
      << refused.error().message;
  EXPECT_EQ(attached_id(n0_, 0), 0u);

  const std::span<const uint8_t> embedded = embedded_steer_object();
  settings_.object.assign(embedded.begin(), embedded.end());
  auto steer = SteerProgram::attach(both_, settings_);
  ASSERT_TRUE(steer) << steer.error().message;
  EXPECT_EQ(attached_id(n0_, XDP_FLAGS_DRV_MODE), program_id((*steer)->program_fd()));
  auto ping = client_->exec({"ping", "-c", "1", "-W", "2", "192.0.2.1"});
  EXPECT_TRUE(ping) << ping.error().message;
  auto counters = (*steer)->counters();
  ASSERT_TRUE(counters) << counters.error().message;
  EXPECT_GE((*counters)[DNS_STEER_STAT_PASS_NOT_UDP], 1u);
}

}  // namespace
}  // namespace dnsproxy::datapath
