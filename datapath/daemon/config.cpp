#include "datapath/daemon/config.h"

#include "datapath/daemon/logging.h"

#include <sched.h>

#include <algorithm>

#include <fmt/format.h>

#include "datapath/abi.h"
#include "datapath/daemon/metrics.h"
#include "datapath/steer_program.h"
#include "xsk/socket.h"
#include "xsk/umem.h"

namespace dnsproxy::daemon {
namespace {

// The CPUs this process may run on, in order: the default worker CPU list is the first of them.
std::vector<unsigned> allowed_cpus() {
  cpu_set_t set;
  std::vector<unsigned> cpus;
  if (sched_getaffinity(0, sizeof(set), &set) != 0) return cpus;
  for (unsigned cpu = 0; cpu < CPU_SETSIZE; ++cpu)
    if (CPU_ISSET(cpu, &set)) cpus.push_back(cpu);
  return cpus;
}

}  // namespace

Setup<void> validate(Config& config) {
  if (!config.agent.empty() && !config.policy_file.empty())
    return failure(kExitBadConfig,
                   "--policy and --agent exclude each other: with --agent the policy comes from "
                   "the agent (give the file to dnsproxy-agent --policy)");
  if (config.forward_all == (!config.policy_file.empty() || !config.agent.empty()))
    return failure(kExitBadConfig,
                   "give exactly one of --forward-all, --policy FILE and --agent unix:PATH");
  if (config.deny_rcode != "refused" && config.deny_rcode != "nxdomain")
    return failure(kExitBadConfig,
                   "--deny-rcode: \"" + config.deny_rcode + "\" is not refused or nxdomain");
  if (auto format = parse_log_format(config.log_format); !format)
    return failure(kExitBadConfig, format.error().message);
  if (config.on_max_delay != "release" && config.on_max_delay != "servfail")
    return failure(kExitBadConfig,
                   "--on-max-delay: \"" + config.on_max_delay + "\" is not release or servfail");
  if (config.tcp_dns != "drop" && config.tcp_dns != "pass")
    return failure(kExitBadConfig, "--tcp-dns: \"" + config.tcp_dns + "\" is not drop or pass");
  if (config.max_delay == 0) return failure(kExitBadConfig, "--max-delay must be at least 1 ms");
  if (config.max_parked == 0) return failure(kExitBadConfig, "--max-parked must be at least 1");
  if (config.plumb_batch_max == 0)
    return failure(kExitBadConfig, "--plumb-batch-max must be at least 1");
  // A batch that waits the whole max delay releases (or fails) every new name unplumbed.
  if (uint64_t{config.plumb_batch_delay} >= uint64_t{config.max_delay} * 1000)
    return failure(kExitBadConfig, "--plumb-batch-delay (" +
                                       std::to_string(config.plumb_batch_delay) +
                                       " us) must be shorter than --max-delay (" +
                                       std::to_string(config.max_delay) + " ms)");
  if (!config.agent.empty()) {
    if (!config.agent.starts_with("unix:") || config.agent.size() == 5)
      return failure(kExitBadConfig, "--agent: \"" + config.agent + "\" is not unix:PATH");
    if (config.agent_plumb_delay != 0)
      return failure(kExitBadConfig,
                     "--agent-plumb-delay is the embedded agent's: not with --agent");
  } else if (config.agent_uid != 0) {
    return failure(kExitBadConfig, "--agent-uid needs --agent unix:PATH");
  }
  if (config.interfaces.empty()) return failure(kExitBadConfig, "no -i/--interface given");
  const std::vector<unsigned> allowed = allowed_cpus();
  if (config.cpus.empty() && !allowed.empty()) config.cpus.push_back(allowed.front());
  for (unsigned cpu : config.cpus)
    if (std::find(allowed.begin(), allowed.end(), cpu) == allowed.end())
      return failure(kExitBadConfig,
                     fmt::format("--cpus: CPU {} is not available to this process", cpu));
  if (config.interfaces.size() > DNS_STEER_MAX_IFACES)
    return failure(kExitBadConfig,
                   fmt::format("at most {} -i/--interface values", DNS_STEER_MAX_IFACES));
  if (config.dns_ports.size() > DNS_STEER_MAX_PORTS)
    return failure(kExitBadConfig,
                   fmt::format("at most {} --dns-port values", DNS_STEER_MAX_PORTS));
  for (uint16_t port : config.dns_ports)
    if (port == 0) return failure(kExitBadConfig, "--dns-port 0 is not a port");
  if (config.batch_size == 0 || config.batch_size > config.ring_size)
    return failure(kExitBadConfig, "--batch-size must be between 1 and --ring-size");
  if (auto valid =
          xsk::validate(xsk::UmemConfig{config.umem_frames, config.frame_size, config.ring_size});
      !valid)
    return failure(kExitBadConfig, valid.error().message);
  if (auto mode = xsk::parse_bind_mode(config.bind_mode); !mode)
    return failure(kExitBadConfig, "--bind-mode: " + mode.error().message);
  if (auto mode = datapath::parse_xdp_mode(config.xdp_mode); !mode)
    return failure(kExitBadConfig, "--xdp-mode: " + mode.error().message);
  if (config.bpf_package.empty() != config.trusted_key.empty())
    return failure(kExitBadConfig,
                   "--bpf-package and --trusted-key go together: a package loads only when it "
                   "verifies against a key the operator trusts");
  if (!config.chain_into.empty()) {
    if (config.chain_into.front() != '/')
      return failure(kExitBadConfig, "--chain-into must be an absolute path on a bpf filesystem");
    // The interfaces' XDP owner attached itself in the mode it chose; nothing of ours attaches.
    if (config.xdp_mode != "auto")
      return failure(kExitBadConfig,
                     "--xdp-mode does not apply with --chain-into (the array's owner is attached "
                     "already, in its own mode)");
  }
  if (!config.metrics.empty())
    if (auto where = parse_host_port(config.metrics, "--metrics"); !where)
      return tl::unexpected(where.error());
  if (!config.stats_file.empty() && config.stats_interval == 0)
    return failure(kExitBadConfig, "--stats-interval must be at least 1 ms");
  return {};
}

}  // namespace dnsproxy::daemon
