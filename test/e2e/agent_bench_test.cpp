// The agent link benchmark measures what it says: a short run through each agent ACKs every
// mapping it learned (none lost), through batches the Coordinator cut, and writes one JSON record
// per run with the quantiles in order.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "test/support/privileges.h"

namespace dnsproxy::test {
namespace {

TEST(AgentBenchTest, EveryMappingOfAShortRunIsAckedThroughBothAgents) {
  DNSPROXY_REQUIRE_PRIVILEGES();
  const std::string json_path = ::testing::TempDir() + "agent-bench-test.json";
  const std::string command = std::string(AGENT_BENCH_PATH) +
                              " --runs 1 --seconds 0.5 --rates 2000 --json " + json_path + " > " +
                              json_path + ".log 2>&1";
  ASSERT_EQ(std::system(command.c_str()), 0) << "see " << json_path << ".log";
  std::ifstream in(json_path);
  const nlohmann::json runs = nlohmann::json::parse(in, nullptr, false);
  ASSERT_TRUE(runs.is_array());
  ASSERT_EQ(runs.size(), 2u) << runs.dump(2);
  for (const nlohmann::json& run : runs) {
    EXPECT_EQ(run.at("mappings"), 1000u) << run.dump(2);
    EXPECT_EQ(run.at("acked"), run.at("mappings")) << run.dump(2);
    EXPECT_GT(run.at("batches"), 0u);
    EXPECT_LE(run.at("batches"), run.at("mappings"));
    EXPECT_GT(run.at("p50_us"), 0.0);
    EXPECT_LE(run.at("p50_us"), run.at("p99_us"));
    EXPECT_LE(run.at("p99_us"), run.at("p999_us"));
    EXPECT_LE(run.at("p999_us"), run.at("max_us"));
  }
  EXPECT_NE(runs[0].at("agent"), runs[1].at("agent"));
}

}  // namespace
}  // namespace dnsproxy::test
