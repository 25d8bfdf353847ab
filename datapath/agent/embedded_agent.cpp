#include "datapath/agent/embedded_agent.h"

#include <sys/timerfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace dnsproxy::datapath::agent {

Result<std::unique_ptr<EmbeddedAgent>> EmbeddedAgent::create(EmbeddedAgentConfig config) {
  auto maps = AgentMaps::create(config.maps);
  if (!maps) return tl::unexpected(maps.error());
  Fd timer(timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC));
  if (timer.get() < 0) return fail("embedded agent: timerfd_create: ", std::strerror(errno));
  return std::unique_ptr<EmbeddedAgent>(
      new EmbeddedAgent(config, std::move(*maps), std::move(timer)));
}

void EmbeddedAgent::submit(pipeline::PlumbBatch batch) {
  const auto now = pipeline::Clock::now();
  due_.push_back({now + config_.plumb_delay, std::move(batch)});
  if (due_.size() == 1) arm_timer(now);
}

void EmbeddedAgent::poll(pipeline::Clock::time_point now, std::vector<BatchResult>& results) {
  uint64_t expirations = 0;
  // Clears the timer's readability; EAGAIN (called before it fired) is fine.
  [[maybe_unused]] const ssize_t cleared = read(timer_.get(), &expirations, sizeof expirations);
  while (!due_.empty() && due_.front().at <= now) {
    results.push_back(maps_->plumb(due_.front().batch));
    due_.pop_front();
  }
  if (!due_.empty()) arm_timer(now);
}

void EmbeddedAgent::arm_timer(pipeline::Clock::time_point now) {
  // At least 1 ns: a zero it_value would disarm the timer instead of firing it at once.
  const auto wait =
      std::max<pipeline::Clock::duration>(due_.front().at - now, std::chrono::nanoseconds(1));
  const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(wait).count();
  itimerspec spec{};
  spec.it_value.tv_sec = ns / 1'000'000'000;
  spec.it_value.tv_nsec = ns % 1'000'000'000;
  (void)timerfd_settime(timer_.get(), 0, &spec, nullptr);
}

}  // namespace dnsproxy::datapath::agent
