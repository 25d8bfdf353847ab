#include "datapath/daemon/worker_plan.h"

#include <algorithm>

#include <fmt/format.h>

#include "xsk/packet_io.h"

namespace dnsproxy::daemon {

Setup<WorkerPlan> plan_workers(const Config& config, const std::vector<uint32_t>& queues) {
  WorkerPlan plan;
  const uint32_t max_queues = *std::max_element(queues.begin(), queues.end());
  if (*std::min_element(queues.begin(), queues.end()) != max_queues)
    plan.warnings.push_back(
        "the interfaces have different queue counts: a packet received on a queue that its egress "
        "interface lacks has no socket to leave by in its worker (counted as no_egress_port)");
  size_t worker_count = config.cpus.size();
  if (worker_count > max_queues) {
    plan.warnings.push_back(
        fmt::format("{} CPUs given but at most {} queues per interface: "
                    "running {} workers",
                    worker_count, max_queues, max_queues));
    worker_count = max_queues;
  }
  for (size_t w = 0; w < worker_count; ++w) {
    PlannedWorker worker{.cpu = config.cpus[w], .sockets = {}};
    for (size_t i = 0; i < queues.size(); ++i)
      for (uint32_t q = static_cast<uint32_t>(w); q < queues[i];
           q += static_cast<uint32_t>(worker_count))
        worker.sockets.push_back(PlannedSocket{i, q});
    if (xsk::fill_share(config.umem_frames, worker.sockets.size()) < xsk::kMinFillShare)
      return failure(
          kExitBadConfig,
          fmt::format("worker {} serves {} queues: --umem-frames {} gives each fewer than "
                      "{} frames (raise --umem-frames, or spread the queues with --cpus)",
                      w, worker.sockets.size(), config.umem_frames, xsk::kMinFillShare));
    plan.workers.push_back(std::move(worker));
  }
  return plan;
}

}  // namespace dnsproxy::daemon
