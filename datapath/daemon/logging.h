// The daemon's log: one line per event, as text for people or as one JSON object per line for
// collectors (--log-format json), and a limiter for control-plane messages that can repeat as
// fast as their cause (a map read failing every 20 ms poll, an agent refusing every batch).
//
// The packet path never logs: workers count (common/counters.h) and the counters reach the stats
// file, Prometheus and dnsproxyctl; so a flood of bad packets costs a counter increment, never a
// log line.
#pragma once

#include <chrono>
#include <cstdint>
#include <string_view>

#include "common/result.h"

namespace dnsproxy::daemon {

enum class LogFormat : uint8_t { kText, kJson };
[[nodiscard]] Result<LogFormat> parse_log_format(std::string_view text);  // "text" | "json"

// Sets the process-wide spdlog pattern. JSON lines carry "time" (UTC, ISO 8601 with
// milliseconds), "level", "logger" and "msg" (escaped as JSON requires).
void configure_logging(LogFormat format);

// At most `burst` messages per `window` get through; allow() says whether this one may be logged
// and, for the first one after a window with suppressed messages, how many were suppressed.
// Control thread only.
class LogLimiter {
 public:
  explicit LogLimiter(uint32_t burst = 5,
                      std::chrono::milliseconds window = std::chrono::seconds(10))
      : burst_(burst), window_(window) {}

  struct Decision {
    bool log = false;
    uint64_t suppressed_before = 0;  // messages dropped since the last one logged
  };
  [[nodiscard]] Decision allow(std::chrono::steady_clock::time_point now);

 private:
  uint32_t burst_;
  std::chrono::milliseconds window_;
  std::chrono::steady_clock::time_point window_start_{};
  uint32_t in_window_ = 0;
  uint64_t suppressed_ = 0;
};

}  // namespace dnsproxy::daemon
