// Policy decisions and ipcache lookups (issue 5), each against its peer in the same binary:
//  - BM_Decide/*: one decision (endpoint table + ipcache + rules + name matcher) for an endpoint
//    with 10k patterns, 100k patterns in the snapshot (10 such endpoints).
//  - BM_DecideStdRegex/*: the same decision, the name matched by one std::regex per rule built
//    the way Cilium builds it (an alternation of every pattern's anchored translation), fed the
//    presentation form as Cilium's proxy does.
//  - BM_IpCacheLookup/*: longest-prefix match at 1M prefixes (random addresses: memory-bound
//    worst case; "dns_servers": the handful of addresses a node's queries actually go to).
//  - BM_Build*: the control thread's cost to rebuild tables and matchers.
// Cilium's rule regex for 10k patterns has ~1M NFA states; libstdc++ refuses more than 100k
// unless told otherwise (before <regex> is first included).
#define _GLIBCXX_REGEX_STATE_LIMIT 50'000'000
#include <benchmark/benchmark.h>

#include <array>
#include <random>
#include <regex>
#include <string>
#include <vector>

#include "dns/name_text.h"
#include "policy/snapshot.h"
#include "test/policy/cilium_regex.h"

namespace dnsproxy::policy {
namespace {

constexpr uint32_t kEndpoints = 10;
constexpr uint32_t kPatternsPerEndpoint = 10'000;
constexpr uint32_t kServerIdentity = 20001;

std::vector<uint8_t> to_wire(const std::string& text) {
  std::array<uint8_t, dns::kMaxNameWireLength> buffer{};
  auto n = dns::name_from_text(text, buffer);
  std::vector<uint8_t> out(buffer.begin(), buffer.begin() + (n ? *n : 0));
  dns::lowercase_ascii(out);
  return out;
}

IpAddress client_of(uint32_t endpoint) {
  const std::array<uint8_t, 4> a = {192, 0, 2, static_cast<uint8_t>(10 + endpoint)};
  return IpAddress::v4(a);
}

// Pattern i of endpoint e: 80% exact names, 10% "**." suffixes, 10% in-label wildcards, the
// shapes FQDN policies are made of.
std::string pattern_text(uint32_t e, uint32_t i, bool& exact) {
  const std::string team = "team" + std::to_string(i % 97) + "-e" + std::to_string(e);
  exact = i % 10 < 8;
  if (exact) return "svc" + std::to_string(i) + "." + team + ".example.com";
  if (i % 10 == 8) return "**.zone" + std::to_string(i) + ".example.net";
  return "api-*.region" + std::to_string(i) + ".example.org";
}

struct Fixture {
  QsbrDomain domain;
  SnapshotStore store{domain};
  std::vector<std::vector<std::string>> regex_alternatives;  // per endpoint
  // Queries for endpoint 0: [0] a mix (a quarter each of the kinds below), [1] exact-name hits,
  // [2] "**." suffix hits, [3] in-label wildcard hits, [4] misses.
  std::array<std::vector<std::vector<uint8_t>>, 5> queries;
  IpAddress server = *IpAddress::parse("198.51.100.53");

