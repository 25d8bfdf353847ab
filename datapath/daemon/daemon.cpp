#include "datapath/daemon/daemon.h"

#include <net/if.h>
#include <signal.h>
#include <string.h>

#include <bpf/libbpf.h>
#include <xdp/libxdp.h>

#include <atomic>
#include <chrono>
#include <cstdarg>
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include "datapath/daemon/control_loop.h"
#include "datapath/daemon/stats.h"
#include "datapath/daemon/worker_plan.h"
#include "datapath/kernel_path.h"
#include "datapath/steer_program.h"
#include "datapath/worker.h"
#include "xsk/packet_io.h"

namespace dnsproxy::daemon {
namespace {

// One worker thread's state; the control thread reads its counters while it runs.
template <class Handler>
struct WorkerSlot {
  unsigned cpu = 0;
  std::unique_ptr<xsk::XskPacketIo> io;
  Handler handler;
  datapath::WorkerCounters<typename Handler::DropReason> counters;
  std::thread thread;
};
template <class Handler>
using Workers = std::vector<std::unique_ptr<WorkerSlot<Handler>>>;

// Queue counts per interface, in the order given; also the check that every interface exists.
Setup<std::vector<uint32_t>> queue_counts(const Config& config) {
  std::vector<uint32_t> counts;
  for (const std::string& name : config.interfaces) {
    if (if_nametoindex(name.c_str()) == 0)
      return failure(kExitNoInterface, "interface " + name + " not found");
    uint32_t served = config.queues;
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
            "fib_fwd_disabled and is dropped",
            family, name, path);
    }
  }
}

// Creates each planned worker's UMEM and sockets, fills the fill rings, then puts the sockets in
// the steering map (a socket in the map with an empty fill ring drops what it gets).
template <class Handler>
Setup<Workers<Handler>> create_workers(const Config& config, const WorkerPlan& plan,
                                       datapath::SteerProgram& steer) {
  const xsk::BindMode bind_mode = *xsk::parse_bind_mode(config.bind_mode);  // validated
  Workers<Handler> workers;
  for (size_t w = 0; w < plan.workers.size(); ++w) {
    std::vector<xsk::SocketConfig> sockets;
    for (const PlannedSocket& socket : plan.workers[w].sockets)
      sockets.push_back(xsk::SocketConfig{.interface = config.interfaces[socket.interface],
                                          .queue = socket.queue,
                                          .bind_mode = bind_mode,
                                          .ring_size = config.ring_size,
                                          .busy_poll = config.busy_poll,
                                          .busy_poll_budget = config.batch_size});
    auto umem =
        xsk::Umem::create(xsk::UmemConfig{config.umem_frames, config.frame_size, config.ring_size});
    if (!umem) return failure(kExitUmem, fmt::format("worker {}: {}", w, umem.error().message));
    auto io = xsk::XskPacketIo::create(std::move(*umem), sockets);
    if (!io) return failure(kExitSocket, fmt::format("worker {}: {}", w, io.error().message));
    (*io)->service();
    for (size_t port = 0; port < (*io)->port_count(); ++port) {
      const xsk::Socket& socket = (*io)->socket(port);
      if (auto bound = steer.bind_socket(socket.ifindex(), socket.queue(), socket.fd()); !bound)
        return failure(kExitSocket, bound.error().message);
      spdlog::info("worker {} (cpu {}): {} queue {}: {} mode, XDP {}{}", w, plan.workers[w].cpu,
                   socket.interface(), socket.queue(), socket.zero_copy() ? "zero-copy" : "copy",
                   datapath::to_string(steer.attached_mode(socket.ifindex())),
                   socket.busy_poll() ? ", busy polling" : "");
    }
    auto slot = std::make_unique<WorkerSlot<Handler>>();
    slot->cpu = plan.workers[w].cpu;
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

template <class Handler>
Snapshot collect(const Workers<Handler>& workers, const datapath::SteerProgram& steer,
                 std::chrono::steady_clock::time_point started, bool final) {
  Snapshot snapshot;
  snapshot.final = final;
  snapshot.mode = "forward_all";
  snapshot.uptime_ms = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                                 std::chrono::steady_clock::now() - started)
                                                 .count());
  for (const auto& slot : workers) {
    WorkerSnapshot worker;
    worker.cpu = slot->cpu;
    append_counters(slot->counters.packets, worker.counters);
    append_counters(slot->counters.worker_drops, worker.drops);
    append_counters(slot->counters.handler_drops, worker.drops);
    worker.frames = slot->io->frame_counts();
    for (size_t port = 0; port < slot->io->port_count(); ++port) {
      const xsk::Socket& socket = slot->io->socket(port);
      worker.sockets.push_back(
          SocketSnapshot{socket.interface(), socket.ifindex(), socket.queue(), socket.zero_copy(),
                         datapath::to_string(steer.attached_mode(socket.ifindex())),
                         socket.busy_poll(), socket.kernel_stats()});
    }
    // After the workers stopped every frame is back: consistent, none in a worker's hands, none
    // parked, none leaked on the way.
    snapshot.frames_ok = snapshot.frames_ok && worker.frames.consistent() &&
                         slot->counters.get(datapath::WorkerCounter::kLeakedFrames) == 0 &&
                         worker.frames.at(xsk::FramePlace::kWorker) == 0 &&
                         worker.frames.at(xsk::FramePlace::kParked) == 0;
    snapshot.workers.push_back(std::move(worker));
  }
  if (auto counters = steer.counters()) snapshot.dns_steer = *counters;
  return snapshot;
}

