// The mirror's cost at scale (issue 5): reading 64k endpoints and 1M ipcache prefixes out of real
// BPF maps and rebuilding the tables, next to what one ipcache change costs through the agent's
// change log (read one key back, copy one shard of the ipcache, publish). Needs CAP_BPF (run as
// root); says so and exits otherwise.
#include <benchmark/benchmark.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <vector>

#include "datapath/policy_mirror.h"

namespace dnsproxy::datapath {
namespace {

constexpr uint32_t kEndpoints = 65'536;
constexpr uint32_t kPrefixes = 1'000'000;

struct Maps {
  std::unique_ptr<PolicyMaps> maps;
  policy::QsbrDomain domain;
  policy::SnapshotStore store{domain};
  std::unique_ptr<PolicyMirror> mirror;  // owns the maps; the "agent" writes through it too
  Maps() {
    auto created = PolicyMaps::create(kEndpoints, kPrefixes);
    if (!created) {
      std::fprintf(stderr, "policy_mirror bench: %s (needs CAP_BPF: run as root)\n",
                   created.error().message.c_str());
      std::exit(1);
    }
    maps = std::make_unique<PolicyMaps>(std::move(*created));
    for (uint32_t i = 0; i < kEndpoints; ++i) {
      const std::array<uint8_t, 4> a = {192, 0, static_cast<uint8_t>(i >> 8),
                                        static_cast<uint8_t>(i)};
      (void)maps->update_endpoint({policy::IpAddress::v4(a), {i + 1, 100000 + i}});
    }
    // The same shape as the ipcache micro benchmark: mostly /32s, some /24s and /16s, some /128s.
    for (uint32_t i = 0; i < kPrefixes; ++i) {
      policy::IpCacheEntry e;
      if (i < 900'000) {
        const uint32_t v = (10u << 24) | (i * 17 % (1u << 24));
        const std::array<uint8_t, 4> a = {10, static_cast<uint8_t>(v >> 16),
                                          static_cast<uint8_t>(v >> 8), static_cast<uint8_t>(v)};
        e = {policy::IpPrefix{policy::IpAddress::v4(a), 32}, 100000 + i % 5000};
      } else if (i < 960'000) {
        const uint32_t n = i - 900'000;
        const std::array<uint8_t, 4> a = {100, static_cast<uint8_t>(n >> 8),
                                          static_cast<uint8_t>(n), 0};
        e = {policy::IpPrefix{policy::IpAddress::v4(a), 24}, 200000 + n % 100};
      } else if (i < 970'000) {
        const uint32_t n = i - 960'000;
        const std::array<uint8_t, 4> a = {static_cast<uint8_t>(172 + (n >> 8)),
                                          static_cast<uint8_t>(n), 0, 0};
        e = {policy::IpPrefix{policy::IpAddress::v4(a), 16}, 300000 + n % 100};
      } else {
        const uint32_t n = i - 970'000;
        policy::IpAddress a = *policy::IpAddress::parse("2001:db8:c::");
        a.bytes[12] = static_cast<uint8_t>(n >> 8);
        a.bytes[15] = static_cast<uint8_t>(n);
        e = {policy::IpPrefix{a, 128}, 400000 + n % 100};
      }
      (void)maps->update_prefix(e);
    }
    mirror = std::make_unique<PolicyMirror>(std::move(*maps), store);
    maps.reset();
    (void)mirror->poll();  // the first, full read
  }
  const PolicyMaps& agent() const { return mirror->maps(); }
};

Maps& maps() {
  static Maps m;
  return m;
}

void BM_ReadEndpointMap64k(benchmark::State& state) {
  maps();  // build the maps outside the timed loop
  MapReadStats stats;
  size_t read = 0;
  for (auto _ : state) read = maps().agent().read_endpoints(stats)->size();
  state.counters["entries"] = static_cast<double>(read);
  state.SetItemsProcessed(state.iterations() * read);
}
BENCHMARK(BM_ReadEndpointMap64k)->Unit(benchmark::kMillisecond)->Iterations(5);

void BM_ReadIpCacheMap1M(benchmark::State& state) {
  maps();
  MapReadStats stats;
  size_t read = 0;
  for (auto _ : state) read = maps().agent().read_ipcache(stats)->size();
  state.counters["entries"] = static_cast<double>(read);
  state.SetItemsProcessed(state.iterations() * read);
}
BENCHMARK(BM_ReadIpCacheMap1M)->Unit(benchmark::kMillisecond)->Iterations(3);

// A full mirror pass that finds both maps changed: read both, rebuild both tables, publish.
void BM_MirrorRebuild64kEndpoints1MPrefixes(benchmark::State& state) {
  maps();
  MapReadStats stats;
  for (auto _ : state) {
    auto endpoints = maps().agent().read_endpoints(stats);
    auto ipcache = maps().agent().read_ipcache(stats);
    policy::QsbrDomain domain;
    policy::SnapshotStore store(domain);
    store.replace({nullptr, std::make_shared<const policy::EndpointTable>(*endpoints),
                   std::make_shared<const policy::IpCache>(*ipcache), nullptr});
    benchmark::DoNotOptimize(store.current().version);
  }
}
BENCHMARK(BM_MirrorRebuild64kEndpoints1MPrefixes)->Unit(benchmark::kMillisecond)->Iterations(3);

// What a poll costs when nothing changed: the two counters, no map read.
void BM_PollIdle(benchmark::State& state) {
  maps();
  for (auto _ : state) benchmark::DoNotOptimize(maps().mirror->poll());
}
BENCHMARK(BM_PollIdle)->Unit(benchmark::kMicrosecond);

// One endpoint changed: the poll re-reads the 64k-entry endpoint map only and republishes its
// table (the 1M-prefix ipcache is shared, not rebuilt). This is the change -> snapshot latency
// on top of the poll interval.
void BM_PollAfterEndpointChange(benchmark::State& state) {
  maps();
  uint32_t n = 0;
  for (auto _ : state) {
    const std::array<uint8_t, 4> a = {192, 0, 0, 1};
    (void)maps().agent().update_endpoint({policy::IpAddress::v4(a), {1, 500000 + n++}});
    benchmark::DoNotOptimize(maps().mirror->poll());
  }
}
BENCHMARK(BM_PollAfterEndpointChange)->Unit(benchmark::kMillisecond)->Iterations(5);

// The user-space half of an ipcache change, without the maps: rebuilding the 1M-prefix ipcache
// from its entries, against deriving it from the current one with one prefix changed.
const std::vector<policy::IpCacheEntry>& ipcache_entries() {
  static const std::vector<policy::IpCacheEntry> entries = [] {
    MapReadStats stats;
    return maps().agent().read_ipcache(stats).value();
  }();
  return entries;
}

void BM_IpCacheBuild1M(benchmark::State& state) {
  const auto& entries = ipcache_entries();
  for (auto _ : state) benchmark::DoNotOptimize(policy::IpCache(entries).size());
}
BENCHMARK(BM_IpCacheBuild1M)->Unit(benchmark::kMillisecond)->Iterations(5);

void BM_IpCacheOneChange1M(benchmark::State& state) {
  const policy::IpCache cache(ipcache_entries());
  uint32_t n = 0;
  for (auto _ : state) {
    const std::array<uint8_t, 4> a = {100, 0, 0, 0};
    const policy::IpCacheChange change{policy::IpPrefix{policy::IpAddress::v4(a), 24},
                                       600000 + n++};
    benchmark::DoNotOptimize(cache.with_changes({&change, 1}).size());
  }
}
BENCHMARK(BM_IpCacheOneChange1M)->Unit(benchmark::kMicrosecond);

// One prefix changed, through the change log: the agent's write (trie, log, counter) and the
// poll that reads the key back, applies it to the 1M-prefix ipcache and publishes. This is the
// change -> snapshot latency on top of the poll interval.
void BM_IpcacheChangeViaLog(benchmark::State& state) {
  maps();
  uint32_t n = 0;
  size_t published = 0;
  for (auto _ : state) {
    const std::array<uint8_t, 4> a = {100, 0, 0, 0};
    (void)maps().agent().update_prefix(
        {policy::IpPrefix{policy::IpAddress::v4(a), 24}, 600000 + n++});
    published += maps().mirror->poll().value_or(false);
  }
  state.counters["published"] =
      static_cast<double>(published) / static_cast<double>(state.iterations());
}
BENCHMARK(BM_IpcacheChangeViaLog)->Unit(benchmark::kMicrosecond);

// One prefix changed after the log overflowed (filled, untimed, with rewrites of one prefix):
// the poll drops the logged keys, walks the 1M-prefix trie, rebuilds the ipcache and publishes.
// The same as a change from an agent that keeps no log.
void BM_IpcacheChangeViaFullWalk(benchmark::State& state) {
  maps();
  uint32_t n = 0;
  const std::array<uint8_t, 4> a = {100, 0, 0, 0};
  const policy::IpPrefix prefix{policy::IpAddress::v4(a), 24};
  const size_t walks_before = maps().mirror->stats().ipcache_map_reads;
  for (auto _ : state) {
    state.PauseTiming();
    for (uint32_t i = 0; i < PolicyMaps::kDefaultIpcacheLogCapacity; ++i)
      (void)maps().agent().update_prefix({prefix, 700000 + n});
    state.ResumeTiming();
    (void)maps().agent().update_prefix({prefix, 700000 + ++n});
    benchmark::DoNotOptimize(maps().mirror->poll());
  }
  state.counters["walks"] =
      static_cast<double>(maps().mirror->stats().ipcache_map_reads - walks_before) /
      static_cast<double>(state.iterations());
}
BENCHMARK(BM_IpcacheChangeViaFullWalk)->Unit(benchmark::kMillisecond)->Iterations(3);

}  // namespace
}  // namespace dnsproxy::datapath
