// The stats snapshot as data: every name of every counter table in the JSON, totals summed over
// workers, the frame check only in the final snapshot; and the atomic file write.
#include "datapath/daemon/stats.h"

#include <unistd.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "datapath/worker.h"

namespace dnsproxy::daemon {
namespace {

WorkerSnapshot worker_with(uint64_t tx, uint64_t no_egress) {
  datapath::WorkerCounters<datapath::ForwardDrop> counters;
  counters.packets.add(datapath::WorkerCounter::kTxPackets, tx);
  counters.worker_drops.add(datapath::WorkerDrop::kNoEgressPort, no_egress);
  WorkerSnapshot worker;
  append_counters(counters.packets, worker.counters);
  append_counters(counters.worker_drops, worker.drops);
  append_counters(counters.handler_drops, worker.drops);
  worker.frames.total = 10;
  worker.frames.in_place[static_cast<size_t>(xsk::FramePlace::kFree)] = 10;
  worker.sockets.push_back(SocketSnapshot{"cli0", 3, 1, false, "native", false, {}});
  return worker;
}

TEST(StatsTest, TheJsonNamesEveryCounterAndSumsTheWorkers) {
  Snapshot snapshot;
  snapshot.mode = "forward_all";
  snapshot.sequence = 7;
  snapshot.reason = "signal";
  snapshot.workers = {worker_with(5, 1), worker_with(7, 2)};
  snapshot.dns_steer = datapath::SteerCounters{};
  snapshot.dns_steer->values[DNS_STEER_STAT_REDIRECT] = 12;
  const nlohmann::json json = to_json(snapshot);
  EXPECT_EQ(json.at("schema"), 1);
  EXPECT_EQ(json.at("final"), false);
  EXPECT_EQ(json.at("sequence"), 7);
  EXPECT_EQ(json.at("reason"), "signal");
  EXPECT_TRUE(json.at("frame_check").is_null());
  const auto& w0 = json.at("workers").at(0);
  EXPECT_EQ(w0.at("counters").size(), kCounterCount<datapath::WorkerCounter>);
  EXPECT_EQ(w0.at("drops").size(),
            kCounterCount<datapath::WorkerDrop> + kCounterCount<datapath::ForwardDrop>);
  EXPECT_EQ(w0.at("counters").at("tx_packets"), 5);
  EXPECT_EQ(w0.at("drops").at("short_dns"), 0);
  EXPECT_EQ(w0.at("frames").at("free"), 10);
  EXPECT_EQ(w0.at("frames").size(), kCounterCount<xsk::FramePlace> + 2);  // + total, violations
  EXPECT_EQ(w0.at("sockets").at(0).at("bind_mode"), "copy");
  EXPECT_EQ(w0.at("sockets").at(0).at("kernel").size(), 6u);
  EXPECT_EQ(json.at("totals").at("counters").at("tx_packets"), 12);
  EXPECT_EQ(json.at("totals").at("drops").at("no_egress_port"), 3);
  EXPECT_EQ(json.at("dns_steer").at("redirect"), 12);
  EXPECT_EQ(json.at("dns_steer").size(), static_cast<size_t>(DNS_STEER_STAT__COUNT));

  snapshot.final = true;
  EXPECT_EQ(to_json(snapshot).at("frame_check"), "ok");
  snapshot.frames_ok = false;
  EXPECT_EQ(to_json(snapshot).at("frame_check"), "failed");
  const auto lines = report_lines(snapshot);
  ASSERT_FALSE(lines.empty());
  EXPECT_EQ(lines.back(), "frame check: FAILED");
}

TEST(StatsTest, TheFileIsReplacedWholeAndAnUnwritablePathIsAnError) {
  const std::string dir =
      std::filesystem::temp_directory_path() / ("dnsproxy-stats-test-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  const std::string path = dir + "/stats.json";
  ASSERT_TRUE(write_file_atomically(path, "{\"a\":1}\n"));
  ASSERT_TRUE(write_file_atomically(path, "{\"a\":2}\n"));
  std::ifstream in(path);
  EXPECT_EQ(nlohmann::json::parse(in).at("a"), 2);
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
  const auto failed = write_file_atomically(dir + "/no/such/dir/stats.json", "{}");
  ASSERT_FALSE(failed);
  EXPECT_NE(failed.error().message.find("no/such/dir"), std::string::npos);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace dnsproxy::daemon
