// The worker plan: which worker serves which (interface, queue), decided from the queue counts and
// the CPU list before anything is created. Pure: tested as data (test/datapath/daemon).
//
// Worker w serves queue q of every interface when q % workers == w, so a worker owns a socket on
// each egress interface for the queues it serves and forwarding stays inside its UMEM.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "datapath/daemon/config.h"

namespace dnsproxy::daemon {

struct PlannedSocket {
  size_t interface = 0;  // index into Config::interfaces
  uint32_t queue = 0;
};

struct PlannedWorker {
  unsigned cpu = 0;
  std::vector<PlannedSocket> sockets;
};

struct WorkerPlan {
  std::vector<PlannedWorker> workers;
  std::vector<std::string>
      warnings;  // for the log: the plan works, but not as the operator may think
};

// `queues[i]`: how many queues of config.interfaces[i] are served (at least 1 each). Fails (exit
// 2) when a worker's share of its UMEM would leave a socket fewer than xsk::kMinFillShare frames.
[[nodiscard]] Setup<WorkerPlan> plan_workers(const Config& config,
                                             const std::vector<uint32_t>& queues);

}  // namespace dnsproxy::daemon
