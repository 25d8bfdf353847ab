// dnsproxyd as a service: the sd_notify protocol against a NOTIFY_SOCKET this test owns (READY=1
// only once dns_steer is attached and the sockets are bound, never from a failed start; watchdog
// pings while the workers make progress), and the capabilities left after setup.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <httplib.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "test/support/bpffs.h"
#include "test/support/privileges.h"
#include "test/support/topology.h"

namespace dnsproxy::test {
namespace {

const std::string kDaemon = DNSPROXYD_PATH;
const std::string kCtl = DNSPROXYCTL_PATH;

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

// The thread id of the thread named `name` in process `pid`, or 0.
pid_t thread_named(pid_t pid, const std::string& name) {
  const std::string tasks = "/proc/" + std::to_string(pid) + "/task";
  std::error_code ignored;
  for (const auto& task : std::filesystem::directory_iterator(tasks, ignored)) {
    std::string comm;
    std::getline(std::ifstream(task.path() / "comm"), comm);
    if (comm == name) return static_cast<pid_t>(std::stol(task.path().filename().string()));
  }
  return 0;
}

// A wedged worker stops the watchdog pings: the worker thread (and only it) is stopped with
// ptrace, as a worker stuck in a loop or a syscall would be; its iterations stop moving, the pings
// stop and STATUS= names it; once it runs again, the pings come back.
TEST_F(ServiceTest, AWedgedWorkerStopsTheWatchdogPings) {
  NotifySocket notify;
  ASSERT_TRUE(notify.bound());
  auto daemon = Dnsproxyd::start(
      "env", topology_->node(),
      daemon_args({"NOTIFY_SOCKET=" + notify.path(), "WATCHDOG_USEC=1000000"}), pin_dir());
  ASSERT_TRUE(daemon) << daemon.error().message;
  EXPECT_GE(count_of(notify.collect(1200), "WATCHDOG=1"), 1u);
  const pid_t worker = thread_named((*daemon)->pid(), "dnsproxy-w0");
  ASSERT_NE(worker, 0) << "no thread dnsproxy-w0 in " << (*daemon)->pid();
  ASSERT_EQ(ptrace(PTRACE_SEIZE, worker, nullptr, nullptr), 0) << std::strerror(errno);
  ASSERT_EQ(ptrace(PTRACE_INTERRUPT, worker, nullptr, nullptr), 0) << std::strerror(errno);
  int status = 0;
  ASSERT_EQ(waitpid(worker, &status, __WALL), worker) << std::strerror(errno);
  const std::vector<std::string> wedged = notify.collect(1600);
  EXPECT_EQ(ptrace(PTRACE_DETACH, worker, nullptr, nullptr), 0) << std::strerror(errno);
  // One ping may already have been decided before the stop took effect.
  EXPECT_LE(count_of(wedged, "WATCHDOG=1"), 1u) << joined(wedged);
  EXPECT_GE(count_of(wedged, "STATUS=worker(s) 0 made no progress"), 1u) << joined(wedged);
  EXPECT_GE(count_of(notify.collect(1200), "WATCHDOG=1"), 1u) << "pings did not come back";
  EXPECT_EQ((*daemon)->stop(), 0) << (*daemon)->log();
}

// --log-format json: every line the daemon writes, from start to exit, is one JSON object.
TEST_F(ServiceTest, JsonLogsAreOneObjectPerLine) {
  auto daemon = Dnsproxyd::start("env", topology_->node(),
                                 daemon_args({}, {"--log-format", "json"}), pin_dir());
  ASSERT_TRUE(daemon) << daemon.error().message;
  ASSERT_EQ((*daemon)->stop(), 0) << (*daemon)->log();
  std::istringstream lines((*daemon)->log());
  size_t parsed = 0;
  for (std::string line; std::getline(lines, line);) {
    const nlohmann::json object = nlohmann::json::parse(line, nullptr, false);
    ASSERT_TRUE(object.is_object()) << line;
    EXPECT_TRUE(object.contains("msg") && object.contains("level") && object.contains("time"))
        << line;
    ++parsed;
  }
  EXPECT_GE(parsed, 5u) << (*daemon)->log();
}

// A --metrics address already in use: a clear error naming it, exit 6, nothing left behind.
TEST_F(ServiceTest, AMetricsAddressInUseIsExitSix) {
  auto inside = ScopedNetns::enter(topology_->node());
  ASSERT_TRUE(inside) << inside.error().message;
  const int taken = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(9254);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(taken, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0)
      << std::strerror(errno);
  ASSERT_EQ(listen(taken, 1), 0);
  auto run = topology_->node().run(
      daemon_args({}, {"--metrics", "127.0.0.1:9254", "--pin-dir", pin_dir()}));
  close(taken);
  ASSERT_TRUE(run) << run.error().message;
  EXPECT_EQ(run->exit_code, 6) << run->output;
  EXPECT_NE(run->output.find("127.0.0.1:9254"), std::string::npos) << run->output;
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
  // The query came in on cli0 and left on up0; the answer the other way.
  EXPECT_NE(body.find("dnsproxy_socket_rx_packets_total{worker=\"0\",interface=\"cli0\","
                      "queue=\"0\"} 1\n"),
            std::string::npos)
      << body;
  EXPECT_NE(body.find("dnsproxy_socket_tx_packets_total{worker=\"0\",interface=\"up0\","
                      "queue=\"0\"} 1\n"),
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

// dnsproxyctl status / stats over --admin-socket: text and JSON answers from the live daemon,
// root only, and a clear exit 3 when nothing listens.
TEST_F(ServiceTest, DnsproxyctlAsksTheRunningDaemon) {
  const std::string socket = "/tmp/dnsproxyd-admin-" + std::to_string(getpid()) + ".sock";
  auto daemon = Dnsproxyd::start(kDaemon, topology_->node(),
                                 {"-i", "cli0", "-i", "up0", "--forward-all", "--umem-frames",
                                  "4096", "--ring-size", "1024", "--admin-socket", socket},
                                 pin_dir());
  ASSERT_TRUE(daemon) << daemon.error().message;
  EXPECT_EQ(std::filesystem::status(socket).permissions() & std::filesystem::perms::all,
            std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  auto status = run_command({kCtl, "status", "--socket", socket});
  ASSERT_TRUE(status) << status.error().message;
  EXPECT_EQ(status->exit_code, 0) << status->output;
  EXPECT_NE(status->output.find("interfaces cli0, up0; DNS ports 53; fail-open"), std::string::npos)
      << status->output;
  EXPECT_NE(status->output.find("  cli0 queue 0: copy mode, XDP"), std::string::npos)
      << status->output;
  auto json = run_command({kCtl, "stats", "--json", "--socket", socket});
  ASSERT_TRUE(json) << json.error().message;
  ASSERT_EQ(json->exit_code, 0) << json->output;
  const nlohmann::json stats = nlohmann::json::parse(json->output, nullptr, false);
  ASSERT_FALSE(stats.is_discarded()) << json->output;
  EXPECT_EQ(stats.at("schema"), 1);
  EXPECT_EQ(stats.at("final"), false);
  EXPECT_TRUE(stats.at("workers").at(0).at("counters").contains("tx_packets"));
  auto text = run_command({kCtl, "stats", "--socket", socket});
  ASSERT_TRUE(text) << text.error().message;
  EXPECT_NE(text->output.find(" rx_packets="), std::string::npos) << text->output;
  EXPECT_NE(text->output.find("worker 0 drops: "), std::string::npos) << text->output;
  // Not root: the socket's mode refuses the connection.
  auto nobody = run_command({"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", kCtl,
                             "status", "--socket", socket});
  ASSERT_TRUE(nobody) << nobody.error().message;
  EXPECT_EQ(nobody->exit_code, 3) << nobody->output;
  EXPECT_NE(nobody->output.find("Permission denied"), std::string::npos) << nobody->output;
  EXPECT_EQ((*daemon)->stop(), 0) << (*daemon)->log();
  EXPECT_FALSE(std::filesystem::exists(socket)) << "removed at exit";
  auto gone = run_command({kCtl, "status", "--socket", socket});
  ASSERT_TRUE(gone) << gone.error().message;
  EXPECT_EQ(gone->exit_code, 3) << gone->output;
  EXPECT_NE(gone->output.find("cannot reach dnsproxyd"), std::string::npos) << gone->output;
}

}  // namespace
}  // namespace dnsproxy::test
