// The mirror against real BPF maps: created with bpf_map_create, pinned under /sys/fs/bpf with
// per-process names, mutated the way the agent does, and seen by a worker-style reader through
// the SnapshotStore.
#include "datapath/policy_mirror.h"

#include <bpf/bpf.h>
#include <gtest/gtest.h>
#include <linux/magic.h>
#include <sys/mount.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <chrono>
#include <thread>

#include "datapath/bpf/dnsproxy_abi.h"
#include "test/support/privileges.h"

namespace dnsproxy::datapath {
namespace {

using namespace std::chrono_literals;
using policy::IpAddress;
using policy::IpPrefix;

IpAddress ip(std::string_view text) {
  return *IpAddress::parse(text);
}

// A bpf filesystem to pin in: /sys/fs/bpf where it is mounted (as on any systemd host), else a
// private mount of our own in /tmp, unmounted afterwards.
class BpfFs {
 public:
  BpfFs() {
    struct statfs fs {};
    if (statfs("/sys/fs/bpf", &fs) == 0 && fs.f_type == BPF_FS_MAGIC) {
      dir_ = "/sys/fs/bpf";
      return;
    }
    char path[] = "/tmp/dnsproxy-policy-mirror-bpffs-XXXXXX";
    if (mkdtemp(path) == nullptr) return;
    if (mount("bpf", path, "bpf", 0, nullptr) != 0) {
      rmdir(path);
      return;
    }
    dir_ = path;
    own_mount_ = true;
  }
  ~BpfFs() {
    if (own_mount_) {
      umount2(dir_.c_str(), MNT_DETACH);
      rmdir(dir_.c_str());
    }
  }
  const std::string& dir() const { return dir_; }  // empty: no bpffs available

 private:
  std::string dir_;
  bool own_mount_ = false;
};

// Pinned paths unique to this process, unlinked whatever happens.
struct PinnedPaths {
  BpfFs fs;
  std::string endpoints = fs.dir() + "/dnsproxy-test-" + std::to_string(getpid()) + "-endpoints";
  std::string ipcache = fs.dir() + "/dnsproxy-test-" + std::to_string(getpid()) + "-ipcache";
  std::string generations =
      fs.dir() + "/dnsproxy-test-" + std::to_string(getpid()) + "-generations";
  std::string ipcache_log =
      fs.dir() + "/dnsproxy-test-" + std::to_string(getpid()) + "-ipcache-log";
  PinnedPolicyMaps all() const { return {endpoints, ipcache, generations, ipcache_log}; }
  PinnedPolicyMaps without_log() const { return {endpoints, ipcache, generations, ""}; }
  PinnedPolicyMaps without_counters() const { return {endpoints, ipcache, "", ""}; }
  ~PinnedPaths() {
    unlink(endpoints.c_str());
    unlink(ipcache.c_str());
    unlink(generations.c_str());
    unlink(ipcache_log.c_str());
  }
};

// The control thread: polls the maps into the store every kPollInterval until stopped.
class ControlThread {
 public:
  explicit ControlThread(PolicyMirror& mirror)
      : thread_([this, &mirror] {
          while (!stop_.load()) {
            auto polled = mirror.poll();
            if (!polled) error_ = polled.error().message;
            std::this_thread::sleep_for(PolicyMirror::kPollInterval);
          }
        }) {}
  ~ControlThread() {
    stop_ = true;
    thread_.join();
  }
  std::string error() const { return error_; }  // read after the thread stopped

