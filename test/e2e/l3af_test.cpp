// dnsproxyd beside other XDP programs (issue 15), the real binary in the node namespace between
// a client and knotd:
// - --chain-into: an L3AF-style root program (test/datapath/bpf/chain_test.bpf.c) owns cli0 and
//   up0 and tail-calls its pinned array; dnsproxyd puts dns_steer into the slot, serves DNS
//   through its workers, lets everything else reach the counting program that was in the slot,
//   and at SIGTERM gives the slot back with the root still attached; with --policy, l3_guard
//   polices between dns_steer and the rest of the chain.
// - --bpf-package: dns_steer loads from a signed package only when it verifies; unsigned,
//   tampered, wrongly keyed and mislabelled packages are refused with exit 2 and the reason.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <gtest/gtest.h>
#include <linux/if_link.h>
#include <net/if.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "chain_test.skel.h"
#include "datapath/chain.h"
#include "datapath/package.h"
#include "test/datapath/bpf/chain_test_abi.h"
#include "test/support/daemon_fixture.h"
#include "test/support/netns.h"
#include "test/support/policy_text.h"
#include "test/support/privileges.h"

namespace dnsproxy::test {
namespace {

namespace fs = std::filesystem;
const std::string kDaemon = DNSPROXYD_PATH;

uint32_t program_id_of(const bpf_program* program) {
  bpf_prog_info info{};
  uint32_t length = sizeof(info);
  if (bpf_obj_get_info_by_fd(bpf_program__fd(program), &info, &length) != 0) return 0;
  return info.id;
}

void write_bytes(const fs::path& path, const std::vector<uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
}

class L3afTest : public DaemonFixture {
 protected:
  void SetUp() override {
    DNSPROXY_REQUIRE_PRIVILEGES();
    ASSERT_NO_FATAL_FAILURE(build());
  }

  std::string kdig(const std::string& name) {
    return DaemonFixture::kdig(Topology::kUpstreamV4, name, "A", {"+short", "+time=2", "+retry=1"});
  }
};

// The L3AF-style root of test/datapath/bpf/chain_test.bpf.c attached to both node interfaces
// (native mode), its program array pinned on the test's bpffs with the counting program in slot
// 0. Inside the node namespace (the caller entered it). Detaches and unpins at destruction.
class RootChain {
 public:
  explicit RootChain(const std::string& bpffs) : array_pin_(bpffs + "/xdp_root_array") {}
  RootChain(const RootChain&) = delete;
  RootChain& operator=(const RootChain&) = delete;
  ~RootChain() {
    for (int ifindex : ifindexes_) bpf_xdp_detach(ifindex, XDP_FLAGS_DRV_MODE, nullptr);
    unlink(array_pin_.c_str());
    if (skeleton_) chain_test::destroy(skeleton_);
  }

  void attach() {
    skeleton_ = chain_test::open_and_load();
    ASSERT_TRUE(skeleton_) << std::strerror(errno);
    ASSERT_EQ(bpf_map__pin(skeleton_->maps.xdp_root_array, array_pin_.c_str()), 0);
    const uint32_t key = 0;
    const auto counter_fd = static_cast<uint32_t>(bpf_program__fd(skeleton_->progs.chain_counter));
    ASSERT_EQ(
        bpf_map_update_elem(bpf_map__fd(skeleton_->maps.xdp_root_array), &key, &counter_fd, 0), 0);
    for (const char* ifname : {Topology::kNodeClientSide, Topology::kNodeUpstreamSide}) {
      const int ifindex = static_cast<int>(if_nametoindex(ifname));
      ASSERT_GT(ifindex, 0) << ifname;
      ASSERT_EQ(bpf_xdp_attach(ifindex, bpf_program__fd(skeleton_->progs.chain_root),
                               XDP_FLAGS_DRV_MODE, nullptr),
                0)
          << ifname;
      ifindexes_.push_back(ifindex);
    }
  }
  const std::string& array_pin() const { return array_pin_; }
  uint32_t slot() const {
    auto id = datapath::prog_array_slot0(bpf_map__fd(skeleton_->maps.xdp_root_array));
    return id ? *id : 0;
  }
  uint32_t counter_id() const { return program_id_of(skeleton_->progs.chain_counter); }
  uint32_t root_id() const { return program_id_of(skeleton_->progs.chain_root); }
  uint64_t count(chain_count kind) const {
    const uint32_t index = kind;
    uint64_t value = 0;
    bpf_map_lookup_elem(bpf_map__fd(skeleton_->maps.chain_counts), &index, &value);
    return value;
  }
  const std::vector<int>& ifindexes() const { return ifindexes_; }

