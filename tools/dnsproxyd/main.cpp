// dnsproxyd: the daemon. Today it runs the packet path in forward-all mode (issue 6): dns_steer
// on every interface, one pinned worker per CPU, each worker with one AF_XDP socket per
// (interface, queue) it serves on one shared UMEM, forwarding every DNS packet to the next hop
// the kernel FIB chose. The control thread (main) only sets up, waits for signals, reports and
// tears down.
//
// Exit codes (README, "Running dnsproxyd"):
//   0 stopped by SIGINT/SIGTERM, every frame accounted for
//   2 bad command line or configuration
//   3 an interface does not exist
//   4 the XDP program could not be attached (mode unsupported, another program, pin directory)
//   5 the UMEM could not be registered (locked memory)
//   6 an AF_XDP socket could not be created, bound or put in the steering map
//   7 frame accounting failed at exit (a leaked frame or a wrong move: a bug)
//   8 the XDP program could not be detached at exit (it may still be attached: see the log)
#include <net/if.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>

#include <bpf/libbpf.h>
#include <xdp/libxdp.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <spdlog/spdlog.h>

#include "datapath/kernel_path.h"
#include "datapath/steer_program.h"
#include "datapath/worker.h"
#include "xsk/packet_io.h"

namespace dnsproxy {
namespace {

enum ExitCode : int {
  kExitOk = 0,
  kExitBadConfig = 2,
  kExitNoInterface = 3,
  kExitAttach = 4,
  kExitUmem = 5,
  kExitSocket = 6,
  kExitFrameAccounting = 7,
  kExitDetach = 8,
};

struct Options {
  std::vector<std::string> interfaces;
  bool forward_all = false;
  std::vector<uint16_t> dns_ports{53};
  std::string xdp_mode = "auto";
  std::string bind_mode = "auto";
  uint32_t queues = 0;  // 0: every receive queue of each interface
  std::vector<unsigned> cpus;
  uint32_t frame_size = 2048;
  uint32_t umem_frames = 16384;
  uint32_t ring_size = 2048;
  uint32_t batch_size = 64;
  bool busy_poll = false;
  bool fail_closed = false;
  std::string pin_dir = "/sys/fs/bpf/dnsproxy";
  bool mount_bpffs = true;
  bool verbose = false;
};

// One worker thread's state; the control thread reads counters while it runs.
struct WorkerSlot {
  unsigned cpu = 0;
  std::unique_ptr<xsk::XskPacketIo> io;
  datapath::ForwardAllHandler handler;
  datapath::WorkerCounters<datapath::ForwardDrop> counters;
  std::thread thread;
};

struct Failure {
  ExitCode code;
  std::string message;
};

template <class T>
using Setup = tl::expected<T, Failure>;

tl::unexpected<Failure> failure(ExitCode code, std::string message) {
  return tl::unexpected<Failure>(Failure{code, std::move(message)});
}

// The CPUs this process may run on, in order: the default worker CPU list is the first of them.
std::vector<unsigned> allowed_cpus() {
  cpu_set_t set;
  std::vector<unsigned> cpus;
  if (sched_getaffinity(0, sizeof(set), &set) != 0) return cpus;
  for (unsigned cpu = 0; cpu < CPU_SETSIZE; ++cpu)
    if (CPU_ISSET(cpu, &set)) cpus.push_back(cpu);
  return cpus;
}

Setup<void> validate(Options& options) {
  if (!options.forward_all)
    return failure(kExitBadConfig,
                   "only --forward-all is implemented: the policy pipeline comes later");
  const std::vector<unsigned> allowed = allowed_cpus();
  if (options.cpus.empty() && !allowed.empty()) options.cpus.push_back(allowed.front());
  for (unsigned cpu : options.cpus)
    if (std::find(allowed.begin(), allowed.end(), cpu) == allowed.end())
      return failure(kExitBadConfig,
                     "--cpus: CPU " + std::to_string(cpu) + " is not available to this process");
  if (options.interfaces.size() > DNS_STEER_MAX_IFACES)
    return failure(kExitBadConfig,
                   fmt::format("at most {} -i/--interface values", DNS_STEER_MAX_IFACES));
  if (options.dns_ports.size() > DNS_STEER_MAX_PORTS)
    return failure(kExitBadConfig,
                   fmt::format("at most {} --dns-port values", DNS_STEER_MAX_PORTS));
  for (uint16_t port : options.dns_ports)
    if (port == 0) return failure(kExitBadConfig, "--dns-port 0 is not a port");
  if (options.batch_size == 0 || options.batch_size > options.ring_size)
    return failure(kExitBadConfig, "--batch-size must be between 1 and --ring-size");
  if (auto valid = xsk::validate(
          xsk::UmemConfig{options.umem_frames, options.frame_size, options.ring_size});
      !valid)
    return failure(kExitBadConfig, valid.error().message);
  return {};
}

// Queue counts per interface, in the order given; also the check that every interface exists.
Setup<std::vector<uint32_t>> queue_counts(const Options& options) {
  std::vector<uint32_t> counts;
  for (const std::string& name : options.interfaces) {
    if (if_nametoindex(name.c_str()) == 0)
      return failure(kExitNoInterface, "interface " + name + " not found");
    uint32_t served = options.queues;
    if (served == 0) {
      auto count = xsk::receive_queue_count(name);
      // The interface exists (checked above): failing to read its channels is not exit 3.
      if (!count) return failure(kExitBadConfig, count.error().message + " (give --queues)");
      served = *count;
    }
    if (served > DNS_STEER_MAX_QUEUES) {
      spdlog::warn(
          "{} has {} queues: serving the first {} (dns_steer's limit); DNS on the others goes to "
          "the kernel (dropped with --fail-closed)",
          name, served, DNS_STEER_MAX_QUEUES);
      served = DNS_STEER_MAX_QUEUES;
    }
    counts.push_back(served);
  }
  return counts;
}

// dns_steer asks the FIB from the ingress interface: with forwarding off there, every DNS packet
// ends as fib_fwd_disabled and is dropped by the workers. Warn at start rather than leave the
// operator to find the counter.
void warn_if_forwarding_disabled(const std::vector<std::string>& interfaces) {
  for (const std::string& name : interfaces) {
    for (const char* family : {"ipv4", "ipv6"}) {
      const std::string path = fmt::format("/proc/sys/net/{}/conf/{}/forwarding", family, name);
      std::ifstream file(path);
      int enabled = 1;
      if (file >> enabled && enabled == 0)
        spdlog::warn(
            "{} forwarding is disabled on {} ({} is 0): DNS received there ends as "
            "fib_fwd_disabled "
            "and is dropped",
            family, name, path);
    }
  }
}

// Worker w serves queue q of every interface when q % workers == w, so a worker owns a socket on
// each egress interface for the queues it serves and forwarding stays inside its UMEM.
Setup<std::vector<std::unique_ptr<WorkerSlot>>> create_workers(const Options& options,
                                                               const std::vector<uint32_t>& queues,
                                                               xsk::BindMode bind_mode,
                                                               datapath::SteerProgram& steer) {
  const uint32_t max_queues = *std::max_element(queues.begin(), queues.end());
  if (*std::min_element(queues.begin(), queues.end()) != max_queues)
    spdlog::warn(
        "the interfaces have different queue counts: a packet received on a queue that its egress "
        "interface lacks has no socket to leave by in its worker (counted as no_egress_port)");
  size_t worker_count = options.cpus.size();
  if (worker_count > max_queues) {
    spdlog::warn("{} CPUs given but at most {} queues per interface: running {} workers",
                 worker_count, max_queues, max_queues);
    worker_count = max_queues;
  }
  std::vector<std::unique_ptr<WorkerSlot>> workers;
  for (size_t w = 0; w < worker_count; ++w) {
    std::vector<xsk::SocketConfig> sockets;
    for (size_t i = 0; i < options.interfaces.size(); ++i)
      for (uint32_t q = static_cast<uint32_t>(w); q < queues[i];
           q += static_cast<uint32_t>(worker_count))
        sockets.push_back(xsk::SocketConfig{.interface = options.interfaces[i],
                                            .queue = q,
                                            .bind_mode = bind_mode,
                                            .ring_size = options.ring_size,
                                            .busy_poll = options.busy_poll,
                                            .busy_poll_budget = options.batch_size});
    if (xsk::fill_share(options.umem_frames, sockets.size()) < xsk::kMinFillShare)
      return failure(
          kExitBadConfig,
          fmt::format("worker {} serves {} queues: --umem-frames {} gives each fewer than "
                      "{} frames (raise --umem-frames, or spread the queues with --cpus)",
                      w, sockets.size(), options.umem_frames, xsk::kMinFillShare));
    auto umem = xsk::Umem::create(
        xsk::UmemConfig{options.umem_frames, options.frame_size, options.ring_size});
    if (!umem)
      return failure(kExitUmem, "worker " + std::to_string(w) + ": " + umem.error().message);
    auto io = xsk::XskPacketIo::create(std::move(*umem), sockets);
    if (!io) return failure(kExitSocket, "worker " + std::to_string(w) + ": " + io.error().message);
    // Fill rings first: a socket in the steering map with an empty fill ring drops what it gets.
    (*io)->service();
    for (size_t port = 0; port < (*io)->port_count(); ++port) {
      const xsk::Socket& socket = (*io)->socket(port);
      if (auto bound = steer.bind_socket(socket.ifindex(), socket.queue(), socket.fd()); !bound)
        return failure(kExitSocket, bound.error().message);
      spdlog::info("worker {} (cpu {}): {} queue {}: {} mode, XDP {}{}", w, options.cpus[w],
                   socket.interface(), socket.queue(), socket.zero_copy() ? "zero-copy" : "copy",
                   datapath::to_string(steer.attached_mode(socket.ifindex())),
                   socket.busy_poll() ? ", busy polling" : "");
    }
    auto slot = std::make_unique<WorkerSlot>();
    slot->cpu = options.cpus[w];
    slot->io = std::move(*io);
    workers.push_back(std::move(slot));
  }
  return workers;
}

// libbpf and libxdp narrate their fallbacks (no bpffs for the dispatcher, unknown ELF sections)
// on stderr; the loader already turns real failures into errors. Their text goes to the debug
// log, shown with --verbose.
int library_log(const char* format, va_list args) {
  char line[1024];
  const int length = std::vsnprintf(line, sizeof(line), format, args);
  if (length > 0) {
    std::string_view text(line, std::min<size_t>(static_cast<size_t>(length), sizeof(line) - 1));
    while (!text.empty() && text.back() == '\n') text.remove_suffix(1);
    spdlog::debug("{}", text);
  }
  return length;
}
int libbpf_log(libbpf_print_level, const char* format, va_list args) {
  return library_log(format, args);
}
int libxdp_log(libxdp_print_level, const char* format, va_list args) {
  return library_log(format, args);
}

// `final`: the workers are joined, so the frame counts are a consistent snapshot and the check is
// meaningful; while they run, frames move between the reads and the check could fail spuriously.
void report(const std::vector<std::unique_ptr<WorkerSlot>>& workers,
            const datapath::SteerProgram& steer, bool final) {
  for (size_t w = 0; w < workers.size(); ++w) {
    const WorkerSlot& slot = *workers[w];
    std::string packets, drops;
    slot.counters.packets.for_each([&](std::string_view name, uint64_t value) {
      packets += fmt::format(" {}={}", name, value);
    });
    slot.counters.for_each_drop([&](std::string_view name, uint64_t value) {
      drops += fmt::format(" {}={}", name, value);
    });
    spdlog::info("worker {}:{} drops:{}", w, packets, drops);
    const xsk::FrameCounts frames = slot.io->frame_counts();
    std::string places;
    for (size_t p = 0; p < xsk::kFramePlaceCount; ++p)
      places += fmt::format(" {}={}", xsk::frame_place_name(static_cast<xsk::FramePlace>(p)),
                            frames.in_place[p]);
    if (final)
      spdlog::info("worker {}: frames total={}{} violations={} check={}", w, frames.total, places,
                   frames.violations, frames.consistent() ? "ok" : "FAILED");
    else
      spdlog::info("worker {}: frames (approximate, workers running) total={}{} violations={}", w,
                   frames.total, places, frames.violations);
    for (size_t port = 0; port < slot.io->port_count(); ++port) {
      const xsk::Socket& socket = slot.io->socket(port);
      const xsk::Socket::KernelStats stats = socket.kernel_stats();
      spdlog::info(
          "worker {}: {} queue {}: kernel rx_dropped={} rx_ring_full={} fill_ring_empty={} "
          "rx_invalid={} tx_invalid={}",
          w, socket.interface(), socket.queue(), stats.rx_dropped, stats.rx_ring_full,
          stats.rx_fill_ring_empty, stats.rx_invalid_descs, stats.tx_invalid_descs);
    }
  }
  if (auto counters = steer.counters()) {
    std::string text;
    for (size_t i = 0; i < DNS_STEER_STAT__COUNT; ++i)
      text += fmt::format(" {}={}", datapath::SteerCounters::name(static_cast<dns_steer_stat>(i)),
                          counters->values[i]);
    spdlog::info("dns_steer:{}", text);
  }
}

int run(Options& options) {
  if (options.verbose) spdlog::set_level(spdlog::level::debug);
  libbpf_set_print(libbpf_log);
  libxdp_set_print(libxdp_log);
  if (auto valid = validate(options); !valid) {
    spdlog::error("{}", valid.error().message);
    return valid.error().code;
  }
  auto bind_mode = xsk::parse_bind_mode(options.bind_mode);
  auto xdp_mode = datapath::parse_xdp_mode(options.xdp_mode);
  if (!bind_mode || !xdp_mode) {
    spdlog::error("--{}: {}", !bind_mode ? "bind-mode" : "xdp-mode",
                  !bind_mode ? bind_mode.error().message : xdp_mode.error().message);
    return kExitBadConfig;
  }
  auto queues = queue_counts(options);
  if (!queues) {
    spdlog::error("{}", queues.error().message);
    return queues.error().code;
  }

  // Signals are taken synchronously by this thread (sigwait); workers inherit the mask.
  sigset_t signals;
  sigemptyset(&signals);
  for (int sig : {SIGINT, SIGTERM, SIGUSR1}) sigaddset(&signals, sig);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  datapath::SteerSettings settings;
  settings.dns_ports = options.dns_ports;
  settings.fail_open = !options.fail_closed;
  settings.mode = *xdp_mode;
  settings.pin_dir = options.pin_dir;
  settings.mount_bpffs = options.mount_bpffs;
  auto steer = datapath::SteerProgram::attach(options.interfaces, settings);
  if (!steer) {
    spdlog::error("{}", steer.error().message);
    return kExitAttach;
  }
  const std::string attached = (*steer)->describe();
  for (size_t begin = 0, end; begin < attached.size(); begin = end + 1) {
    end = attached.find('\n', begin);
    if (end == std::string::npos) end = attached.size();
    if (end > begin) spdlog::info("{}", attached.substr(begin, end - begin));
  }
  for (const datapath::Attachment& attachment : (*steer)->attachments())
    if (attachment.replaced_stale)
      spdlog::warn("replaced a stale dns_steer on {}", attachment.interface);
  if ((*steer)->stale_pins_removed() > 0)
    spdlog::warn("removed {} stale pins from {}", (*steer)->stale_pins_removed(),
                 (*steer)->pin_dir());

  warn_if_forwarding_disabled(options.interfaces);
  auto workers = create_workers(options, *queues, *bind_mode, **steer);
  if (!workers) {
    spdlog::error("{}", workers.error().message);
    return workers.error().code;
  }

  // The node's stack, for to_kernel verdicts: opened here, in the node's network namespace.
  auto kernel = datapath::RawKernelPath::open();
  if (!kernel) {
    spdlog::error("{}", kernel.error().message);
    return kExitSocket;
  }
  std::atomic<bool> stop{false};
  const datapath::WorkerConfig worker_config{.batch_size = options.batch_size};
  for (auto& slot : *workers) {
    slot->thread = std::thread([&slot = *slot, &kernel = *kernel, &stop, worker_config] {
      if (auto pinned = datapath::pin_current_thread(slot.cpu); !pinned)
        spdlog::warn("{}", pinned.error().message);
      datapath::Worker worker(*slot.io, slot.handler, kernel, slot.counters, worker_config);
      worker.run(stop);
    });
  }
  spdlog::info("forwarding DNS (ports {}) between {} with {} worker(s); SIGUSR1 prints counters",
               fmt::join(options.dns_ports, ","), fmt::join(options.interfaces, ", "),
               workers->size());

  for (;;) {
    int sig = 0;
    sigwait(&signals, &sig);
    if (sig == SIGUSR1) {
      report(*workers, **steer, false);
      continue;
    }
    spdlog::info("{}: stopping", strsignal(sig));
    break;
  }
  // Teardown, in ownership order: stop steering to the sockets while the workers still run (so
  // DNS arriving meanwhile takes the fail action, the kernel with fail-open, instead of dying in
  // an RX ring nobody reads), stop the workers, let TX finish, count frames, close sockets and
  // UMEMs, then detach and unpin the program.
  for (auto& slot : *workers)
    for (size_t port = 0; port < slot->io->port_count(); ++port)
      (*steer)->unbind_socket(slot->io->socket(port).ifindex(), slot->io->socket(port).queue());
  stop.store(true, std::memory_order_relaxed);
  for (auto& slot : *workers) slot->thread.join();
  bool frames_ok = true;
  for (auto& slot : *workers)
    if (!slot->io->drain_tx(1000)) spdlog::warn("TX did not drain within 1 s");
  report(*workers, **steer, true);
  for (auto& slot : *workers) {
    const xsk::FrameCounts frames = slot->io->frame_counts();
    frames_ok = frames_ok && frames.consistent() &&
                slot->counters.get(datapath::WorkerCounter::kLeakedFrames) == 0 &&
                frames.at(xsk::FramePlace::kWorker) == 0 &&
                frames.at(xsk::FramePlace::kParked) == 0;
  }
  workers->clear();
  auto detached = (*steer)->detach();
  if (!detached) spdlog::error("detach: {}", detached.error().message);
  steer->reset();
  if (!frames_ok) {
    spdlog::error(
        "frame accounting failed: a frame leaked or moved from the wrong place (see counters "
        "above)");
    return kExitFrameAccounting;
  }
  if (!detached) return kExitDetach;
  spdlog::info("stopped cleanly: program detached, pins removed, every frame accounted for");
  return kExitOk;
}

}  // namespace
}  // namespace dnsproxy

int main(int argc, char** argv) {
  dnsproxy::Options options;
  CLI::App app{"dnsproxyd: DNS proxy on AF_XDP (forward-all mode)"};
  app.add_option("-i,--interface", options.interfaces, "interface to serve (repeat for each)")
      ->required();
  app.add_flag("--forward-all", options.forward_all,
               "forward every DNS packet to its next hop, no policy");
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
  app.add_flag("-v,--verbose", options.verbose,
               "debug log, including libbpf's and libxdp's messages");
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ dnsproxyd: %v");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    const int code = app.exit(error);
    return code == 0 ? 0 : dnsproxy::kExitBadConfig;
  }
  return dnsproxy::run(options);
}
