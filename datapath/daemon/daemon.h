// dnsproxyd as a library: setup, the worker plan, the control loop and the teardown order.
// tools/dnsproxyd/main.cpp turns its flags into a Config and calls run().
//
// Today the packet path runs in forward-all mode: dns_steer on every interface, one pinned worker
// per CPU, each with one AF_XDP socket per (interface, queue) it serves on one shared UMEM,
// forwarding every DNS packet to the next hop the kernel FIB chose.
#pragma once

#include "datapath/daemon/config.h"

namespace dnsproxy::daemon {

// Validates `config`, sets up, serves until SIGINT or SIGTERM, tears down; returns the exit code
// (config.h, ExitCode). Logs through spdlog's default logger.
[[nodiscard]] int run(Config config);

}  // namespace dnsproxy::daemon