  Fixture() {
    PolicySpec spec;
    std::vector<EndpointEntry> endpoints;
    regex_alternatives.resize(kEndpoints);
    for (uint32_t e = 0; e < kEndpoints; ++e) {
      DnsRule rule{53, Protocol::kAny, {false, {kServerIdentity}}, {}};
      for (uint32_t i = 0; i < kPatternsPerEndpoint; ++i) {
        bool exact = false;
        const std::string text = pattern_text(e, i, exact);
        auto p = exact ? parse_match_name(text) : parse_match_pattern(text);
        regex_alternatives[e].push_back(exact ? test::cilium_match_name_regex(p->text)
                                              : test::cilium_match_pattern_regex(p->text));
        rule.patterns.push_back(std::move(*p));
      }
      spec.endpoints.push_back({e + 1, {rule}, {}});
      endpoints.push_back({client_of(e), {e + 1, 10000 + e}});
    }
    const std::vector<IpCacheEntry> ipcache = {{IpPrefix{server, 32}, kServerIdentity},
                                               {*IpPrefix::parse("198.51.100.0/24"), 7}};
    store.replace({std::make_shared<RuleSet>(*RuleSet::compile(spec)),
                   std::make_shared<EndpointTable>(endpoints), std::make_shared<IpCache>(ipcache),
                   nullptr});
    // Queries: a quarter each exact hits, suffix hits, wildcard hits, misses.
    std::mt19937 rng(42);
    for (int q = 0; q < 1024; ++q) {
      const uint32_t i = rng() % kPatternsPerEndpoint;
      const std::string team = "team" + std::to_string((i - i % 10) % 97) + "-e0";
      std::string name;
      switch (q % 4) {
        case 0:
          name = "svc" + std::to_string(i - i % 10) + "." + team + ".example.com";
          break;
        case 1:
          name = "cdn.a.zone" + std::to_string(i - i % 10 + 8) + ".example.net";
          break;
        case 2:
          name = "api-7.region" + std::to_string(i - i % 10 + 9) + ".example.org";
          break;
        default:
          name = "www" + std::to_string(i) + ".not-allowed.example.com";
          break;
      }
      queries[0].push_back(to_wire(name));
      queries[1 + q % 4].push_back(to_wire(name));
    }
  }
};

Fixture& fixture() {
  static Fixture f;
  return f;
}

constexpr const char* kQueryKinds[] = {"mixed", "exact_hits", "suffix_hits", "wildcard_hits",
                                       "misses"};

void BM_Decide(benchmark::State& state) {
  Fixture& f = fixture();
  const auto& queries = f.queries[state.range(0)];
  const size_t mask = queries.size() - 1;  // 1024 or 256
  const IpAddress client = client_of(0);
  size_t q = 0;
  size_t allowed = 0;
  const Snapshot* s = f.store.acquire();
  for (auto _ : state) {
    const Decision d = s->decide(client, f.server, 53, Protocol::kUdp, queries[q++ & mask]);
    allowed += d.allowed;
    benchmark::DoNotOptimize(d);
  }
  state.counters["allowed_share"] = static_cast<double>(allowed) / state.iterations();
  state.SetItemsProcessed(state.iterations());
  state.SetLabel(kQueryKinds[state.range(0)]);
}
BENCHMARK(BM_Decide)->Name("BM_Decide/10k_patterns_on_endpoint/100k_in_snapshot")->DenseRange(0, 4);

void BM_DecideStdRegex(benchmark::State& state) {
  Fixture& f = fixture();
  const auto& queries = f.queries[state.range(0)];
  const size_t mask = queries.size() - 1;
  const std::regex rule = test::cilium_rule_regex(f.regex_alternatives[0]);
  const Snapshot* s = f.store.acquire();
  const IpAddress client = client_of(0);
  size_t q = 0;
  size_t allowed = 0;
  std::string text;
  for (auto _ : state) {
    // Same table lookups as Snapshot::decide, then Cilium's name check.
    const EndpointInfo* source = s->endpoints->find(client);
    const uint32_t identity = s->ipcache->lookup(f.server);
    text.clear();
    dns::append_name_text(queries[q++ & mask], text);
    const bool ok =
        source != nullptr && identity == kServerIdentity && std::regex_match(text, rule);
    allowed += ok;
    benchmark::DoNotOptimize(ok);
  }
  state.counters["allowed_share"] = static_cast<double>(allowed) / state.iterations();
  state.SetItemsProcessed(state.iterations());
  state.SetLabel(kQueryKinds[state.range(0)]);
}
BENCHMARK(BM_DecideStdRegex)->Name("BM_DecideStdRegex/10k_patterns_on_endpoint")->DenseRange(0, 4);

// ---- ipcache at 1M prefixes ----

struct IpCacheFixture {
  std::vector<IpCacheEntry> entries;
  std::unique_ptr<IpCache> cache;
  std::vector<IpAddress> random_addresses;
  std::vector<IpAddress> dns_servers;

