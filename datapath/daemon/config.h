// dnsproxyd's configuration: every knob of the daemon in one struct, filled from the command line
// (tools/dnsproxyd/main.cpp) and checked once by validate(). A new feature adds a field here, a
// flag in main (named like the field, with dashes) and its checks in validate().
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <tl/expected.hpp>

namespace dnsproxy::daemon {

// Exit codes (README, "Running dnsproxyd").
enum ExitCode : int {
  kExitOk = 0,
  kExitBadConfig = 2,        // bad command line or configuration
  kExitNoInterface = 3,      // an interface does not exist
  kExitAttach = 4,           // the XDP program could not be attached
  kExitUmem = 5,             // the UMEM could not be registered (locked memory)
  kExitSocket = 6,           // an AF_XDP or raw socket could not be created, bound or mapped
  kExitFrameAccounting = 7,  // frame accounting failed at exit (a bug)
  kExitDetach = 8,           // the XDP program could not be detached at exit
};

// A setup step's failure: what the operator reads, and the exit code it maps to.
struct Failure {
  ExitCode code;
  std::string message;
};
template <class T>
using Setup = tl::expected<T, Failure>;
[[nodiscard]] inline tl::unexpected<Failure> failure(ExitCode code, std::string message) {
  return tl::unexpected<Failure>(Failure{code, std::move(message)});
}

struct Config {
  std::vector<std::string> interfaces;  // -i/--interface, repeatable
  bool forward_all = false;
  std::vector<uint16_t> dns_ports{53};
  std::string xdp_mode = "auto";   // auto|native|generic
  std::string bind_mode = "auto";  // auto|zerocopy|copy
  uint32_t queues = 0;             // per interface; 0: every receive queue
  std::vector<unsigned> cpus;      // one worker each; empty: the first CPU this process may use
  uint32_t frame_size = 2048;
  uint32_t umem_frames = 16384;
  uint32_t ring_size = 2048;
  uint32_t batch_size = 64;
  bool busy_poll = false;
  bool fail_closed = false;
  // --tcp-dns drop|pass: TCP to a DNS port from an endpoint with DNS rules. Not policed yet, so
  // dropped in XDP by default; pass lets it reach the server unchecked.
  std::string tcp_dns = "drop";
  std::string pin_dir = "/sys/fs/bpf/dnsproxy";
  bool mount_bpffs = true;
  // --chain-into PINNED_PROG_ARRAY (issue 15): take slot 0 of that array instead of attaching.
  std::string chain_into;
  // --bpf-package PACKAGE --trusted-key PUBKEY (issue 15): load dns_steer from a verified package.
  std::string bpf_package;
  std::string trusted_key;
  bool verbose = false;
  std::string log_format = "text";  // --log-format text|json
  std::string stats_file;           // empty: no stats snapshot
  uint32_t stats_interval = 1000;   // ms between snapshots
  std::string metrics;              // ADDR:PORT for Prometheus; empty: off
  std::string admin_socket;         // unix socket path for dnsproxyctl; empty: off
  // Policy mode (issue 11): what --policy FILE (or --agent) turns on instead of --forward-all.
  std::string policy_file;               // --policy
  std::string deny_rcode = "refused";    // --deny-rcode refused|nxdomain
  uint32_t max_delay = 100;              // --max-delay MS: how long a response waits for plumbing
  std::string on_max_delay = "release";  // --on-max-delay release|servfail
  bool release_before_plumb = false;     // --release-before-plumb (ablation)
  uint32_t max_parked = 1024;            // --max-parked: parked responses per worker
  uint32_t agent_plumb_delay = 0;        // --agent-plumb-delay MS: the embedded agent's delay
  // A plumbing batch goes to the agent when it holds plumb_batch_max addresses, or
  // plumb_batch_delay us after its first (0: at the next pass of the control loop, which batches
  // what arrived meanwhile). bench/RESULTS.md "Agent link" says why 0.
  uint32_t plumb_batch_max = 256;  // --plumb-batch-max
  uint32_t plumb_batch_delay = 0;  // --plumb-batch-delay US
  // --agent unix:PATH: an external agent (dnsproxy-agent, issue 12) owns the pinned maps under
  // --pin-dir, sends the policy and plumbs over gRPC; empty: the embedded agent (--policy FILE).
  std::string agent;
  // --policy-state FILE: with --agent, the last policy accepted from the agent, written at each
  // update and served at start until the agent answers; empty: not kept.
  std::string policy_state = "/var/lib/dnsproxy/policy-state.pb";
  uint32_t agent_uid = 0;  // --agent-uid: the external agent's uid, checked with SO_PEERCRED
  bool l3_guard = true;    // off with --no-l3-guard: the node's own policy does L3
};

// The checks that need no system state beyond the CPUs this process may run on. Fills in the
// default CPU list. Failures are exit 2 and name the flag.
[[nodiscard]] Setup<void> validate(Config& config);

}  // namespace dnsproxy::daemon
