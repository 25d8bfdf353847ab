#include "datapath/agent/grpc_backoff.h"

#include <algorithm>

namespace dnsproxy::datapath::agent {

std::chrono::milliseconds Backoff::next() {
  std::uniform_real_distribution<double> spread(1.0 - config_.jitter, 1.0 + config_.jitter);
  const auto delay = std::chrono::milliseconds(
      static_cast<int64_t>(static_cast<double>(current_.count()) * spread(random_)));
  current_ = std::min(current_ * 2, config_.max);
  return std::max(delay, std::chrono::milliseconds(1));
}

}  // namespace dnsproxy::datapath::agent
