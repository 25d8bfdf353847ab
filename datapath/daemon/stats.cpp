#include "datapath/daemon/stats.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include <fmt/format.h>

namespace dnsproxy::daemon {
namespace {

// A BPF program's counters as one JSON object, or null when they could not be read.
template <class Stat, class Counters>
nlohmann::json bpf_counters_json(const std::optional<Counters>& counters) {
  if (!counters) return nullptr;
  nlohmann::json out = nlohmann::json::object();
  for_each_bpf_counter<Stat>(
      *counters, [&](std::string_view name, uint64_t value) { out[std::string(name)] = value; });
  return out;
}

template <class Stat, class Counters>
std::string bpf_counters_text(const Counters& counters) {
  std::string text;
  for_each_bpf_counter<Stat>(counters, [&](std::string_view name, uint64_t value) {
    text += fmt::format(" {}={}", name, value);
  });
  return text;
}

constexpr KernelStatField kKernelStats[] = {
    {"rx_dropped", &xsk::Socket::KernelStats::rx_dropped},
    {"rx_invalid_descs", &xsk::Socket::KernelStats::rx_invalid_descs},
    {"tx_invalid_descs", &xsk::Socket::KernelStats::tx_invalid_descs},
    {"rx_ring_full", &xsk::Socket::KernelStats::rx_ring_full},
    {"rx_fill_ring_empty", &xsk::Socket::KernelStats::rx_fill_ring_empty},
    {"tx_ring_empty", &xsk::Socket::KernelStats::tx_ring_empty},
};

nlohmann::json object_of(const NamedCounters& counters) {
  nlohmann::json out = nlohmann::json::object();
  for (const auto& [name, value] : counters) out[std::string(name)] = value;
  return out;
}

void add_into(nlohmann::json& totals, const NamedCounters& counters) {
  for (const auto& [name, value] : counters) {
    auto& slot = totals[std::string(name)];
    slot = (slot.is_null() ? uint64_t{0} : slot.get<uint64_t>()) + value;
  }
}

std::string text_of(const NamedCounters& counters) {
  std::string text;
  for (const auto& [name, value] : counters) text += fmt::format(" {}={}", name, value);
  return text;
}

}  // namespace

std::span<const KernelStatField> kernel_stat_fields() {
  return kKernelStats;
}

nlohmann::json to_json(const Snapshot& snapshot) {
  nlohmann::json out;
  out["schema"] = 1;
  out["final"] = snapshot.final;
  out["sequence"] = snapshot.sequence;
  out["reason"] = std::string(snapshot.reason);
  out["mode"] = std::string(snapshot.mode);
  out["uptime_ms"] = snapshot.uptime_ms;
  out["reloads"] = {{"applied", snapshot.reloads.applied},
                    {"failed", snapshot.reloads.failed},
                    {"restart_needed", snapshot.reloads.restart_needed}};
  nlohmann::json workers = nlohmann::json::array();
  nlohmann::json total_counters = nlohmann::json::object();
  nlohmann::json total_drops = nlohmann::json::object();
  for (size_t w = 0; w < snapshot.workers.size(); ++w) {
    const WorkerSnapshot& worker = snapshot.workers[w];
    nlohmann::json entry;
    entry["worker"] = w;
    entry["cpu"] = worker.cpu;
    entry["counters"] = object_of(worker.counters);
    entry["drops"] = object_of(worker.drops);
    add_into(total_counters, worker.counters);
    add_into(total_drops, worker.drops);
    nlohmann::json frames;
    frames["total"] = worker.frames.total;
    for (size_t p = 0; p < xsk::kFramePlaceCount; ++p)
      frames[std::string(counter_name(static_cast<xsk::FramePlace>(p)))] =
          worker.frames.in_place[p];
    frames["violations"] = worker.frames.violations;
    entry["frames"] = frames;
    nlohmann::json sockets = nlohmann::json::array();
    for (const SocketSnapshot& socket : worker.sockets) {
      nlohmann::json kernel;
      for (const auto& [name, member] : kKernelStats)
        kernel[std::string(name)] = socket.kernel.*member;
      sockets.push_back({{"interface", socket.interface},
                         {"ifindex", socket.ifindex},
                         {"queue", socket.queue},
                         {"bind_mode", socket.zero_copy ? "zerocopy" : "copy"},
                         {"xdp_mode", std::string(socket.xdp_mode)},
                         {"busy_poll", socket.busy_poll},
                         {"rx_packets", socket.rx_packets},
                         {"tx_packets", socket.tx_packets},
                         {"kernel", kernel}});
    }
    entry["sockets"] = sockets;
    workers.push_back(std::move(entry));
  }
  out["workers"] = workers;
  out["totals"] = {{"counters", total_counters}, {"drops", total_drops}};
  nlohmann::json control = nlohmann::json::object();
  for (const auto& [name, value] : snapshot.control) control[std::string(name)] = value;
  out["control"] = control;
  nlohmann::json histograms = nlohmann::json::object();
  for (const HistogramSnapshot& h : snapshot.histograms) {
    nlohmann::json buckets = nlohmann::json::object();
    for (size_t i = 0; i < h.buckets.size(); ++i)
      buckets[i < LatencyHistogram::kBoundsUs.size()
                  ? std::to_string(LatencyHistogram::kBoundsUs[i])
                  : std::string("inf")] = h.buckets[i];
    const auto quantile = [&](double q) {
      const uint64_t us = h.quantile_us(q);
      return us == UINT64_MAX ? nlohmann::json("inf") : nlohmann::json(us);
    };
    histograms[std::string(h.name) + "_us"] = {{"count", h.count},        {"sum", h.sum_us},
                                               {"p50", quantile(0.5)},    {"p99", quantile(0.99)},
                                               {"p999", quantile(0.999)}, {"buckets", buckets}};
  }
  out["histograms"] = histograms;
  out["agent"] =
      snapshot.agent
          ? nlohmann::json{{"kind", std::string(snapshot.agent->kind)},
                           {"link", std::string(snapshot.agent->link)},
                           {"policy_version", snapshot.agent->policy_version},
                           {"policy_reloads_failed", snapshot.agent->policy_reloads_failed}}
          : nlohmann::json(nullptr);
  out["policy"] = snapshot.policy ? nlohmann::json{{"source", std::string(snapshot.policy->source)},
                                                   {"version", snapshot.policy->version},
                                                   {"resources", snapshot.policy->resources},
                                                   {"last_nack", snapshot.policy->last_nack}}
                                  : nlohmann::json(nullptr);
  out["dns_steer"] = bpf_counters_json<dns_steer_stat>(snapshot.dns_steer);
  out["l3_guard"] = bpf_counters_json<l3_guard_stat>(snapshot.l3_guard);
  out["frame_check"] = snapshot.final ? nlohmann::json(snapshot.frames_ok ? "ok" : "failed")
                                      : nlohmann::json(nullptr);
  return out;
}

std::vector<std::string> report_lines(const Snapshot& snapshot) {
  std::vector<std::string> lines;
  for (size_t w = 0; w < snapshot.workers.size(); ++w) {
    const WorkerSnapshot& worker = snapshot.workers[w];
    lines.push_back(
        fmt::format("worker {}:{} drops:{}", w, text_of(worker.counters), text_of(worker.drops)));
    std::string places;
    for (size_t p = 0; p < xsk::kFramePlaceCount; ++p)
      places += fmt::format(" {}={}", counter_name(static_cast<xsk::FramePlace>(p)),
                            worker.frames.in_place[p]);
    if (snapshot.final)
      lines.push_back(fmt::format("worker {}: frames total={}{} violations={}", w,
                                  worker.frames.total, places, worker.frames.violations));
    else
      lines.push_back(
          fmt::format("worker {}: frames (approximate, workers running) total={}{} "
                      "violations={}",
                      w, worker.frames.total, places, worker.frames.violations));
    for (const SocketSnapshot& socket : worker.sockets) {
      std::string kernel;
      for (const auto& [name, member] : kKernelStats)
        kernel += fmt::format(" {}={}", name, socket.kernel.*member);
      lines.push_back(fmt::format("worker {}: {} queue {}: rx_packets={} tx_packets={} kernel{}", w,
                                  socket.interface, socket.queue, socket.rx_packets,
                                  socket.tx_packets, kernel));
    }
  }
  if (snapshot.dns_steer)
    lines.push_back("dns_steer:" + bpf_counters_text<dns_steer_stat>(*snapshot.dns_steer));
  if (snapshot.l3_guard)
    lines.push_back("l3_guard:" + bpf_counters_text<l3_guard_stat>(*snapshot.l3_guard));
  if (!snapshot.control.empty()) lines.push_back("control:" + text_of(snapshot.control));
  if (snapshot.final)
    lines.push_back(fmt::format("frame check: {}", snapshot.frames_ok ? "ok" : "FAILED"));
  return lines;
}

Result<void> write_file_atomically(const std::string& path, std::string_view text, bool durable) {
  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return fail("cannot write ", tmp, ": ", std::strerror(errno));
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int err = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      return fail("cannot write ", tmp, ": ", std::strerror(err));
    }
    done += static_cast<size_t>(n);
  }
  if ((durable && ::fsync(fd) != 0) | (::close(fd) != 0)) {
    const int err = errno;
    ::unlink(tmp.c_str());
    return fail("cannot write ", tmp, ": ", std::strerror(err));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    return fail("cannot rename ", tmp, " to ", path, ": ", std::strerror(err));
  }
  if (!durable) return {};
  // The rename is durable once the directory is.
  const std::string directory = std::filesystem::path(path).parent_path().string();
  const int dir =
      ::open(directory.empty() ? "." : directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir < 0 || ::fsync(dir) != 0) {
    const int err = errno;
    if (dir >= 0) ::close(dir);
    return fail("cannot sync ", directory, ": ", std::strerror(err));
  }
  ::close(dir);
  return {};
}

HistogramSnapshot HistogramSnapshot::of(std::string_view name, const LatencyHistogram& h) {
  HistogramSnapshot out{.name = name, .count = 0, .sum_us = 0, .buckets = {}};
  out.add(h);
  return out;
}

void HistogramSnapshot::add(const LatencyHistogram& h) {
  count += h.count();
  sum_us += h.sum_us();
  for (size_t i = 0; i < buckets.size(); ++i) buckets[i] += h.bucket(i);
}

}  // namespace dnsproxy::daemon
