#include "datapath/l3_guard.h"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "datapath/steer_maps.h"
#include "datapath/steer_program.h"
#include "l3_guard.skel.h"

namespace dnsproxy::datapath {
namespace {

// Indexed by enum l3_guard_stat.
constexpr std::string_view kStatNames[] = {
    "rx",       "pass_not_ip",  "pass_not_policed", "pass_link_scope",
    "pass_dns", "pass_allowed", "drop_not_plumbed", "drop_expired",
};
static_assert(std::size(kStatNames) == L3_GUARD_STAT__COUNT,
              "every l3_guard_stat needs a name in kStatNames");

}  // namespace

std::string_view L3GuardCounters::name(l3_guard_stat stat) {
  return stat < L3_GUARD_STAT__COUNT ? kStatNames[stat] : std::string_view("unknown");
}

Result<std::unique_ptr<L3Guard>> L3Guard::install(SteerProgram& steer, int allow_map_fd,
                                                  std::span<const uint16_t> dns_ports) {
  if (dns_ports.empty() || dns_ports.size() > DNS_STEER_MAX_PORTS)
    return fail("l3_guard: 1 to ", std::to_string(DNS_STEER_MAX_PORTS), " DNS ports, got ",
                std::to_string(dns_ports.size()));
  std::unique_ptr<L3Guard> guard(new L3Guard(steer));
  guard->skeleton_ = l3_guard::open();
  if (!guard->skeleton_) return fail("opening l3_guard: ", std::strerror(errno));
  l3_guard_config& config = const_cast<l3_guard_config&>(guard->skeleton_->rodata->l3_guard_config);
  config.port_count = static_cast<__u8>(dns_ports.size());
  for (size_t i = 0; i < dns_ports.size(); ++i) config.ports[i] = htons(dns_ports[i]);
  // One map, two users: the program's own definitions are replaced by the existing maps (libbpf
  // checks type, key and value sizes at load).
  if (int err = bpf_map__reuse_fd(guard->skeleton_->maps.dns_steer_sources, steer.sources_map_fd());
      err != 0)
    return fail("l3_guard: sharing dns_steer_sources: ", std::strerror(-err));
  if (int err = bpf_map__reuse_fd(guard->skeleton_->maps.dnsproxy_fqdn_allow, allow_map_fd);
      err != 0)
    return fail("l3_guard: sharing the allow map: ", std::strerror(-err));
  if (int err = l3_guard::load(guard->skeleton_); err != 0)
    return fail("loading l3_guard: ", std::strerror(-err),
                " (does the allow map match struct fqdn_allow_key / fqdn_allow_value?)");
  // In a chain, what dns_steer passed to goes behind the guard first, so that no packet finds
  // the chain cut off while the guard moves in.
  if (const int rest = steer.chain_next_fd(); rest >= 0)
    if (auto next = NextProgramMap(bpf_map__fd(guard->skeleton_->maps.l3_guard_next)).set(rest);
        !next)
      return tl::unexpected(next.error());
  if (auto chained = steer.set_next_program(guard->program_fd()); !chained)
    return tl::unexpected(chained.error());
  guard->installed_ = true;
  return guard;
}

L3Guard::~L3Guard() {
  // dns_steer's next slot gets back what it held before the guard: the rest of the chain, if
  // any, so the chain stays whole while dns_steer is still in it.
  if (installed_) {
    const int rest = steer_.chain_next_fd();
    if (rest < 0 || !steer_.set_next_program(rest)) steer_.clear_next_program();
  }
  if (skeleton_) l3_guard::destroy(skeleton_);
}

Result<L3GuardCounters> L3Guard::counters() const {
  L3GuardCounters counters;
  if (auto read = read_percpu_counters(bpf_map__fd(skeleton_->maps.l3_guard_stats),
                                       "l3_guard_stats", counters.values);
      !read)
    return tl::unexpected(read.error());
  return counters;
}

int L3Guard::program_fd() const {
  return bpf_program__fd(skeleton_->progs.l3_guard);
}

}  // namespace dnsproxy::datapath
