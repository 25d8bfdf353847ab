// How long the agent link waits before its next connection attempt (issue 12): jittered
// exponential backoff. The defaults, and why:
//   initial 50 ms   a restarted agent listens again within a few hundred ms; the first retries
//                   come soon enough to find it without spinning on a dead socket
//   doubling        a few attempts cover the usual restart, fewer attempts for a long outage
//   max 250 ms      a failed connect to a unix socket costs one syscall, so retrying four times
//                   a second forever is cheap, and the cap bounds how long the link stays down
//                   after the agent is back (250 ms + jitter): the resync after a restart stays
//                   well under 1 s even when the agent takes most of a second to start
//   jitter +-20 %   proxies on many nodes restarted by one rollout do not retry in lockstep
// Reset to the initial delay once the link is up. Pure: the randomness is seeded by the caller.
#pragma once

#include <chrono>
#include <cstdint>
#include <random>

namespace dnsproxy::datapath::agent {

struct BackoffConfig {
  std::chrono::milliseconds initial{50};
  std::chrono::milliseconds max{250};
  double jitter = 0.2;  // each delay is uniform in [d * (1 - jitter), d * (1 + jitter)]
};

class Backoff {
 public:
  Backoff(BackoffConfig config, uint64_t seed) : config_(config), random_(seed) {}

  // The delay before the next attempt; the one after it is twice as long, up to the max.
  [[nodiscard]] std::chrono::milliseconds next();
  void reset() noexcept { current_ = config_.initial; }
  [[nodiscard]] const BackoffConfig& config() const noexcept { return config_; }

 private:
  BackoffConfig config_;
  std::chrono::milliseconds current_ = config_.initial;
  std::mt19937_64 random_;
};

}  // namespace dnsproxy::datapath::agent
