// The service manager's watchdog (systemd WatchdogSec=): dnsproxyd pings only while every worker
// is making progress, so a wedged worker (stuck in a handler, a lost wakeup) stops the pings and
// systemd restarts the daemon. Progress is a worker's iteration counter moving between two checks;
// an idle worker still iterates at least every idle timeout (100 ms), so the check interval
// (half the watchdog timeout) must be longer than that: WatchdogSec=1s or more.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace dnsproxy::daemon {

class ProgressCheck {
 public:
  // The workers whose iteration count did not move since the previous call (the first call
  // compares with zero). `iterations[w]`: worker w's counter now.
  [[nodiscard]] std::vector<size_t> stalled(std::span<const uint64_t> iterations) {
    std::vector<size_t> stuck;
    last_.resize(iterations.size(), 0);
    for (size_t w = 0; w < iterations.size(); ++w) {
      if (iterations[w] == last_[w]) stuck.push_back(w);
      last_[w] = iterations[w];
    }
    return stuck;
  }

 private:
  std::vector<uint64_t> last_;
};

}  // namespace dnsproxy::daemon
