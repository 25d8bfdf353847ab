#include "test/support/daemon_fixture.h"

#include <unistd.h>

#include <fstream>
#include <thread>

namespace dnsproxy::test {
namespace {

uint64_t read_value(const nlohmann::json& stats, std::initializer_list<const char*> path,
                    std::string_view name) {
  const nlohmann::json* at = &stats;
  for (const char* key : path) {
    if (!at->is_object() || !at->contains(key)) return ~uint64_t{0};
    at = &at->at(key);
  }
  return at->value(std::string(name), uint64_t{0});
}

}  // namespace

uint64_t counter(const nlohmann::json& stats, std::string_view name) {
  return read_value(stats, {"totals", "counters"}, name);
}
uint64_t drop(const nlohmann::json& stats, std::string_view name) {
  return read_value(stats, {"totals", "drops"}, name);
}
uint64_t control(const nlohmann::json& stats, std::string_view name) {
  return read_value(stats, {"control"}, name);
}
uint64_t l3_guard(const nlohmann::json& stats, std::string_view name) {
  return read_value(stats, {"l3_guard"}, name);
}

uint64_t parked_frames(const nlohmann::json& stats) {
  if (!stats.contains("workers")) return ~uint64_t{0};
  uint64_t n = 0;
  for (const nlohmann::json& worker : stats.at("workers"))
    n += worker.at("frames").value("parked", uint64_t{0});
  return n;
}

std::vector<std::string> host_names(unsigned first, unsigned count) {
  std::vector<std::string> out;
  for (unsigned i = first; i < first + count; ++i)
    out.push_back("host" + std::to_string(i) + ".example.test");
  return out;
}

void DaemonFixture::TearDown() {
  if (!files_.empty()) std::filesystem::remove_all(files_);
}

void DaemonFixture::build(NodeSetup setup) {
  auto topology = Topology::create({.queues = setup.queues});
  ASSERT_TRUE(topology) << topology.error().message;
  topology_ = std::move(*topology);
  auto knotd = Knotd::start(topology_->upstream(), setup.names);
  ASSERT_TRUE(knotd) << knotd.error().message;
  knotd_ = std::move(*knotd);
  if (setup.app_servers) {
    auto servers = AppServers::start(*topology_);
    ASSERT_TRUE(servers) << servers.error().message;
    servers_ = std::move(*servers);
  }
  auto bpffs = BpfFsMount::create();
  ASSERT_TRUE(bpffs) << bpffs.error().message;
  bpffs_ = std::make_unique<BpfFsMount>(std::move(*bpffs));
}

std::string DaemonFixture::new_pin_dir() {
  return bpffs_->path() + "/dnsproxy-" + std::to_string(pin_dirs_++);
}

std::unique_ptr<Dnsproxyd> DaemonFixture::start_daemon(std::vector<std::string> args,
                                                       std::string pin_dir) {
  args.insert(args.begin(), {"-i", Topology::kNodeClientSide, "-i", Topology::kNodeUpstreamSide});
  auto daemon = Dnsproxyd::start(DNSPROXYD_PATH, topology_->node(), args,
                                 pin_dir.empty() ? new_pin_dir() : pin_dir);
  EXPECT_TRUE(daemon) << daemon.error().message;
  return daemon ? std::move(*daemon) : nullptr;
}

std::string DaemonFixture::write_file(const std::string& name, const std::string& text) {
  if (files_.empty()) {
    const ::testing::TestInfo* test = ::testing::UnitTest::GetInstance()->current_test_info();
    files_ = std::filesystem::temp_directory_path() /
             ("dnsproxy-" + std::string(test->name()) + "-" + std::to_string(::getpid()));
    std::filesystem::create_directories(files_);
  }
  const std::string path = files_ / name;
  std::ofstream out(path);
  out << text;
  EXPECT_TRUE(out.flush()) << "cannot write " << path;
  return path;
}

std::string DaemonFixture::kdig(const std::string& server, const std::string& name,
                                const std::string& type, std::vector<std::string> options) {
  std::vector<std::string> argv = {"kdig", "@" + server};
  argv.insert(argv.end(), options.begin(), options.end());
  argv.insert(argv.end(), {name, type});
  auto out = topology_->client().run(argv);
  return out ? out->output : out.error().message;
}

nlohmann::json DaemonFixture::snapshot(Dnsproxyd& daemon) {
  EXPECT_TRUE(daemon.report_counters()) << "no snapshot after SIGUSR1";
  auto stats = daemon.stats();
  EXPECT_TRUE(stats) << stats.error().message;
  return stats ? *stats : nlohmann::json::object();
}

bool DaemonFixture::wait_for(Dnsproxyd& daemon,
                             const std::function<bool(const nlohmann::json&)>& done,
                             nlohmann::json& last, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  do {
    last = snapshot(daemon);
    if (!last.empty() && done(last)) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  } while (std::chrono::steady_clock::now() < deadline);
  return false;
}

}  // namespace dnsproxy::test
