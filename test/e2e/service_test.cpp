// dnsproxyd as a service: the sd_notify protocol against a NOTIFY_SOCKET this test owns (READY=1
// only once dns_steer is attached and the sockets are bound, never from a failed start; watchdog
// pings while the workers make progress), and the capabilities left after setup.
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <httplib.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "test/support/bpffs.h"
#include "test/support/privileges.h"
#include "test/support/topology.h"

namespace dnsproxy::test {
namespace {

const std::string kDaemon = DNSPROXYD_PATH;

// A datagram socket at a path of its own: what systemd gives a Type=notify service.
class NotifySocket {
 public:
  NotifySocket() : path_("/tmp/dnsproxyd-notify-" + std::to_string(getpid()) + ".sock") {
    std::filesystem::remove(path_);
    fd_ = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path_.c_str(), sizeof(addr.sun_path) - 1);
    bound_ = bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  }
  ~NotifySocket() {
    close(fd_);
    std::filesystem::remove(path_);
  }
  bool bound() const { return bound_; }
  const std::string& path() const { return path_; }
  // Every message that arrives within `ms`.
  std::vector<std::string> collect(int ms) {
    std::vector<std::string> messages;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
    while (std::chrono::steady_clock::now() < deadline) {
      char buffer[4096];
      const ssize_t n = recv(fd_, buffer, sizeof(buffer), MSG_DONTWAIT);
      if (n > 0)
        messages.emplace_back(buffer, static_cast<size_t>(n));
      else
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return messages;
  }

 private:
  std::string path_;
  int fd_ = -1;
  bool bound_ = false;
};

size_t index_of(const std::vector<std::string>& messages, const std::string& part) {
  for (size_t i = 0; i < messages.size(); ++i)
    if (messages[i].find(part) != std::string::npos) return i;
  return messages.size();
}
size_t count_of(const std::vector<std::string>& messages, const std::string& part) {
  size_t n = 0;
  for (const std::string& message : messages) n += message.find(part) != std::string::npos;
  return n;
}
std::string joined(const std::vector<std::string>& messages) {
  std::string out;
  for (const std::string& message : messages) out += "[" + message + "] ";
  return out;
}

class ServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    DNSPROXY_REQUIRE_PRIVILEGES();
    auto topology = Topology::create({});
    ASSERT_TRUE(topology) << topology.error().message;
    topology_ = std::move(*topology);
    auto bpffs = BpfFsMount::create();
    ASSERT_TRUE(bpffs) << bpffs.error().message;
    bpffs_ = std::make_unique<BpfFsMount>(std::move(*bpffs));
  }
  std::string pin_dir() { return bpffs_->path() + "/dnsproxy-" + std::to_string(pin_dirs_++); }
  // dnsproxyd through `env`, so the service manager's variables reach it alone.
  std::vector<std::string> daemon_args(const std::vector<std::string>& environment,
                                       const std::vector<std::string>& extra = {}) {
    std::vector<std::string> args = environment;
    for (const std::string& arg :
         {kDaemon, std::string("-i"), std::string("cli0"), std::string("-i"), std::string("up0"),
          std::string("--forward-all"), std::string("--umem-frames"), std::string("4096"),
          std::string("--ring-size"), std::string("1024")})
      args.push_back(arg);
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  }

  std::unique_ptr<BpfFsMount> bpffs_;
  int pin_dirs_ = 0;
  std::unique_ptr<Topology> topology_;
};

TEST_F(ServiceTest, ReadyComesAfterAttachAndWatchdogPingsFollow) {
  NotifySocket notify;
  ASSERT_TRUE(notify.bound());
  auto daemon = Dnsproxyd::start(
      "env", topology_->node(),
      daemon_args({"NOTIFY_SOCKET=" + notify.path(), "WATCHDOG_USEC=1000000"}), pin_dir());
  ASSERT_TRUE(daemon) << daemon.error().message;
  const std::vector<std::string> messages = notify.collect(1700);
  const size_t attaching = index_of(messages, "STATUS=attaching dns_steer");
  const size_t sockets = index_of(messages, "STATUS=creating AF_XDP sockets");
  const size_t ready = index_of(messages, "READY=1");
  ASSERT_LT(ready, messages.size()) << joined(messages);
  EXPECT_LT(attaching, sockets) << joined(messages);
  EXPECT_LT(sockets, ready) << joined(messages);
  EXPECT_NE(messages[ready].find("STATUS=serving DNS on cli0, up0 with 1 worker(s)"),
            std::string::npos)
      << joined(messages);
  // Half the 1 s watchdog timeout between pings, each after READY: 1.7 s holds at least 2.
  EXPECT_GE(count_of(messages, "WATCHDOG=1"), 2u) << joined(messages);
  EXPECT_GT(index_of(messages, "WATCHDOG=1"), ready) << joined(messages);
  EXPECT_EQ((*daemon)->stop(), 0) << (*daemon)->log();
  EXPECT_EQ(count_of(notify.collect(200), "STOPPING=1"), 1u);
}

