// Typed accessors for dns_steer's maps (datapath/bpf/dnsproxy_abi.h has one purpose comment per
// map). Each wraps a map fd it does not own: the loaded program (skeleton) owns the maps and
// outlives the accessor. Control-plane only: every call is a syscall and returns a Result.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <string_view>

#include "common/result.h"
#include "datapath/abi.h"
#include "policy/ip_address.h"
#include "policy/rules.h"
#include "policy/tables.h"

namespace dnsproxy::datapath {

// dns_steer_stats summed over CPUs: one value per enum dns_steer_stat.
struct SteerCounters {
  std::array<uint64_t, DNS_STEER_STAT__COUNT> values{};

  uint64_t operator[](dns_steer_stat stat) const { return values[stat]; }
  // Stable snake_case name of a counter ("drop_short_dns"), for logs, the CLI and metrics.
  static std::string_view name(dns_steer_stat stat);
};

// A per-CPU array of counters (slot i -> one value per CPU) summed over CPUs into `out`, one slot
// per element; `map_name` names it in errors.
Result<void> read_percpu_counters(int fd, std::string_view map_name, std::span<uint64_t> out);

// dns_steer_stats: per-CPU counters.
class StatsMap {
 public:
  explicit StatsMap(int fd) : fd_(fd) {}
  Result<SteerCounters> read() const;

 private:
  int fd_;
};

// Counters of a running dns_steer read from its pin in `pin_dir` (dnsproxyctl, monitoring): no
// SteerProgram needed, only read access to the bpf filesystem.
Result<SteerCounters> read_pinned_counters(const std::string& pin_dir);

// dns_steer_xsks: AF_XDP socket per slot (slot = interface base + receive queue).
class XskMap {
 public:
  explicit XskMap(int fd) : fd_(fd) {}
  // The socket must be bound (xsk_socket__create) to the slot's interface and queue.
  Result<void> set(uint32_t slot, int xsk_fd) const;
  void clear(uint32_t slot) const noexcept;  // an empty slot is fine
  // No lookup: the kernel does not hand sockets back out of an XSKMAP to user space.

 private:
  int fd_;
};

// dns_steer_ifaces: ifindex -> the interface's first XSKMAP slot.
class IfaceMap {
 public:
  explicit IfaceMap(int fd) : fd_(fd) {}
  Result<void> set(uint32_t ifindex, uint32_t xsk_slot_base) const;

 private:
  int fd_;
};

// dns_steer_next: the one-slot program array dns_steer tail-calls instead of XDP_PASS.
class NextProgramMap {
 public:
  explicit NextProgramMap(int fd) : fd_(fd) {}
  Result<void> set(int prog_fd) const;  // an XDP program; it gets what dns_steer would pass
  void clear() const noexcept;

 private:
  int fd_;
};

// dns_steer_sources: endpoint address -> what XDP polices on its traffic (dnsproxy_abi.h).
class SourcesMap {
 public:
  using Sources = std::map<policy::IpAddress, policed_source>;
  explicit SourcesMap(int fd) : fd_(fd) {}
  // Makes the map hold exactly `sources`: writes every entry first, then deletes the addresses
  // no longer listed, so an address policed before and after is never unpoliced in between.
  Result<void> replace(const Sources& sources) const;
  Result<Sources> read() const;

 private:
  int fd_;
};

// What dns_steer_sources holds for a policy: each address of an endpoint with DNS rules
// (DNSPROXY_SOURCE_DNS_RULES) or toFQDNs selectors (DNSPROXY_SOURCE_TO_FQDNS).
SourcesMap::Sources policed_sources(const policy::RuleSet& rules,
                                    std::span<const policy::EndpointEntry> endpoints);

}  // namespace dnsproxy::datapath
