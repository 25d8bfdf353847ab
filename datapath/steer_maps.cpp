#include "datapath/steer_maps.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "datapath/map_walk.h"

namespace dnsproxy::datapath {
namespace {

std::string errno_text(int err) {
  return std::strerror(err);
}

// Indexed by enum dns_steer_stat; the static_assert below catches a counter added to the ABI
// header without a name here.
constexpr std::string_view kStatNames[] = {
    "rx",
    "pass_not_ip",
    "pass_not_udp",
    "pass_not_dns",
    "pass_tcp_dns",
    "pass_fragment",
    "pass_no_socket",
    "drop_no_socket",
    "drop_fragment",
    "drop_short_fragment",
    "drop_bad_l2",
    "drop_bad_ipv4",
    "drop_bad_ipv6",
    "drop_bad_udp",
    "drop_short_dns",
    "drop_tcp_dns",
    "drop_long_ext_chain",
    "pass_no_meta",
    "drop_no_meta",
    "redirect",
    "fib_ok",
    "fib_no_neigh",
    "fib_not_forwarded",
    "fib_unreachable",
    "fib_frag_needed",
    "fib_fwd_disabled",
    "fib_other",
};
static_assert(std::size(kStatNames) == DNS_STEER_STAT__COUNT,
              "every dns_steer_stat needs a name in kStatNames");

}  // namespace

std::string_view SteerCounters::name(dns_steer_stat stat) {
  return stat < DNS_STEER_STAT__COUNT ? kStatNames[stat] : std::string_view("unknown");
}

Result<void> read_percpu_counters(int fd, std::string_view map_name, std::span<uint64_t> out) {
  const int cpus = libbpf_num_possible_cpus();
  if (cpus <= 0) return fail("cannot count possible CPUs: ", errno_text(-cpus));
  std::vector<uint64_t> per_cpu(static_cast<size_t>(cpus));
  for (uint32_t slot = 0; slot < out.size(); ++slot) {
    if (bpf_map_lookup_elem(fd, &slot, per_cpu.data()) != 0)
      return fail("reading ", std::string(map_name), "[", std::to_string(slot),
                  "]: ", errno_text(errno));
    out[slot] = 0;
    for (uint64_t value : per_cpu) out[slot] += value;
  }
  return {};
}

Result<SteerCounters> StatsMap::read() const {
  SteerCounters counters;
  if (auto read = read_percpu_counters(fd_, "dns_steer_stats", counters.values); !read)
    return tl::unexpected(read.error());
  return counters;
}

Result<SteerCounters> read_pinned_counters(const std::string& pin_dir) {
  const std::string path = pin_dir + "/dns_steer_stats";
  const int fd = bpf_obj_get(path.c_str());
  if (fd < 0) {
    return fail("opening pinned counters ", path, ": ", errno_text(errno),
                " (is dnsproxyd running with this pin_dir?)");
  }
  // The slot layout is per build (dnsproxy_abi.h): a map of another size is another build's.
  bpf_map_info info{};
  uint32_t length = sizeof(info);
  if (bpf_obj_get_info_by_fd(fd, &info, &length) != 0) {
    const int err = errno;
    close(fd);
    return fail("reading map info of ", path, ": ", errno_text(err));
  }
  if (info.max_entries != DNS_STEER_STAT__COUNT) {
    close(fd);
    return fail(path, " has ", std::to_string(info.max_entries), " counters, this build knows ",
                std::to_string(DNS_STEER_STAT__COUNT),
                ": the running dnsproxyd is from another build (use its dnsproxyctl)");
  }
  auto counters = StatsMap(fd).read();
  close(fd);
  return counters;
}

Result<void> XskMap::set(uint32_t slot, int xsk_fd) const {
  if (slot >= DNS_STEER_XSK_SLOTS) {
    return fail("XSKMAP slot ", std::to_string(slot), " out of range (",
                std::to_string(DNS_STEER_XSK_SLOTS), " slots)");
  }
  const uint32_t fd = static_cast<uint32_t>(xsk_fd);
  if (bpf_map_update_elem(fd_, &slot, &fd, BPF_ANY) != 0) {
    const int err = errno;
    return fail("putting AF_XDP socket fd ", std::to_string(xsk_fd), " into XSKMAP slot ",
                std::to_string(slot), ": ", errno_text(err),
                err == EOPNOTSUPP || err == EBADF || err == EINVAL
                    ? " (is it an AF_XDP socket bound to the interface and queue?)"
                    : "");
  }
  return {};
}

void XskMap::clear(uint32_t slot) const noexcept {
  (void)bpf_map_delete_elem(fd_, &slot);
}

Result<void> IfaceMap::set(uint32_t ifindex, uint32_t xsk_slot_base) const {
  const dns_steer_iface value{.xsk_slot_base = xsk_slot_base};
  if (bpf_map_update_elem(fd_, &ifindex, &value, BPF_ANY) != 0) {
    return fail("writing dns_steer_ifaces[", std::to_string(ifindex), "]: ", errno_text(errno));
  }
  return {};
}

Result<void> NextProgramMap::set(int prog_fd) const {
  const uint32_t key = 0;
  const uint32_t fd = static_cast<uint32_t>(prog_fd);
  if (bpf_map_update_elem(fd_, &key, &fd, BPF_ANY) != 0) {
    return fail("installing program fd ", std::to_string(prog_fd),
                " as a next program (dns_steer's or l3_guard's): ", errno_text(errno),
                " (it must be an XDP program compatible with dns_steer)");
  }
  return {};
}

void NextProgramMap::clear() const noexcept {
  const uint32_t key = 0;
  (void)bpf_map_delete_elem(fd_, &key);
}

Result<SourcesMap::Sources> SourcesMap::read() const {
  Sources sources;
  const int err = for_each_map_entry<endpoint_key, policed_source>(
      fd_, [&](const endpoint_key& key, const policed_source& value) {
        policy::IpAddress address;
        address.family = static_cast<policy::Family>(key.family);
        std::memcpy(address.bytes.data(), key.addr, sizeof key.addr);
        sources.emplace(address, value);
      });
  if (err != 0) return fail("reading dns_steer_sources: ", errno_text(err));
  return sources;
}

Result<void> SourcesMap::replace(const Sources& sources) const {
  auto current = read();
  if (!current) return tl::unexpected(current.error());
  for (const auto& [address, value] : sources) {
    const endpoint_key key = to_endpoint_key(address);
    if (bpf_map_update_elem(fd_, &key, &value, BPF_ANY) != 0)
      return fail("writing dns_steer_sources[", address.to_string(), "]: ", errno_text(errno),
                  errno == E2BIG ? " (more than DNS_STEER_MAX_SOURCES endpoint addresses)" : "");
  }
  for (const auto& [address, value] : *current) {
    if (sources.contains(address)) continue;
    const endpoint_key key = to_endpoint_key(address);
    if (bpf_map_delete_elem(fd_, &key) != 0 && errno != ENOENT)
      return fail("deleting dns_steer_sources[", address.to_string(), "]: ", errno_text(errno));
  }
  return {};
}

SourcesMap::Sources policed_sources(const policy::RuleSet& rules,
                                    std::span<const policy::EndpointEntry> endpoints) {
  SourcesMap::Sources sources;
  for (const policy::EndpointEntry& endpoint : endpoints) {
    const policy::EndpointRules* found = rules.find(endpoint.info.endpoint_id);
    if (!found) continue;
    __u32 flags = 0;
    if (!found->ports.empty()) flags |= DNSPROXY_SOURCE_DNS_RULES;
    if (found->has_to_fqdns) flags |= DNSPROXY_SOURCE_TO_FQDNS;
    if (flags != 0) sources[endpoint.address] = {endpoint.info.endpoint_id, flags};
  }
  return sources;
}

}  // namespace dnsproxy::datapath
