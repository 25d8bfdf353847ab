// The end-to-end benchmark cleans up after itself when interrupted: SIGINT in the middle of a
// measurement, and afterwards none of its namespaces, bpf filesystem, files or processes
// (knotd, dnsproxyd, dnsdist, dnsproxy-loadgen) is left.
#include <signal.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "test/support/netns.h"
#include "test/support/privileges.h"

namespace dnsproxy::test {
namespace {

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// Every process whose command line mentions `needle`.
std::vector<std::string> processes_mentioning(const std::string& needle) {
  std::vector<std::string> found;
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    std::string cmdline = read_file(entry.path().string() + "/cmdline");
    std::replace(cmdline.begin(), cmdline.end(), '\0', ' ');
    if (cmdline.find(needle) != std::string::npos) found.push_back(cmdline);
  }
  return found;
}

TEST(E2eBenchTest, SigintMidRunLeavesNothingBehind) {
  if (const std::string missing = missing_capabilities(); !missing.empty())
    GTEST_SKIP() << "needs " << missing;
  const std::string log = "/tmp/e2e-bench-test-" + std::to_string(getpid()) + ".log";
  const std::string json = "/tmp/e2e-bench-test-" + std::to_string(getpid()) + ".json";
  auto bench = BackgroundProcess::start({E2E_BENCH_PATH, "--runs", "3", "--seconds", "2",
                                         "--layouts", "default", "--no-dnsperf", "--json", json},
                                        nullptr, log);
  ASSERT_TRUE(bench) << bench.error().message;
  // Wait until the first path of the first run has finished and the next one is measuring.
  // ("run 1 (...): kernel N q/s" is printed when the kernel path's measurements are done.)
  auto first_path_done = [](const std::string& log_text) {
    const size_t run = log_text.find("run 1 (");
    return run != std::string::npos && log_text.find(" q/s", run) != std::string::npos;
  };
  std::string text;
  for (int i = 0; i < 600 && !first_path_done(text); ++i) {
    ASSERT_TRUE(bench->running()) << read_file(log);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    text = read_file(log);
  }
  ASSERT_TRUE(first_path_done(text)) << text;
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  const size_t at = text.find("cleanup list: ");
  ASSERT_NE(at, std::string::npos) << text;
  std::istringstream list(text.substr(at + 14, text.find('\n', at) - at - 14));
  std::vector<std::string> leftovers;
  for (std::string item; list >> item;) leftovers.push_back(item);
  ASSERT_EQ(leftovers.size(), 6u) << text;  // 3 namespaces, bpffs, work dir, knotd dir
  for (size_t i = 3; i < leftovers.size(); ++i)
    ASSERT_TRUE(std::filesystem::exists(leftovers[i])) << leftovers[i];  // not vacuous

  ASSERT_EQ(kill(bench->pid(), SIGINT), 0);
  int code = -1;
  for (int i = 0; i < 300 && bench->running(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  ASSERT_FALSE(bench->running()) << "still running 30 s after SIGINT:\n" << read_file(log);
  code = bench->stop();
  text = read_file(log);
  EXPECT_EQ(code, 130) << text;
  EXPECT_NE(text.find("interrupted: namespaces, processes and pins removed"), std::string::npos)
      << text;
  EXPECT_FALSE(std::filesystem::exists(json)) << "an interrupted run wrote results";

  auto netns = run_command({"ip", "netns", "list"});
  ASSERT_TRUE(netns);
  for (size_t i = 0; i < 3; ++i)
    EXPECT_EQ(netns->output.find(leftovers[i]), std::string::npos) << leftovers[i];
  const std::string mounts = read_file("/proc/mounts");
  for (size_t i = 3; i < leftovers.size(); ++i) {
    EXPECT_FALSE(std::filesystem::exists(leftovers[i])) << leftovers[i];
    EXPECT_EQ(mounts.find(leftovers[i]), std::string::npos) << leftovers[i];
    EXPECT_TRUE(processes_mentioning(leftovers[i]).empty()) << leftovers[i];
  }
  // dnsproxyd runs with --pin-dir under the bpffs, dnsdist with its config in the work dir,
  // knotd with its config in its directory, the load generator with the query file there.
  EXPECT_TRUE(processes_mentioning(E2E_BENCH_PATH).empty());
  unlink(log.c_str());
}

}  // namespace
}  // namespace dnsproxy::test
