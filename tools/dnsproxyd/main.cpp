// dnsproxyd: the command line -> daemon::Config -> daemon::run (datapath/daemon/daemon.h). Every
// flag is a Config field of the same name; validation, setup, the control loop and the exit codes
// (README, "Running dnsproxyd") live in the daemon library.
#include <CLI/CLI.hpp>
#include <utility>

#include <spdlog/spdlog.h>

#include "datapath/daemon/daemon.h"

int main(int argc, char** argv) {
  dnsproxy::daemon::Config options;
  CLI::App app{"dnsproxyd: DNS proxy for FQDN network policy on AF_XDP"};
  app.add_option("-i,--interface", options.interfaces, "interface to serve (repeat for each)");
  app.add_flag("--forward-all", options.forward_all,
               "forward every DNS packet to its next hop, no policy");
  app.add_option("--policy", options.policy_file,
                 "policy file (tools/policy.example.yaml): decide every query, track responses");
  app.add_option("--deny-rcode", options.deny_rcode, "answer to a denied query: refused|nxdomain")
      ->capture_default_str();
  app.add_option("--max-delay", options.max_delay,
                 "ms a response may wait for its mappings to be plumbed")
      ->capture_default_str();
  app.add_option("--on-max-delay", options.on_max_delay,
                 "what a response gets at the max delay: release|servfail")
      ->capture_default_str();
  app.add_flag("--release-before-plumb", options.release_before_plumb,
               "ablation: release responses at once, without waiting for plumbing");
  app.add_option("--max-parked", options.max_parked, "parked responses per worker")
      ->capture_default_str();
  app.add_option("--dns-port", options.dns_ports, "UDP port that carries DNS (repeatable)")
      ->capture_default_str();
  app.add_option("--xdp-mode", options.xdp_mode, "auto|native|generic")->capture_default_str();
  app.add_option("--bind-mode", options.bind_mode, "AF_XDP bind: auto|zerocopy|copy")
      ->capture_default_str();
  app.add_option("--queues", options.queues, "queues per interface (default: all of them)");
  app.add_option("--cpus", options.cpus, "worker CPUs, one worker each, e.g. 0,1")->delimiter(',');
  app.add_option("--frame-size", options.frame_size, "UMEM frame size: 2048 or 4096")
      ->capture_default_str();
  app.add_option("--umem-frames", options.umem_frames, "frames per worker UMEM")
      ->capture_default_str();
  app.add_option("--ring-size", options.ring_size, "size of every AF_XDP ring")
      ->capture_default_str();
  app.add_option("--batch-size", options.batch_size, "packets per RX batch")->capture_default_str();
  app.add_flag("--busy-poll", options.busy_poll,
               "busy-poll the sockets instead of sleeping in poll()");
  app.add_flag("--fail-closed", options.fail_closed,
               "drop DNS on queues without a socket (default: pass)");
  app.add_option("--pin-dir", options.pin_dir, "bpffs directory for the program's maps")
      ->capture_default_str();
  app.add_flag("!--no-mount-bpffs", options.mount_bpffs,
               "never mount a bpf filesystem on /sys/fs/bpf (by default one is mounted there when "
               "--pin-dir is under it and nothing is mounted)");
  app.add_option("--stats-file", options.stats_file,
                 "write a JSON stats snapshot here (atomically) every --stats-interval, on SIGUSR1 "
                 "and at exit");
  app.add_option("--stats-interval", options.stats_interval, "ms between stats snapshots")
      ->capture_default_str();
  app.add_flag("-v,--verbose", options.verbose,
               "debug log, including libbpf's and libxdp's messages");
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ dnsproxyd: %v");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    const int code = app.exit(error);
    return code == 0 ? 0 : dnsproxy::daemon::kExitBadConfig;
  }
  return dnsproxy::daemon::run(std::move(options));
}