// The log report and the stats file, from one snapshot.
class Publisher {
 public:
  explicit Publisher(const Config& config) : config_(config) {}
  void publish(Snapshot snapshot, std::string_view reason, bool log_report) {
    snapshot.sequence = ++sequence_;
    snapshot.reason = reason;
    if (log_report)
      for (const std::string& line : report_lines(snapshot)) spdlog::info("{}", line);
    if (config_.stats_file.empty()) return;
    const std::string text = to_json(snapshot).dump(2) + "\n";
    if (auto written = write_file_atomically(config_.stats_file, text); !written)
      spdlog::warn("stats file: {}", written.error().message);
  }

 private:
  const Config& config_;
  uint64_t sequence_ = 0;
};

template <class Handler>
int serve(const Config& config, const WorkerPlan& plan, datapath::SteerProgram& steer,
          ControlLoop& loop) {
  auto created = create_workers<Handler>(config, plan, steer);
  if (!created) {
    spdlog::error("{}", created.error().message);
    return created.error().code;
  }
  Workers<Handler>& workers = *created;
  // The node's stack, for to_kernel verdicts: opened here, in the node's network namespace.
  auto kernel = datapath::RawKernelPath::open();
  if (!kernel) {
    spdlog::error("{}", kernel.error().message);
    return kExitSocket;
  }

  const auto started = std::chrono::steady_clock::now();
  std::atomic<bool> stop{false};
  const datapath::WorkerConfig worker_config{.batch_size = config.batch_size};
  for (auto& slot : workers) {
    slot->thread = std::thread([&slot = *slot, &kernel = *kernel, &stop, worker_config] {
      if (auto pinned = datapath::pin_current_thread(slot.cpu); !pinned)
        spdlog::warn("{}", pinned.error().message);
      datapath::Worker worker(*slot.io, slot.handler, kernel, slot.counters, worker_config);
      worker.run(stop);
    });
  }
  spdlog::info("forwarding DNS (ports {}) between {} with {} worker(s); SIGUSR1 prints counters",
               fmt::join(config.dns_ports, ","), fmt::join(config.interfaces, ", "),
               workers.size());
  // The first stats file says the daemon is serving (tests wait for it).
  Publisher stats(config);
  stats.publish(collect(workers, steer, started, false), "start", false);

  for (int sig : {SIGINT, SIGTERM})
    loop.on_signal(sig, [&loop, name = std::string(strsignal(sig))] {
      spdlog::info("{}: stopping", name);
      loop.stop();
    });
  loop.on_signal(SIGUSR1,
                 [&] { stats.publish(collect(workers, steer, started, false), "signal", true); });
  loop.on_signal(SIGHUP, [] { spdlog::info("SIGHUP: nothing to reload in forward-all mode"); });
  Result<void> timer{};
  if (!config.stats_file.empty())
    timer = loop.add_timer(std::chrono::milliseconds(config.stats_interval), [&] {
      stats.publish(collect(workers, steer, started, false), "interval", false);
    });
  if (!timer) spdlog::error("stats timer: {}: stopping", timer.error().message);
  auto ran = timer ? loop.run() : Result<void>{};
  if (!ran) spdlog::error("control loop: {}: stopping", ran.error().message);

  // Teardown, in ownership order: stop steering to the sockets while the workers still run (so
  // DNS arriving meanwhile takes the fail action, the kernel with fail-open, instead of dying in
  // an RX ring nobody reads), stop the workers, let TX finish, count frames, close sockets and
  // UMEMs; the caller then detaches and unpins the program.
  for (auto& slot : workers)
    for (size_t port = 0; port < slot->io->port_count(); ++port)
      steer.unbind_socket(slot->io->socket(port).ifindex(), slot->io->socket(port).queue());
  stop.store(true, std::memory_order_relaxed);
  for (auto& slot : workers) slot->thread.join();
  for (auto& slot : workers)
    if (!slot->io->drain_tx(1000)) spdlog::warn("TX did not drain within 1 s");
  const Snapshot last = collect(workers, steer, started, true);
  stats.publish(last, "exit", true);
  workers.clear();
  if (!last.frames_ok) {
    spdlog::error(
        "frame accounting failed: a frame leaked or moved from the wrong place (see counters "
        "above)");
    return kExitFrameAccounting;
  }
  return kExitOk;
}

}  // namespace