 private:
  std::string array_pin_;
  chain_test* skeleton_ = nullptr;
  std::vector<int> ifindexes_;
};

TEST_F(L3afTest, ChainedIntoARootProgramItServesDnsAndGivesTheSlotBack) {
  auto inside = ScopedNetns::enter(topology_->node());
  ASSERT_TRUE(inside) << inside.error().message;
  RootChain chain(bpffs_->path());
  ASSERT_NO_FATAL_FAILURE(chain.attach());

  auto daemon = start_daemon({"--forward-all", "--umem-frames", "4096", "--ring-size", "1024",
                              "--chain-into", chain.array_pin()});
  ASSERT_TRUE(daemon);
  EXPECT_NE(chain.slot(), chain.counter_id()) << "dns_steer must be in the slot";
  EXPECT_EQ(kdig("host3.example.test"), "203.0.113.4\n") << daemon->log();
  EXPECT_EQ(chain.count(CHAIN_COUNT_DNS), 0u) << "DNS went to the workers, not down the chain";
  const uint64_t icmp = chain.count(CHAIN_COUNT_ICMP);
  auto ping =
      topology_->client().exec({"ping", "-c", "3", "-i", "0.1", "-W", "2", Topology::kUpstreamV4});
  EXPECT_TRUE(ping) << ping.error().message;
  EXPECT_GE(chain.count(CHAIN_COUNT_ICMP) - icmp, 6u) << "requests on cli0 and replies on up0";

  EXPECT_EQ(daemon->stop(), 0) << daemon->log();
  EXPECT_GE(daemon->transmitted(), 2u) << "query and response through a worker (final stats)";
  EXPECT_EQ(chain.slot(), chain.counter_id()) << "the slot holds what it held before dnsproxyd";
  for (int ifindex : chain.ifindexes()) {
    uint32_t attached = 0;
    ASSERT_EQ(bpf_xdp_query_id(ifindex, XDP_FLAGS_DRV_MODE, &attached), 0);
    EXPECT_EQ(attached, chain.root_id());
  }
  EXPECT_FALSE(fs::exists(daemon->pin_dir()));
}

// --chain-into with --policy: root -> dns_steer -> l3_guard -> the counting program. The client's
// traffic to an address it resolved reaches the chain's next program, and so do the replies; to
// one it never resolved, l3_guard drops it before the chain sees it.
TEST_F(L3afTest, ChainedWithPolicyTheGuardPolicesInFrontOfTheRestOfTheChain) {
  auto servers = AppServers::start(*topology_);  // answers ping on 203.0.113.0/24
  ASSERT_TRUE(servers) << servers.error().message;
  servers_ = std::move(*servers);
  auto inside = ScopedNetns::enter(topology_->node());
  ASSERT_TRUE(inside) << inside.error().message;
  RootChain chain(bpffs_->path());
  ASSERT_NO_FATAL_FAILURE(chain.attach());
  const std::string policy =
      write_file("policy.yaml", frontend_policy(R"([{matchPattern: "host*.example.test"}])",
                                                R"([{matchPattern: "host*.example.test"}])"));
  auto daemon = start_daemon({"--policy", policy, "--chain-into", chain.array_pin()});
  ASSERT_TRUE(daemon);
  EXPECT_EQ(kdig("host3.example.test"), "203.0.113.4\n") << daemon->log();

  const auto ping = [&](const char* address) {
    const uint64_t before = chain.count(CHAIN_COUNT_ICMP);
    auto out = topology_->client().run({"ping", "-c", "3", "-i", "0.1", "-W", "1", address});
    EXPECT_TRUE(out) << out.error().message;
    return chain.count(CHAIN_COUNT_ICMP) - before;
  };
  // The replies on up0 come from no endpoint: l3_guard passes them down the chain unpoliced.
  EXPECT_GE(ping("203.0.113.4"), 6u) << "resolved: requests on cli0 and replies on up0";
  EXPECT_EQ(ping("203.0.113.200"), 0u) << "never resolved: dropped in front of the chain";

  EXPECT_EQ(daemon->stop(), 0) << daemon->log();
  auto stats = daemon->stats();
  ASSERT_TRUE(stats) << stats.error().message;
  EXPECT_GE(l3_guard(*stats, "drop_not_plumbed"), 3u) << stats->dump(2);
  EXPECT_GE(l3_guard(*stats, "pass_allowed"), 3u);
  EXPECT_EQ(counter(*stats, "released_on_ack"), 1u);
  EXPECT_EQ(chain.slot(), chain.counter_id()) << "the slot holds what it held before dnsproxyd";
}

TEST_F(L3afTest, ABpfPackageLoadsOnlyWhenItVerifies) {
  char pattern[] = "/tmp/dnsproxy-e2e-package-XXXXXX";
  ASSERT_NE(mkdtemp(pattern), nullptr);
  const fs::path dir = pattern;
  for (const char* key : {"a", "b"}) {
    auto made = run_command({"minisign", "-G", "-W", "-p", (dir / key).string() + ".pub", "-s",
                             (dir / key).string() + ".key"});
    ASSERT_TRUE(made && made->exit_code == 0) << (made ? made->output : made.error().message);
  }
  const auto sign = [&](const fs::path& file, const char* key) {
    auto signed_ = run_command(
        {"minisign", "-S", "-s", (dir / key).string() + ".key", "-m", file.string(), "-t", "e2e"});
    EXPECT_TRUE(signed_ && signed_->exit_code == 0)
        << (signed_ ? signed_->output : signed_.error().message);
  };
  auto built =
      datapath::build_package(datapath::embedded_steer_object(), datapath::default_labels());
  ASSERT_TRUE(built) << built.error().message;
  const fs::path good = dir / "good" / built->relative_path;
  fs::create_directories(good.parent_path());
  write_bytes(good, built->archive);
  sign(good, "a");

  const fs::path unsigned_ = dir / "unsigned.tar.gz";
  write_bytes(unsigned_, built->archive);
  const fs::path tampered = dir / "tampered.tar.gz";
  std::vector<uint8_t> flipped = built->archive;
  flipped[flipped.size() / 3] ^= 0x20;
  write_bytes(tampered, flipped);
  fs::copy_file(good.string() + ".minisig", tampered.string() + ".minisig");
  const fs::path mislabelled = dir / "mislabelled.tar.gz";
  auto files = datapath::unpack_archive(built->archive);
  ASSERT_TRUE(files) << files.error().message;
  for (datapath::PackageFile& file : *files) {
    if (!file.path.ends_with("manifest.json")) continue;
    std::string text(file.bytes.begin(), file.bytes.end());
    const size_t at = text.find("\"license\": \"GPL\"");
    ASSERT_NE(at, std::string::npos) << text;
    text.replace(at, std::strlen("\"license\": \"GPL\""), "\"license\": \"MIT\"");
    file.bytes.assign(text.begin(), text.end());
  }
  auto repacked = datapath::pack_archive(*files);
  ASSERT_TRUE(repacked) << repacked.error().message;
  write_bytes(mislabelled, *repacked);
  sign(mislabelled, "a");

  struct Case {
    fs::path package;
    const char* key;
    std::string message;
  };
  const Case refused[] = {
      {unsigned_, "a", "unsigned"},
      {tampered, "a", "changed after it was signed"},
      {good, "b", "signed by key ID"},
      {mislabelled, "a", "mislabelled: manifest says license 'MIT'"},
  };
  for (const Case& c : refused) {
    auto out = run_command(
        {kDaemon, "-i", "cli0", "-i", "up0", "--forward-all", "--bpf-package", c.package.string(),
         "--trusted-key", (dir / c.key).string() + ".pub", "--pin-dir", new_pin_dir()},
        &topology_->node());
    ASSERT_TRUE(out) << out.error().message;
    EXPECT_EQ(out->exit_code, 2) << c.package << ": " << out->output;
    EXPECT_NE(out->output.find("--bpf-package refused"), std::string::npos) << out->output;
    EXPECT_NE(out->output.find(c.message), std::string::npos) << out->output;
    auto link = topology_->node().ip({"-d", "link", "show", "dev", "cli0"});
    ASSERT_TRUE(link);
    EXPECT_EQ(link->find("prog/xdp"), std::string::npos) << "nothing attached: " << *link;
  }

  auto daemon = Dnsproxyd::start(
      kDaemon, topology_->node(),
      {"-i", "cli0", "-i", "up0", "--forward-all", "--umem-frames", "4096", "--ring-size", "1024",
       "--bpf-package", good.string(), "--trusted-key", (dir / "a.pub").string()},
      new_pin_dir());
  ASSERT_TRUE(daemon) << daemon.error().message;
  EXPECT_EQ(kdig("host3.example.test"), "203.0.113.4\n") << (*daemon)->log();
  EXPECT_EQ((*daemon)->stop(), 0) << (*daemon)->log();
  fs::remove_all(dir);
}

}  // namespace
}  // namespace dnsproxy::test