 private:
  std::atomic<bool> stop_{false};
  std::string error_;
  std::thread thread_;
};

// How long until `seen(snapshot)` holds for the reader; gives up after 2 s.
template <class Predicate>
std::chrono::milliseconds time_until(policy::SnapshotStore& store,
                                     policy::QsbrDomain::Reader& reader, Predicate seen) {
  const auto start = std::chrono::steady_clock::now();
  while (std::chrono::steady_clock::now() - start < 2s) {
    const bool done = seen(*store.acquire());
    reader.quiescent();
    if (done) break;
    std::this_thread::sleep_for(1ms);
  }
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() -
                                                               start);
}

TEST(PolicyMirrorTest, MapChangesReachTheSnapshotWithin100ms) {
  DNSPROXY_REQUIRE_PRIVILEGES();
  PinnedPaths paths;
  ASSERT_FALSE(paths.fs.dir().empty()) << "no bpf filesystem at /sys/fs/bpf and cannot mount one";
  {
    auto created = PolicyMaps::create(1024, 1024);
    ASSERT_TRUE(created) << created.error().message;
    ASSERT_TRUE(created->pin(paths.all()));
  }  // the agent's fds are gone; the pins keep the maps alive
  auto agent = PolicyMaps::open_pinned(paths.all());
  ASSERT_TRUE(agent) << agent.error().message;
  auto mirrored = PolicyMaps::open_pinned(paths.all());
  ASSERT_TRUE(mirrored) << mirrored.error().message;

  policy::QsbrDomain domain;
  policy::SnapshotStore store(domain);
  PolicyMirror mirror(std::move(*mirrored), store);
  auto reader = domain.register_reader();
  ASSERT_TRUE(reader);
  std::string control_error;
  {
    ControlThread control(mirror);

    ASSERT_TRUE(agent->update_endpoint({ip("192.0.2.10"), {101, 10001}}));
    auto waited = time_until(store, *reader, [](const policy::Snapshot& s) {
      return s.endpoints->find(ip("192.0.2.10")) != nullptr;
    });
    EXPECT_LT(waited, 100ms) << "new endpoint";

    ASSERT_TRUE(agent->update_prefix({*IpPrefix::parse("198.51.100.0/24"), 20001}));
    ASSERT_TRUE(agent->update_prefix({*IpPrefix::parse("2001:db8:5::53/128"), 20002}));
    waited = time_until(store, *reader, [](const policy::Snapshot& s) {
      return s.ipcache->lookup(ip("198.51.100.53")) == 20001 &&
             s.ipcache->lookup(ip("2001:db8:5::53")) == 20002;
    });
    EXPECT_LT(waited, 100ms) << "new prefixes";

    ASSERT_TRUE(agent->update_endpoint({ip("192.0.2.10"), {101, 10099}}));
    ASSERT_TRUE(agent->delete_prefix(*IpPrefix::parse("198.51.100.0/24")));
    waited = time_until(store, *reader, [](const policy::Snapshot& s) {
      const policy::EndpointInfo* e = s.endpoints->find(ip("192.0.2.10"));
      return e != nullptr && e->identity == 10099 &&
             s.ipcache->lookup(ip("198.51.100.53")) == policy::kWorldIdentity;
    });
    EXPECT_LT(waited, 100ms) << "changed identity, deleted prefix";

    ASSERT_TRUE(agent->delete_endpoint(ip("192.0.2.10")));
    waited = time_until(store, *reader,
                        [](const policy::Snapshot& s) { return s.endpoints->size() == 0; });
    EXPECT_LT(waited, 100ms) << "deleted endpoint";
  }
  EXPECT_EQ(mirror.stats().invalid_endpoints, 0u);
  EXPECT_EQ(mirror.stats().ipcache_map_reads, 1u) << "only the first poll walks the trie";
  EXPECT_GE(mirror.stats().ipcache_log_reads, 1u);
  reader->offline();
  EXPECT_EQ(store.reclaim(), 0u);
}

TEST(PolicyMirrorTest, UnchangedMapsAreNeitherReadNorRepublished) {
  DNSPROXY_REQUIRE_PRIVILEGES();
  PinnedPaths paths;
  ASSERT_FALSE(paths.fs.dir().empty()) << "no bpf filesystem at /sys/fs/bpf and cannot mount one";
  auto agent = PolicyMaps::create(16, 16);
  ASSERT_TRUE(agent) << agent.error().message;
  ASSERT_TRUE(agent->pin(paths.all()));
  ASSERT_TRUE(agent->update_endpoint({ip("192.0.2.10"), {101, 10001}}));
  policy::QsbrDomain domain;
  policy::SnapshotStore store(domain);
  auto mirrored = PolicyMaps::open_pinned(paths.all());
  ASSERT_TRUE(mirrored);
  PolicyMirror mirror(std::move(*mirrored), store);
  EXPECT_EQ(mirror.poll().value_or(false), true);
  const uint64_t version = store.current().version;
  EXPECT_EQ(mirror.poll().value_or(true), false);
  EXPECT_EQ(store.current().version, version);
  EXPECT_EQ(mirror.stats().endpoint_map_reads, 1u);  // the counters did not move: no read
  EXPECT_EQ(mirror.stats().ipcache_map_reads, 1u);
  const auto endpoint_table = store.current().endpoints;
  ASSERT_TRUE(agent->update_prefix({*IpPrefix::parse("198.51.100.0/24"), 20001}));
  EXPECT_EQ(mirror.poll().value_or(false), true);
  EXPECT_EQ(mirror.stats().endpoint_map_reads, 1u);
  EXPECT_EQ(mirror.stats().ipcache_map_reads, 1u);  // the logged key, not a walk
  EXPECT_EQ(mirror.stats().ipcache_log_reads, 1u);
  EXPECT_EQ(store.current().endpoints, endpoint_table);  // shared, not rebuilt
  // Rewriting the same identity moves the counter, reads the logged key, publishes nothing.
  ASSERT_TRUE(agent->update_prefix({*IpPrefix::parse("198.51.100.0/24"), 20001}));
  const uint64_t after_change = store.current().version;
  EXPECT_EQ(mirror.poll().value_or(true), false);
  EXPECT_EQ(store.current().version, after_change);
  EXPECT_EQ(mirror.stats().ipcache_log_reads, 2u);

  // An agent that keeps no counters: every poll reads, only changes are published.
  auto uncounted = PolicyMaps::open_pinned(paths.without_counters());
  ASSERT_TRUE(uncounted);
  PolicyMirror plain(std::move(*uncounted), store);
  EXPECT_EQ(plain.poll().value_or(false), true);
  EXPECT_EQ(plain.poll().value_or(true), false);
  EXPECT_EQ(plain.stats().endpoint_map_reads, 2u);
}

// Creates the agent's maps (log capacity as given) pinned at `paths.all()`; throws (failing the
// test) when it cannot.
PolicyMaps pinned_agent(const PinnedPaths& paths, uint32_t log_capacity) {
  auto agent = PolicyMaps::create(16, 64, log_capacity);
  EXPECT_TRUE(agent) << agent.error().message;
  EXPECT_TRUE(agent.value().pin(paths.all()));
  return std::move(agent).value();
}

TEST(PolicyMirrorTest, LoggedChangesAreAppliedAsDeltas) {
  DNSPROXY_REQUIRE_PRIVILEGES();
  PinnedPaths paths;
  ASSERT_FALSE(paths.fs.dir().empty()) << "no bpf filesystem at /sys/fs/bpf and cannot mount one";
  const PolicyMaps agent = pinned_agent(paths, PolicyMaps::kDefaultIpcacheLogCapacity);
  ASSERT_TRUE(agent.update_prefix({*IpPrefix::parse("198.51.100.0/24"), 20001}));
  ASSERT_TRUE(agent.update_prefix({*IpPrefix::parse("198.51.100.53/32"), 20053}));
  ASSERT_TRUE(agent.update_prefix({*IpPrefix::parse("2001:db8:5::/64"), 20064}));
  policy::QsbrDomain domain;
  policy::SnapshotStore store(domain);
  auto mirrored = PolicyMaps::open_pinned(paths.all());
  ASSERT_TRUE(mirrored) << mirrored.error().message;
  ASSERT_TRUE(mirrored->has_ipcache_log());
  PolicyMirror mirror(std::move(*mirrored), store);
  ASSERT_EQ(mirror.poll().value_or(false), true);  // the first poll walks (and drops the log)
  EXPECT_EQ(mirror.stats().ipcache_map_reads, 1u);
  EXPECT_EQ(mirror.stats().ipcache_changes, 0u);
  const auto walked = store.current().ipcache;

  ASSERT_TRUE(agent.delete_prefix(*IpPrefix::parse("198.51.100.53/32")));
  ASSERT_TRUE(agent.update_prefix({*IpPrefix::parse("2001:db8:5::/64"), 20099}));
  ASSERT_TRUE(agent.update_prefix({*IpPrefix::parse("203.0.113.0/24"), 20003}));
  ASSERT_EQ(mirror.poll().value_or(false), true);
  const policy::IpCache& ipcache = *store.current().ipcache;
  EXPECT_EQ(ipcache.size(), 3u);
  EXPECT_EQ(ipcache.lookup(ip("198.51.100.53")), 20001u);  // the /32 is gone: the /24 matches
  EXPECT_EQ(ipcache.lookup(ip("2001:db8:5::1")), 20099u);
  EXPECT_EQ(ipcache.lookup(ip("203.0.113.1")), 20003u);
  EXPECT_EQ(walked->lookup(ip("198.51.100.53")), 20053u);  // the previous snapshot's copy stands
  EXPECT_EQ(mirror.stats().ipcache_map_reads, 1u);
  EXPECT_EQ(mirror.stats().ipcache_log_reads, 1u);
  EXPECT_EQ(mirror.stats().ipcache_changes, 3u);
  EXPECT_EQ(mirror.poll().value_or(true), false);  // nothing moved
}

TEST(PolicyMirrorTest, LogOverflowFallsBackToAFullWalk) {
  DNSPROXY_REQUIRE_PRIVILEGES();
  PinnedPaths paths;
  ASSERT_FALSE(paths.fs.dir().empty()) << "no bpf filesystem at /sys/fs/bpf and cannot mount one";
  const PolicyMaps agent = pinned_agent(paths, 4);
  policy::QsbrDomain domain;
  policy::SnapshotStore store(domain);
  auto mirrored = PolicyMaps::open_pinned(paths.all());
  ASSERT_TRUE(mirrored) << mirrored.error().message;
  PolicyMirror mirror(std::move(*mirrored), store);
  ASSERT_TRUE(mirror.poll());

  // Ten writes and two deletes between two polls: the 4-entry log keeps 4, counts 8 lost.
  for (uint8_t i = 0; i < 10; ++i) {
    const std::array<uint8_t, 4> a = {203, 0, 113, i};
    ASSERT_TRUE(agent.update_prefix({IpPrefix{IpAddress::v4(a), 32}, 30000u + i}));
  }
  ASSERT_TRUE(agent.delete_prefix(*IpPrefix::parse("203.0.113.0/32")));
  ASSERT_TRUE(agent.delete_prefix(*IpPrefix::parse("203.0.113.9/32")));
  ASSERT_EQ(mirror.poll().value_or(false), true);
  EXPECT_EQ(mirror.stats().ipcache_map_reads, 2u);
  EXPECT_EQ(mirror.stats().ipcache_log_reads, 0u);
  const policy::IpCache& walked = *store.current().ipcache;
  EXPECT_EQ(walked.size(), 8u);
  EXPECT_EQ(walked.lookup(ip("203.0.113.0")), policy::kWorldIdentity);
  EXPECT_EQ(walked.lookup(ip("203.0.113.5")), 30005u);
  EXPECT_EQ(walked.lookup(ip("203.0.113.9")), policy::kWorldIdentity);

  // The walk emptied the log: the next change is a delta again.
  ASSERT_TRUE(agent.update_prefix({*IpPrefix::parse("203.0.113.5/32"), 30055}));
  ASSERT_EQ(mirror.poll().value_or(false), true);
  EXPECT_EQ(store.current().ipcache->lookup(ip("203.0.113.5")), 30055u);
  EXPECT_EQ(mirror.stats().ipcache_map_reads, 2u);
  EXPECT_EQ(mirror.stats().ipcache_log_reads, 1u);

  // A log without counters cannot say when it overflowed: refused.
  auto uncounted = PolicyMaps::open_pinned({paths.endpoints, paths.ipcache, "", paths.ipcache_log});
  ASSERT_FALSE(uncounted);
  EXPECT_NE(uncounted.error().message.find("generation counters"), std::string::npos);
}

TEST(PolicyMirrorTest, AnAgentWithoutTheLogStillWorks) {
  DNSPROXY_REQUIRE_PRIVILEGES();
  PinnedPaths paths;
  ASSERT_FALSE(paths.fs.dir().empty()) << "no bpf filesystem at /sys/fs/bpf and cannot mount one";
  {
    auto created = PolicyMaps::create(16, 64);
    ASSERT_TRUE(created) << created.error().message;
    ASSERT_TRUE(created->pin(paths.without_log()));  // an older agent: no log pinned
  }
  auto agent = PolicyMaps::open_pinned(paths.without_log());
  ASSERT_TRUE(agent) << agent.error().message;
  // The proxy is configured with a log path the agent did not pin: it walks instead.
  auto mirrored = PolicyMaps::open_pinned(paths.all());
  ASSERT_TRUE(mirrored) << mirrored.error().message;
  EXPECT_FALSE(mirrored->has_ipcache_log());
  policy::QsbrDomain domain;
  policy::SnapshotStore store(domain);
  PolicyMirror mirror(std::move(*mirrored), store);
  auto reader = domain.register_reader();
  ASSERT_TRUE(reader);
  {
    ControlThread control(mirror);
    ASSERT_TRUE(agent->update_prefix({*IpPrefix::parse("198.51.100.0/24"), 20001}));
    auto waited = time_until(store, *reader, [](const policy::Snapshot& s) {
      return s.ipcache->lookup(ip("198.51.100.53")) == 20001;
    });
    EXPECT_LT(waited, 100ms) << "new prefix";
    ASSERT_TRUE(agent->delete_prefix(*IpPrefix::parse("198.51.100.0/24")));
    waited = time_until(store, *reader,
                        [](const policy::Snapshot& s) { return s.ipcache->size() == 0; });
    EXPECT_LT(waited, 100ms) << "deleted prefix";
  }
  EXPECT_GE(mirror.stats().ipcache_map_reads, 2u);  // the first poll, then a walk per change seen
  EXPECT_EQ(mirror.stats().ipcache_log_reads, 0u);
  reader->offline();
}

TEST(PolicyMirrorTest, BadEntriesAreSkippedAndCounted) {
  DNSPROXY_REQUIRE_PRIVILEGES();
  PinnedPaths paths;
  ASSERT_FALSE(paths.fs.dir().empty()) << "no bpf filesystem at /sys/fs/bpf and cannot mount one";
  auto maps = PolicyMaps::create(16, 16);
  ASSERT_TRUE(maps);
  ASSERT_TRUE(maps->pin(paths.all()));
  ASSERT_TRUE(maps->update_endpoint({ip("192.0.2.10"), {101, 10001}}));
  // What a buggy agent might write: a family the ABI does not know, a prefix longer than IPv4.
  const int endpoint_fd = bpf_obj_get(paths.endpoints.c_str());
  const int ipcache_fd = bpf_obj_get(paths.ipcache.c_str());
  ASSERT_GE(endpoint_fd, 0);
  ASSERT_GE(ipcache_fd, 0);
  endpoint_key bad_family{};
  bad_family.family = 7;
  const endpoint_value value{9, 9};
  ASSERT_EQ(bpf_map_update_elem(endpoint_fd, &bad_family, &value, BPF_ANY), 0);
  ipcache_key too_long{};
  too_long.prefixlen = DNSPROXY_IPCACHE_PREFIX_BASE + 64;
  too_long.family = DNSPROXY_FAMILY_V4;
  const ipcache_value identity{5, 0};
  ASSERT_EQ(bpf_map_update_elem(ipcache_fd, &too_long, &identity, BPF_ANY), 0);
  close(endpoint_fd);
  close(ipcache_fd);

  policy::QsbrDomain domain;
  policy::SnapshotStore store(domain);
  auto mirrored = PolicyMaps::open_pinned(paths.all());
  ASSERT_TRUE(mirrored);
  PolicyMirror mirror(std::move(*mirrored), store);
  ASSERT_TRUE(mirror.poll());
  EXPECT_EQ(store.current().endpoints->size(), 1u);
  EXPECT_EQ(store.current().ipcache->size(), 0u);
  EXPECT_EQ(mirror.stats().invalid_endpoints, 1u);
  EXPECT_EQ(mirror.stats().invalid_prefixes, 1u);
}

TEST(PolicyMirrorTest, OpenPinnedChecksTheLayout) {
  DNSPROXY_REQUIRE_PRIVILEGES();
  PinnedPaths paths;
  ASSERT_FALSE(paths.fs.dir().empty()) << "no bpf filesystem at /sys/fs/bpf and cannot mount one";
  const int wrong = bpf_map_create(BPF_MAP_TYPE_ARRAY, "dnsproxy_wrong", 4, 8, 4, nullptr);
  ASSERT_GE(wrong, 0);
  ASSERT_EQ(bpf_obj_pin(wrong, paths.endpoints.c_str()), 0);
  ASSERT_EQ(bpf_obj_pin(wrong, paths.ipcache.c_str()), 0);
  close(wrong);
  auto maps = PolicyMaps::open_pinned(paths.all());
  ASSERT_FALSE(maps);
  EXPECT_NE(maps.error().message.find("dnsproxy_abi.h"), std::string::npos) << maps.error().message;
  auto missing = PolicyMaps::open_pinned({paths.endpoints + "-missing", paths.ipcache, ""});
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message.find("No such file"), std::string::npos);
}

}  // namespace
}  // namespace dnsproxy::datapath