  IpCacheFixture() {
    std::mt19937 rng(1);
    // 1M prefixes: 900k pod /32s in 10.0.0.0/8, 60k /24s, 10k /16s in 172.16.0.0/12-ish space,
    // 30k IPv6 /128s: the shape of a large cluster's ipcache.
    auto v4 = [](uint32_t a) {
      const std::array<uint8_t, 4> b = {static_cast<uint8_t>(a >> 24),
                                        static_cast<uint8_t>(a >> 16), static_cast<uint8_t>(a >> 8),
                                        static_cast<uint8_t>(a)};
      return IpAddress::v4(b);
    };
    for (uint32_t i = 0; i < 900'000; ++i)
      entries.push_back({IpPrefix{v4((10u << 24) | (i * 17 % (1u << 24))), 32}, 100000 + i % 5000});
    for (uint32_t i = 0; i < 60'000; ++i)
      entries.push_back({IpPrefix{v4((100u << 24) | (i << 8)), 24}, 200000 + i % 100});
    for (uint32_t i = 0; i < 10'000; ++i)
      entries.push_back({IpPrefix{v4((172u << 24) | (i << 16)), 16}, 300000 + i % 100});
    for (uint32_t i = 0; i < 30'000; ++i) {
      IpAddress a = *IpAddress::parse("2001:db8:c::");
      a.bytes[12] = static_cast<uint8_t>(i >> 8);
      a.bytes[15] = static_cast<uint8_t>(i);
      entries.push_back({IpPrefix{a, 128}, 400000 + i % 100});
    }
    cache = std::make_unique<IpCache>(entries);
    for (int n = 0; n < 4096; ++n) {
      const IpCacheEntry& e = entries[rng() % entries.size()];
      IpAddress a = e.prefix.address;
      if (a.family == Family::kV4 && e.prefix.length < 32) a.bytes[3] = static_cast<uint8_t>(rng());
      random_addresses.push_back(n % 8 == 7 ? v4(rng()) : a);  // 1 in 8 mostly misses
    }
    for (const char* s : {"10.0.0.17", "10.0.0.34", "100.0.3.9", "2001:db8:c::1"})
      dns_servers.push_back(*IpAddress::parse(s));
  }
};

IpCacheFixture& ipcache_fixture() {
  static IpCacheFixture f;
  return f;
}

void BM_IpCacheLookup(benchmark::State& state, bool hot) {
  IpCacheFixture& f = ipcache_fixture();
  const std::vector<IpAddress>& addresses = hot ? f.dns_servers : f.random_addresses;
  const size_t mask = hot ? 3 : 4095;
  size_t i = 0;
  for (auto _ : state) benchmark::DoNotOptimize(f.cache->lookup(addresses[i++ & mask]));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK_CAPTURE(BM_IpCacheLookup, 1M_prefixes / random_addresses, false);
BENCHMARK_CAPTURE(BM_IpCacheLookup, 1M_prefixes / dns_servers, true);

// ---- Control-thread rebuild costs ----

void BM_BuildIpCache1M(benchmark::State& state) {
  IpCacheFixture& f = ipcache_fixture();
  for (auto _ : state) benchmark::DoNotOptimize(IpCache(f.entries));
  state.SetItemsProcessed(state.iterations() * f.entries.size());
}
BENCHMARK(BM_BuildIpCache1M)->Unit(benchmark::kMillisecond);

void BM_BuildEndpointTable64k(benchmark::State& state) {
  std::vector<EndpointEntry> entries;
  for (uint32_t i = 0; i < 65'536; ++i) {
    const std::array<uint8_t, 4> a = {10, static_cast<uint8_t>(i >> 16),
                                      static_cast<uint8_t>(i >> 8), static_cast<uint8_t>(i)};
    entries.push_back({IpAddress::v4(a), {i + 1, 100000 + i}});
  }
  for (auto _ : state) benchmark::DoNotOptimize(EndpointTable(entries));
  state.SetItemsProcessed(state.iterations() * entries.size());
}
BENCHMARK(BM_BuildEndpointTable64k)->Unit(benchmark::kMillisecond);

void BM_BuildMatcher10k(benchmark::State& state) {
  std::vector<NamePattern> patterns;
  for (uint32_t i = 0; i < kPatternsPerEndpoint; ++i) {
    bool exact = false;
    const std::string text = pattern_text(0, i, exact);
    patterns.push_back(*(exact ? parse_match_name(text) : parse_match_pattern(text)));
  }
  for (auto _ : state) benchmark::DoNotOptimize(NameMatcher::build(patterns));
  state.SetItemsProcessed(state.iterations() * patterns.size());
}
BENCHMARK(BM_BuildMatcher10k)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace dnsproxy::policy