int run(Config config) {
  if (config.verbose) spdlog::set_level(spdlog::level::debug);
  libbpf_set_print(libbpf_log);
  libxdp_set_print(libxdp_log);
  if (auto valid = validate(config); !valid) {
    spdlog::error("{}", valid.error().message);
    return valid.error().code;
  }
  auto queues = queue_counts(config);
  if (!queues) {
    spdlog::error("{}", queues.error().message);
    return queues.error().code;
  }
  auto plan = plan_workers(config, *queues);
  if (!plan) {
    spdlog::error("{}", plan.error().message);
    return plan.error().code;
  }
  for (const std::string& warning : plan->warnings) spdlog::warn("{}", warning);

  // Before any thread starts: the workers inherit the blocked signals.
  auto loop = ControlLoop::create({SIGINT, SIGTERM, SIGUSR1, SIGHUP});
  if (!loop) {
    spdlog::error("{}", loop.error().message);
    return kExitBadConfig;
  }

  datapath::SteerSettings settings;
  settings.dns_ports = config.dns_ports;
  settings.fail_open = !config.fail_closed;
  settings.mode = *datapath::parse_xdp_mode(config.xdp_mode);  // validated
  settings.pin_dir = config.pin_dir;
  settings.mount_bpffs = config.mount_bpffs;
  auto steer = datapath::SteerProgram::attach(config.interfaces, settings);
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
  warn_if_forwarding_disabled(config.interfaces);

  const int served = serve<datapath::ForwardAllHandler>(config, *plan, **steer, **loop);
  // Last: detach and unpin, whatever happened above (the workers and sockets are gone).
  auto detached = (*steer)->detach();
  if (!detached) spdlog::error("detach: {}", detached.error().message);
  steer->reset();
  if (served != kExitOk) return served;
  if (!detached) return kExitDetach;
  spdlog::info("stopped cleanly: program detached, pins removed, every frame accounted for");
  return kExitOk;
}

}  // namespace dnsproxy::daemon