TEST_F(ServiceTest, NoWatchdogPingsWithoutAWatchdogAndNoReadyFromAFailedStart) {
  NotifySocket notify;
  ASSERT_TRUE(notify.bound());
  auto daemon = Dnsproxyd::start("env", topology_->node(),
                                 daemon_args({"NOTIFY_SOCKET=" + notify.path()}), pin_dir());
  ASSERT_TRUE(daemon) << daemon.error().message;
  auto messages = notify.collect(700);
  EXPECT_EQ(count_of(messages, "READY=1"), 1u) << joined(messages);
  EXPECT_EQ(count_of(messages, "WATCHDOG=1"), 0u) << joined(messages);
  EXPECT_EQ((*daemon)->stop(), 0) << (*daemon)->log();
  notify.collect(100);
  // Zero-copy cannot bind on veth: the start fails after attaching, before READY (exit 6).
  std::vector<std::string> argv = daemon_args({"env", "NOTIFY_SOCKET=" + notify.path()},
                                              {"--bind-mode", "zerocopy", "--pin-dir", pin_dir()});
  auto out = run_command(argv, &topology_->node());
  ASSERT_TRUE(out) << out.error().message;
  EXPECT_EQ(out->exit_code, 6) << out->output;
  messages = notify.collect(200);
  EXPECT_LT(index_of(messages, "STATUS=creating AF_XDP sockets"), messages.size())
      << joined(messages);
  EXPECT_EQ(count_of(messages, "READY=1"), 0u) << joined(messages);
}

// After setup the daemon and its worker threads keep CAP_NET_ADMIN, CAP_SYS_ADMIN and CAP_BPF
// only (for the maps and the detach at exit), and detach still works at exit.
TEST_F(ServiceTest, CapabilitiesAreDroppedAfterSetup) {
  auto daemon = Dnsproxyd::start(kDaemon, topology_->node(),
                                 {"-i", "cli0", "-i", "up0", "--forward-all", "--umem-frames",
                                  "4096", "--ring-size", "1024", "--cpus", "0"},
                                 pin_dir());
  ASSERT_TRUE(daemon) << daemon.error().message;
  const uint64_t expected = (uint64_t{1} << 12) | (uint64_t{1} << 21) | (uint64_t{1} << 39);
  size_t threads = 0;
  for (const auto& task :
       std::filesystem::directory_iterator("/proc/" + std::to_string((*daemon)->pid()) + "/task")) {
    std::ifstream status(task.path() / "status");
    std::string line;
    while (std::getline(status, line)) {
      for (const char* set : {"CapEff:", "CapPrm:", "CapBnd:"}) {
        if (line.rfind(set, 0) == 0) {
          EXPECT_EQ(std::stoull(line.substr(std::strlen(set)), nullptr, 16), expected)
              << task.path() << " " << line;
        }
      }
      if (line.rfind("CapAmb:", 0) == 0) {
        EXPECT_EQ(std::stoull(line.substr(7), nullptr, 16), 0u) << line;
      }
    }
    ++threads;
  }
  EXPECT_GE(threads, 2u) << "the control thread and a worker";
  EXPECT_EQ((*daemon)->stop(), 0) << (*daemon)->log();
  auto link = topology_->node().ip({"-d", "link", "show", "dev", "cli0"});
  ASSERT_TRUE(link);
  EXPECT_EQ(link->find("prog/xdp"), std::string::npos) << "detached with the kept capabilities";
}

// --metrics: a live scrape from inside the node namespace passes promtool and counts the traffic.
TEST_F(ServiceTest, PrometheusMetricsAreServedLive) {
  auto knotd = Knotd::start(topology_->upstream(), 10);
  ASSERT_TRUE(knotd) << knotd.error().message;
  auto daemon = Dnsproxyd::start(kDaemon, topology_->node(),
                                 {"-i", "cli0", "-i", "up0", "--forward-all", "--umem-frames",
                                  "4096", "--ring-size", "1024", "--metrics", "127.0.0.1:9253"},
                                 pin_dir());
  ASSERT_TRUE(daemon) << daemon.error().message;
  auto kdig = topology_->client().run({"kdig", std::string("@") + Topology::kUpstreamV4, "+short",
                                       "+time=2", "+retry=1", "www.example.test", "A"});
  ASSERT_TRUE(kdig);
  EXPECT_EQ(kdig->output, "203.0.113.80\n");
  std::string body;
  {
    auto inside = ScopedNetns::enter(topology_->node());
    ASSERT_TRUE(inside) << inside.error().message;
    httplib::Client client("127.0.0.1", 9253);
    auto response = client.Get("/metrics");
    ASSERT_TRUE(response) << "no answer on 127.0.0.1:9253";
    EXPECT_EQ(response->status, 200);
    EXPECT_NE(response->get_header_value("Content-Type").find("version=0.0.4"), std::string::npos);
    body = response->body;
    EXPECT_EQ(client.Get("/other")->status, 404);
  }
  EXPECT_NE(body.find("dnsproxy_worker_tx_packets_total{worker=\"0\",cpu=\"0\"} 2\n"),
            std::string::npos)
      << body;
  EXPECT_NE(body.find("dnsproxy_dns_steer_packets_total{counter=\"redirect\"} 2\n"),
            std::string::npos)
      << body;
  const std::string path = "/tmp/dnsproxyd-scrape-" + std::to_string(getpid()) + ".txt";
  std::ofstream(path) << body;
  auto check = run_command({"sh", "-c", "promtool check metrics < " + path});
  std::filesystem::remove(path);
  ASSERT_TRUE(check) << check.error().message;
  EXPECT_EQ(check->exit_code, 0) << check->output;
  EXPECT_EQ((*daemon)->stop(), 0) << (*daemon)->log();
}

}  // namespace
}  // namespace dnsproxy::test
