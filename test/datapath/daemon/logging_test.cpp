// --log-format json lines parse as JSON whatever the message holds, and the limiter lets a burst
// through per window and then says how many it held back.
#include <gtest/gtest.h>

#include <memory>
#include <sstream>

#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "datapath/daemon/logging.h"

namespace dnsproxy::daemon {
namespace {

using namespace std::chrono_literals;

TEST(LoggingTest, JsonLinesEscapeQuotesBackslashesAndControlBytes) {
  std::ostringstream out;
  auto previous = spdlog::default_logger();
  spdlog::set_default_logger(std::make_shared<spdlog::logger>(
      "test", std::make_shared<spdlog::sinks::ostream_sink_mt>(out)));
  configure_logging(LogFormat::kJson);
  spdlog::warn("a \"quoted\" \\ path\twith a tab and a {}", "\x01 byte");
  configure_logging(LogFormat::kText);
  spdlog::set_default_logger(previous);
  const nlohmann::json line = nlohmann::json::parse(out.str(), nullptr, false);
  ASSERT_FALSE(line.is_discarded()) << out.str();
  EXPECT_EQ(line.at("level"), "warning");
  EXPECT_EQ(line.at("logger"), "dnsproxyd");
  EXPECT_EQ(line.at("msg"), "a \"quoted\" \\ path\twith a tab and a \x01 byte");
  EXPECT_EQ(line.at("time").get<std::string>().back(), 'Z');
}

TEST(LoggingTest, ParsesOnlyTextAndJson) {
  EXPECT_EQ(*parse_log_format("text"), LogFormat::kText);
  EXPECT_EQ(*parse_log_format("json"), LogFormat::kJson);
  EXPECT_FALSE(parse_log_format("xml"));
}

TEST(LoggingTest, TheLimiterLetsABurstThroughPerWindowAndCountsTheRest) {
  LogLimiter limiter(2, 1000ms);
  const auto start = std::chrono::steady_clock::now();
  EXPECT_TRUE(limiter.allow(start).log);
  EXPECT_TRUE(limiter.allow(start + 1ms).log);
  for (int i = 0; i < 5; ++i) EXPECT_FALSE(limiter.allow(start + 2ms).log);
  const LogLimiter::Decision next = limiter.allow(start + 1001ms);
  EXPECT_TRUE(next.log);
  EXPECT_EQ(next.suppressed_before, 5u);
  EXPECT_EQ(limiter.allow(start + 1002ms).suppressed_before, 0u);
}

}  // namespace
}  // namespace dnsproxy::daemon
