// Loader for l3_guard (datapath/bpf/l3_guard.bpf.c), the L3 half of toFQDNs policy: loads it
// sharing dns_steer's policed-sources map and the agent's allow map, and installs it as
// dns_steer's next program, so it sees every packet dns_steer does not steer. When dns_steer is
// chained into another program's array (--chain-into), the rest of that chain moves behind the
// guard (its l3_guard_next slot): dns_steer -> l3_guard -> the chain's next program.
//
//   auto guard = L3Guard::install(steer, allow_map_fd, dns_ports);  // load, chain in
//   ... guard->counters() ...
//   guard.reset();                                                   // chain out, unload
//
// Control thread only. The guard owns neither map; `steer` must outlive it.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>

#include "common/result.h"
#include "datapath/abi.h"

struct l3_guard;

namespace dnsproxy::datapath {

class SteerProgram;

// l3_guard_stats summed over CPUs: one value per enum l3_guard_stat.
struct L3GuardCounters {
  std::array<uint64_t, L3_GUARD_STAT__COUNT> values{};
  uint64_t operator[](l3_guard_stat stat) const { return values[stat]; }
  static std::string_view name(l3_guard_stat stat);  // "drop_not_plumbed"
};

class L3Guard {
 public:
  // Loads l3_guard over dns_steer's dns_steer_sources and the allow map `allow_map_fd`
  // (struct fqdn_allow_key -> struct fqdn_allow_value), with the DNS ports it never polices, and
  // makes it dns_steer's next program (passing on to steer.chain_next_fd() when chained). Fails,
  // leaving dns_steer's next slot as it was, when the maps do not match the ABI or the kernel
  // refuses the program.
  static Result<std::unique_ptr<L3Guard>> install(SteerProgram& steer, int allow_map_fd,
                                                  std::span<const uint16_t> dns_ports);
  L3Guard(const L3Guard&) = delete;
  L3Guard& operator=(const L3Guard&) = delete;
  ~L3Guard();  // gives dns_steer's next slot back (the chain's next program, or empty), unloads

  Result<L3GuardCounters> counters() const;
  int program_fd() const;

 private:
  explicit L3Guard(SteerProgram& steer) : steer_(steer) {}
  SteerProgram& steer_;
  l3_guard* skeleton_ = nullptr;
  bool installed_ = false;
};

}  // namespace dnsproxy::datapath
