// dnsproxy-e2e-bench: the end-to-end benchmark (tools/run bench; bench/RESULTS.md, README.md
// "End-to-end benchmark"). On the test topology (client -- node -- upstream knotd in network
// namespaces, test/support/topology.h) it measures, side by side in one invocation, the paths of
// DESIGN.md "How performance is measured":
//
//   kernel     the node forwards in the kernel (no proxy): the peer every ratio is taken against
//   xdp        an in-kernel XDP forwarder on the node (bench/xdp_forward.bpf.c): the upper bound
//   forward    dnsproxyd --forward-all: the upper bound of a user-space path
//   policy     dnsproxyd --policy (an allow rule and a toFQDNs selector for the zone; embedded
//              agent, l3_guard)
//   policy-agent  the same with --agent on the reference agent dnsproxy-agent (on request:
//              --paths; its release latency against the embedded agent's)
//   dnsdist    dnsdist on the node as a socket proxy, suffix + netmask REFUSED policy
//
// Load: dnsproxy-loadgen on AF_XDP in the client namespace. Per path and run: completed q/s at
// saturation (closed loop), whole-machine busy CPU per completed query at a fixed rate
// (/proc/stat, minus the kernel path's in the same run), and p50 / p99 latency at a fixed low
// rate (minus the kernel path's). Paths alternate inside each run (the order reverses every
// run). Two layouts (where each process runs, printed): `default` (nothing pinned; dnsproxyd
// puts its one worker on the first allowed CPU, CPU 0) and `pinned` (client, knotd on CPU 0, the
// proxy alone on CPU 1, as the systemd unit deploys the worker); on request `shared` (all of
// them on CPU 0: the proxy competes with the load for one core). Then one sweep of offered rates
// per path for the latency-vs-load plot (bench/plot_e2e.py), and dnsperf against the load
// generator, both against knotd in XDP mode on a direct link.
//
// SIGINT / SIGTERM: the current measurement stops, everything built is removed (namespaces,
// processes, pins, temporary files), exit 130.
#include <sched.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bench/summary.h"
#include "test/support/bpffs.h"
#include "test/support/privileges.h"
#include "test/support/topology.h"
#include "xdp_forward.skel.h"

#include <bpf/libbpf.h>
#include <linux/if_link.h>
#include <net/if.h>

namespace dnsproxy::bench {
namespace {

using nlohmann::json;
using test::BackgroundProcess;
using test::Dnsproxyd;
using test::Knotd;
using test::NetNs;
using test::Topology;

std::atomic<bool> g_stop{false};
void on_signal(int) {
  g_stop.store(true);
}

struct Options {
  int runs = 5;
  double seconds = 4;  // saturation run; the fixed-rate runs take half of it each
  double low_rate = 2000;
  double cpu_rate = 20000;
  std::vector<double> curve_rates = {2000, 10000, 30000, 60000, 100000};
  unsigned outstanding = 256;
  double new_name_rate = 400;  // q/s of the policy path's release-latency runs
  std::vector<std::string> layouts = {"default", "pinned"};
  std::vector<std::string> paths = {"kernel", "xdp", "forward", "policy", "dnsdist"};
  std::string query_file;  // default: one A query per zone name
  std::string json_path = "e2e-bench.json";
  bool dnsperf = true;
  bool only_generators = false;  // skip the paths: only dnsperf against dnsproxy-loadgen
};

std::string sibling_binary(const std::string& name) {
  return (std::filesystem::read_symlink("/proc/self/exe").parent_path() / name).string();
}

std::string load_average() {
  std::ifstream in("/proc/loadavg");
  std::string one, five, fifteen;
  in >> one >> five >> fifteen;
  return one + " " + five + " " + fifteen;
}

// Busy and total jiffies of the whole machine (first line of /proc/stat), and of it the time in
// hard and soft interrupts (where kernel forwarding, XDP and veth delivery run).
struct CpuTimes {
  uint64_t busy = 0, total = 0, interrupts = 0;
};
CpuTimes cpu_times() {
  std::ifstream in("/proc/stat");
  std::string cpu;
  in >> cpu;
  uint64_t v[10] = {};
  for (uint64_t& x : v) in >> x;
  CpuTimes t;
  for (int i = 0; i < 8; ++i) t.total += v[i];  // guest time is inside user already
  t.busy = t.total - v[3] - v[4];               // minus idle, iowait
  t.interrupts = v[5] + v[6];
  return t;
}

// What the machine does without our load (other users' work) over `seconds`, in busy CPUs.
double background_busy_cpus(double seconds) {
  const CpuTimes before = cpu_times();
  std::this_thread::sleep_for(std::chrono::milliseconds(static_cast<int>(seconds * 1000)));
  const CpuTimes after = cpu_times();
  return static_cast<double>(after.busy - before.busy) /
         static_cast<double>(after.total - before.total) *
         static_cast<double>(sysconf(_SC_NPROCESSORS_ONLN));
}

// User + system jiffies of every process in one of the network namespaces `inodes` (the
// benchmark's own: knotd, dnsproxyd, dnsdist, the load generator). Other users' builds on this
// shared machine are not in them, which is what makes this figure usable when the machine is busy.
uint64_t namespace_jiffies(const std::vector<ino_t>& inodes) {
  uint64_t sum = 0;
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    const std::string pid = entry.path().filename();
    if (pid.empty() || !std::isdigit(static_cast<unsigned char>(pid[0]))) continue;
    struct stat ns {};
    if (stat(("/proc/" + pid + "/ns/net").c_str(), &ns) != 0 ||
        std::find(inodes.begin(), inodes.end(), ns.st_ino) == inodes.end())
      continue;
    std::ifstream in("/proc/" + pid + "/stat");
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const size_t close = text.rfind(')');  // the command name may hold spaces
    if (close == std::string::npos) continue;
    std::istringstream fields(text.substr(close + 2));
    std::string field;
    uint64_t utime = 0, stime = 0;
    for (int i = 3; i <= 15 && fields >> field; ++i) {
      if (i == 14) utime = std::stoull(field);
      if (i == 15) stime = std::stoull(field);
    }
    sum += utime + stime;
  }
  return sum;
}

std::vector<ino_t> namespace_inodes(std::initializer_list<const NetNs*> namespaces) {
  std::vector<ino_t> inodes;
  for (const NetNs* ns : namespaces) {
    struct stat st {};
    if (fstat(ns->fd(), &st) == 0) inodes.push_back(st.st_ino);
  }
  return inodes;
}

cpu_set_t cpus(std::initializer_list<int> list) {
  cpu_set_t set;
  CPU_ZERO(&set);
  for (int cpu : list) CPU_SET(cpu, &set);
  return set;
}

// The XDP programs of the benchmark, attached (native mode) until destruction.
class XdpAttachment {
 public:
  XdpAttachment() = default;
  XdpAttachment(const XdpAttachment&) = delete;
  XdpAttachment& operator=(const XdpAttachment&) = delete;
  ~XdpAttachment() { detach(); }

  // Attaches `program` to `ifname` inside `ns`.
  Result<void> attach(const NetNs& ns, const std::string& ifname, const bpf_program* program) {
    auto inside = test::ScopedNetns::enter(ns);
    if (!inside) return tl::unexpected(inside.error());
    const int ifindex = static_cast<int>(if_nametoindex(ifname.c_str()));
    if (ifindex == 0) return fail(ifname, " not found in ", ns.name());
    if (bpf_xdp_attach(ifindex, bpf_program__fd(program), XDP_FLAGS_DRV_MODE, nullptr) != 0)
      return fail("cannot attach ", bpf_program__name(program), " to ", ifname);
    attached_.push_back({&ns, ifindex});
    return {};
  }
  void detach() {
    for (const auto& [ns, ifindex] : attached_) {
      auto inside = test::ScopedNetns::enter(*ns);
      if (inside) bpf_xdp_detach(ifindex, XDP_FLAGS_DRV_MODE, nullptr);
    }
    attached_.clear();
  }

 private:
  std::vector<std::pair<const NetNs*, int>> attached_;
};

// Names in the zone with an AAAA record each of their own (Knotd::start's zone, 1000 hosts).
constexpr unsigned kNewNames = 1000;

struct Environment {
  test::BpfFsMount bpffs;  // dnsproxyd pins here, not in the host's /sys/fs/bpf
  std::unique_ptr<Topology> topology;
  std::unique_ptr<Knotd> knotd;
  std::string queries;
  std::string new_names;  // AAAA queries, each for its own address: new to a cold proxy
  std::string work_dir;   // policy file, dnsdist config, load generator output
  xdp_forward* skel = nullptr;
  std::unique_ptr<XdpAttachment> receive_side;  // xdp_pass on the upstream's eth0

  explicit Environment(test::BpfFsMount fs) : bpffs(std::move(fs)) {}
  Environment(const Environment&) = delete;
  Environment& operator=(const Environment&) = delete;
  ~Environment() {
    receive_side.reset();
    if (skel != nullptr) xdp_forward::destroy(skel);
    if (!work_dir.empty()) std::filesystem::remove_all(work_dir);
  }
  std::string pin_dir() const { return bpffs.path() + "/dnsproxy"; }
};

// Topology, knotd (pinned to CPU 0 in the pinned layout: children inherit the affinity set while
// they start), and the upstream's eth0 made able to take XDP-redirected frames.
Result<std::unique_ptr<Environment>> build_environment(const Options& options, bool pinned) {
  auto bpffs = test::BpfFsMount::create();
  if (!bpffs) return tl::unexpected(bpffs.error());
  auto env = std::make_unique<Environment>(std::move(*bpffs));
  char dir_template[] = "/tmp/dnsproxy-e2e-bench-XXXXXX";
  if (mkdtemp(dir_template) == nullptr) return fail("mkdtemp failed");
  env->work_dir = dir_template;
  auto topology = Topology::create();
  if (!topology) return tl::unexpected(topology.error());
  env->topology = std::move(*topology);
  cpu_set_t all;
  sched_getaffinity(0, sizeof(all), &all);
  if (pinned) {
    const cpu_set_t zero = cpus({0});
    sched_setaffinity(0, sizeof(zero), &zero);
  }
  auto knotd = Knotd::start(env->topology->upstream(), 1000);
  sched_setaffinity(0, sizeof(all), &all);
  if (!knotd) return tl::unexpected(knotd.error());
  env->knotd = std::move(*knotd);
  if (options.query_file.empty()) {
    auto queries = env->knotd->write_query_file(1000);
    if (!queries) return tl::unexpected(queries.error());
    env->queries = *queries;
  } else {
    env->queries = options.query_file;
  }
  env->new_names = env->work_dir + "/new-names.txt";
  std::ofstream new_names(env->new_names);
  for (unsigned i = 0; i < kNewNames; ++i) new_names << "host" << i << ".example.test AAAA\n";
  if (!new_names.flush()) return fail("cannot write ", env->new_names);
  // knotd's answers leave with full UDP checksums (no offload), so a frame the XDP forwarder
  // redirects is as valid as one the kernel forwarded.
  if (auto off = env->topology->upstream().exec({"ethtool", "-K", "eth0", "tx", "off"}); !off)
    return tl::unexpected(off.error());
  env->skel = xdp_forward::open_and_load();
  if (env->skel == nullptr) return fail("cannot load bench/xdp_forward.bpf.c");
  env->receive_side = std::make_unique<XdpAttachment>();
  if (auto ok =
          env->receive_side->attach(env->topology->upstream(), "eth0", env->skel->progs.xdp_pass);
      !ok)
    return tl::unexpected(ok.error());
  return env;
}

// One load generator run, its JSON result, or an error. Added: "cpu_busy_s", whole-machine busy
// CPU seconds during the run; "cpu_ours_s", the CPU seconds of the processes in `accounted`
// namespaces plus the load generator plus all interrupt time (a figure other users' work hardly
// enters).
Result<json> run_loadgen(const NetNs& client, const std::string& queries,
                         const std::string& work_dir, const std::string& server, bool pinned,
                         std::vector<std::string> args, const std::vector<ino_t>& accounted = {}) {
  std::vector<std::string> argv;
  if (pinned) argv = {"taskset", "-c", "0"};
  argv.insert(argv.end(), {sibling_binary("dnsproxy-loadgen"), "-i", "eth0", "-s", server, "-d",
                           queries, "--json"});
  argv.insert(argv.end(), args.begin(), args.end());
  const std::string out_path = work_dir + "/loadgen.json";
  rusage children_before{};
  getrusage(RUSAGE_CHILDREN, &children_before);
  const uint64_t ours_before = namespace_jiffies(accounted);
  const CpuTimes before = cpu_times();
  auto process = BackgroundProcess::start(argv, &client, out_path);
  if (!process) return tl::unexpected(process.error());
  while (process->running()) {
    if (g_stop.load()) {
      process->stop();
      return fail("interrupted");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  const CpuTimes after = cpu_times();
  const uint64_t ours_after = namespace_jiffies(accounted);  // the load generator has exited
  const int code = process->stop();
  rusage children_after{};
  getrusage(RUSAGE_CHILDREN, &children_after);  // now with the load generator, reaped
  auto seconds = [](const timeval& t) {
    return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6;
  };
  const double loadgen_cpu = seconds(children_after.ru_utime) + seconds(children_after.ru_stime) -
                             seconds(children_before.ru_utime) - seconds(children_before.ru_stime);
  std::ifstream in(out_path);
  std::stringstream text;
  text << in.rdbuf();
  json result = json::parse(text.str(), nullptr, false);
  if (code != 0 || !result.is_object())
    return fail("dnsproxy-loadgen exited with ", std::to_string(code), ": ", text.str());
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  result["cpu_busy_s"] = static_cast<double>(after.busy - before.busy) / ticks;
  result["cpu_ours_s"] =
      static_cast<double>(ours_after - ours_before + after.interrupts - before.interrupts) / ticks +
      loadgen_cpu;
  return result;
}

Result<json> loadgen(const Environment& env, const std::string& server, bool pinned,
                     std::vector<std::string> args) {
  return run_loadgen(env.topology->client(), env.queries, env.work_dir, server, pinned,
                     std::move(args),
                     namespace_inodes({&env.topology->client(), &env.topology->node(),
                                       &env.topology->upstream()}));
}

// A path while it is set up: whatever makes the node carry the traffic this way.
class PathSetup {
 public:
  virtual ~PathSetup() = default;
  virtual std::string server() const { return Topology::kUpstreamV4; }
  virtual std::string evidence() { return ""; }  // after the runs: counters that show no loss
  // After finish(): the daemon's own latency histograms (stats file), when it is dnsproxyd.
  virtual json histograms() const { return json::object(); }
  virtual Result<void> finish() { return {}; }
};

class XdpPath : public PathSetup {
 public:
  static Result<std::unique_ptr<PathSetup>> start(const Environment& env) {
    auto path = std::make_unique<XdpPath>();
    for (const char* ifname : {Topology::kNodeClientSide, Topology::kNodeUpstreamSide})
      if (auto ok =
              path->attached_.attach(env.topology->node(), ifname, env.skel->progs.xdp_forward);
          !ok)
        return tl::unexpected(ok.error());
    return std::unique_ptr<PathSetup>(std::move(path));
  }

 private:
  XdpAttachment attached_;
};

class DaemonPath : public PathSetup {
 public:
  static Result<std::unique_ptr<PathSetup>> start(const Environment& env,
                                                  std::vector<std::string> args) {
    auto path = launch(env, std::move(args));
    if (!path) return tl::unexpected(path.error());
    return std::unique_ptr<PathSetup>(std::move(*path));
  }
  static Result<std::unique_ptr<DaemonPath>> launch(const Environment& env,
                                                    std::vector<std::string> args) {
    auto daemon =
        Dnsproxyd::start(sibling_binary("dnsproxyd"), env.topology->node(), args, env.pin_dir());
    if (!daemon) return tl::unexpected(daemon.error());
    auto path = std::make_unique<DaemonPath>();
    path->daemon_ = std::move(*daemon);
    return path;
  }
  // With --agent: until the agent's policy is in force (the empty policy refuses everything).
  Result<void> wait_for_agent_policy() {
    for (int i = 0; i < 100; ++i) {
      if (daemon_->report_counters())
        if (auto stats = daemon_->stats();
            stats && stats->value("policy", json::object()).value("source", "") == "agent")
          return {};
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return fail("dnsproxyd --agent: no policy from the agent within 10 s:\n", daemon_->log());
  }
  std::string evidence() override { return evidence_; }
  json histograms() const override { return histograms_; }
  Result<void> finish() override {
    const int code = daemon_->stop();
    // The final per-worker counters from the stats file (rx, tx, drops, leaked frames): the
    // figure did not come from dropping work.
    const std::string log = daemon_->log();
    if (auto stats = daemon_->stats()) {
      for (const nlohmann::json& worker : stats->at("workers")) {
        std::string line = "    worker " + worker.at("worker").dump() + ":";
        for (const char* name : {"rx_packets", "tx_packets", "leaked_frames"})
          line += std::string(" ") + name + "=" + worker.at("counters").at(name).dump();
        for (const auto& [reason, value] : worker.at("drops").items())
          if (value.get<uint64_t>() != 0) line += " drop_" + reason + "=" + value.dump();
        evidence_ += line + "\n";
      }
      evidence_ += "    frame check: " + stats->at("frame_check").dump() + "\n";
      histograms_ = stats->value("histograms", json::object());
    }
    if (code != 0) return fail("dnsproxyd exited with ", std::to_string(code), ":\n", log);
    return {};
  }

 private:
  std::unique_ptr<Dnsproxyd> daemon_;
  std::string evidence_;
  json histograms_ = json::object();
};

class DnsdistPath : public PathSetup {
 public:
  static constexpr const char* kListen = "192.0.2.1";  // the node's client-side address

  static Result<std::unique_ptr<PathSetup>> start(const Environment& env, bool pinned,
                                                  const std::string& proxy_cpu) {
    const std::string config = env.work_dir + "/dnsdist.conf";
    std::ofstream(config)
        << "-- The policy dnsproxyd enforces, as dnsdist rules: clients of 192.0.2.0/24 may ask\n"
           "-- for names under example.test; everything else is REFUSED.\n"
           "setLocal('"
        << kListen
        << ":53')\n"
           "setSecurityPollSuffix('')\n"
           "setACL({'192.0.2.0/24', '2001:db8:c::/64'})\n"
           "newServer({address='"
        << Topology::kUpstreamV4
        << ":53', checkName='www.example.test.', checkInterval=60})\n"
           "clients = newNMG()\n"
           "clients:addMask('192.0.2.0/24')\n"
           "zone = newSuffixMatchNode()\n"
           "zone:add(newDNSName('example.test.'))\n"
           "addAction(NotRule(AndRule({NetmaskGroupRule(clients), SuffixMatchNodeRule(zone)})), "
           "RCodeAction(DNSRCode.REFUSED))\n";
    std::vector<std::string> argv;
    if (pinned) argv = {"taskset", "-c", proxy_cpu};
    argv.insert(argv.end(), {"dnsdist", "--supervised", "--disable-syslog", "-C", config});
    auto process =
        BackgroundProcess::start(argv, &env.topology->node(), env.work_dir + "/dnsdist.log");
    if (!process) return tl::unexpected(process.error());
    auto path = std::make_unique<DnsdistPath>(std::move(*process));
    if (auto up = test::wait_until_answering(env.topology->client(), kListen, 10000); !up) {
      std::ifstream log(env.work_dir + "/dnsdist.log");
      std::stringstream text;
      text << log.rdbuf();
      return fail("dnsdist did not answer: ", up.error().message, "\n", text.str());
    }
    return std::unique_ptr<PathSetup>(std::move(path));
  }
  explicit DnsdistPath(BackgroundProcess process) : process_(std::move(process)) {}
  std::string server() const override { return kListen; }

 private:
  BackgroundProcess process_;
};

// dnsproxyd --agent on the reference agent dnsproxy-agent (issue 12): the policy path with its
// plumbing over the agent link instead of the embedded agent. The agent is a control-plane
// process outside the namespaces (a unix socket and the pins); in the pinned layout it shares
// CPU 0 with the load, as a node's agent shares the housekeeping cores, not the worker's.
class AgentPolicyPath : public PathSetup {
 public:
  static Result<std::unique_ptr<PathSetup>> start(const Environment& env, bool pinned,
                                                  const std::string& policy,
                                                  std::vector<std::string> daemon) {
    const std::string socket = env.work_dir + "/agent.sock";
    std::filesystem::remove(socket);
    std::vector<std::string> argv;
    if (pinned) argv = {"taskset", "-c", "0"};
    argv.insert(argv.end(), {sibling_binary("dnsproxy-agent"), "--listen", "unix:" + socket,
                             "--policy", policy, "--pin-dir", env.pin_dir()});
    auto agent = BackgroundProcess::start(argv, nullptr, env.work_dir + "/agent.log");
    if (!agent) return tl::unexpected(agent.error());
    auto path = std::make_unique<AgentPolicyPath>(std::move(*agent));
    for (int i = 0; i < 500 && !std::filesystem::exists(socket); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    if (!std::filesystem::exists(socket))
      return fail("dnsproxy-agent did not listen on ", socket, " (see ", env.work_dir,
                  "/agent.log)");
    // The agent sends the policy; the daemon keeps what it accepted beside the run's files.
    daemon.insert(daemon.end(), {"--agent", "unix:" + socket, "--policy-state",
                                 env.work_dir + "/policy-state.pb"});
    auto inner = DaemonPath::launch(env, std::move(daemon));
    if (!inner) return tl::unexpected(inner.error());
    if (auto ready = (*inner)->wait_for_agent_policy(); !ready)
      return tl::unexpected(ready.error());
    path->daemon_ = std::move(*inner);
    return std::unique_ptr<PathSetup>(std::move(path));
  }
  explicit AgentPolicyPath(BackgroundProcess agent) : agent_(std::move(agent)) {}
  std::string evidence() override { return daemon_->evidence(); }
  json histograms() const override { return daemon_->histograms(); }
  Result<void> finish() override {
    auto finished = daemon_->finish();
    agent_.stop();
    return finished;
  }

 private:
  BackgroundProcess agent_;
  std::unique_ptr<DaemonPath> daemon_;  // dnsproxyd on the agent
};

std::string write_policy(const Environment& env) {
  const std::string path = env.work_dir + "/policy.yaml";
  std::ofstream(path) << "# The benchmark's policy: the client may ask knotd for names under "
                         "example.test.\n"
                         "identities:\n"
                         "  - {id: 20001, labels: {k8s-app: kube-dns}, cidrs: ["
                      << Topology::kUpstreamV4 << "/32, " << Topology::kUpstreamV6
                      << "/128]}\n"
                         "endpoints:\n"
                         "  - {id: 101, identity: 10001, labels: {app: bench}, ips: ["
                      << Topology::kClientV4 << ", " << Topology::kClientV6
                      << "]}\n"
                         "policies:\n"
                         "  - name: bench-dns\n"
                         "    endpointSelector: {matchLabels: {app: bench}}\n"
                         "    egress:\n"
                         "      - toEndpoints: [{matchLabels: {k8s-app: kube-dns}}]\n"
                         "        toPorts:\n"
                         "          - ports: [{port: \"53\", protocol: ANY}]\n"
                         "            rules:\n"
                         "              dns: [{matchPattern: \"*.example.test\"}]\n"
                         // Every answer's address is toFQDNs-selected: the first response per
                         // name waits for the embedded agent, the rest are checked against the
                         // plumbed set, as on a node.
                         "      - toFQDNs: [{matchPattern: \"*.example.test\"}]\n";
  return path;
}

// Sets up `path` in `layout`; nullptr with a reason when it cannot run here.
Result<std::unique_ptr<PathSetup>> start_path(const Environment& env, const std::string& path,
                                              bool pinned, const std::string& proxy_cpu) {
  std::vector<std::string> daemon = {"-i", Topology::kNodeClientSide, "-i",
                                     Topology::kNodeUpstreamSide};
  if (pinned) daemon.insert(daemon.end(), {"--cpus", proxy_cpu});
  if (path == "kernel") return std::make_unique<PathSetup>();
  if (path == "xdp") return XdpPath::start(env);
  if (path == "forward") {
    daemon.push_back("--forward-all");
    return DaemonPath::start(env, daemon);
  }
  if (path == "policy" || path == "policy-agent") {
    // Every run starts cold: without the last run's plumbed set (both agents keep their maps
    // pinned across restarts), every name is new to the proxy again.
    std::filesystem::remove(env.pin_dir() + "/dnsproxy_fqdn_allow");
    const std::string policy = write_policy(env);
    if (path == "policy-agent") return AgentPolicyPath::start(env, pinned, policy, daemon);
    daemon.insert(daemon.end(), {"--policy", policy});
    return DaemonPath::start(env, daemon);
  }
  if (path == "dnsdist") return DnsdistPath::start(env, pinned, proxy_cpu);
  return fail("unknown path ", path);
}

// Per path, one run's three measurements.
struct Sample {
  double qps = 0;          // completed q/s at saturation
  double cpu_us = 0;       // whole-machine busy CPU microseconds per completed query at cpu_rate
  double ours_cpu_us = 0;  // the same, counting only our processes and interrupts
  double p50_us = 0, p99_us = 0;  // at low_rate
  // policy only, at new_name_rate: client latency while every name is new (each response waits
  // for plumbing), then for the same names once plumbed (released at once)
  double new_p50_us = 0, new_p99_us = 0, plumbed_p50_us = 0, plumbed_p99_us = 0;
  json raw;
};

// The policy path's release latency as the client sees it: the same queries at the same low
// rate, first while the (cold) proxy has plumbed none of their addresses, then again.
Result<void> measure_release(const Environment& env, const Options& options, const PathSetup& path,
                             bool pinned, Sample& sample) {
  // Fewer queries than names, so no address of the first run repeats in it.
  const double seconds = 0.8 * kNewNames / options.new_name_rate;
  const std::vector<std::string> args = {"-l", std::to_string(seconds), "-Q",
                                         std::to_string(options.new_name_rate)};
  json runs = json::object();
  for (const char* phase : {"new_names", "plumbed_names"}) {
    auto r = run_loadgen(env.topology->client(), env.new_names, env.work_dir, path.server(), pinned,
                         args);
    if (!r) return tl::unexpected(r.error());
    runs[phase] = *r;
  }
  sample.new_p50_us = runs["new_names"]["latency_us"]["p50"];
  sample.new_p99_us = runs["new_names"]["latency_us"]["p99"];
  sample.plumbed_p50_us = runs["plumbed_names"]["latency_us"]["p50"];
  sample.plumbed_p99_us = runs["plumbed_names"]["latency_us"]["p99"];
  sample.raw["release"] = runs;
  return {};
}

Result<Sample> measure(const Environment& env, const Options& options, const std::string& name,
                       const PathSetup& path, bool pinned) {
  Sample sample;
  if (name == "policy" || name == "policy-agent")
    if (auto ok = measure_release(env, options, path, pinned, sample); !ok)
      return tl::unexpected(ok.error());
  const std::string half = std::to_string(options.seconds / 2);
  auto saturation =
      loadgen(env, path.server(), pinned,
              {"-l", std::to_string(options.seconds), "-q", std::to_string(options.outstanding)});
  if (!saturation) return tl::unexpected(saturation.error());
  auto fixed =
      loadgen(env, path.server(), pinned, {"-l", half, "-Q", std::to_string(options.cpu_rate)});
  if (!fixed) return tl::unexpected(fixed.error());
  auto low =
      loadgen(env, path.server(), pinned, {"-l", half, "-Q", std::to_string(options.low_rate)});
  if (!low) return tl::unexpected(low.error());
  sample.qps = (*saturation)["completed_qps"];
  const double completed = (*fixed)["completed"];
  sample.cpu_us = completed > 0 ? (*fixed)["cpu_busy_s"].get<double>() * 1e6 / completed : 0;
  sample.ours_cpu_us = completed > 0 ? (*fixed)["cpu_ours_s"].get<double>() * 1e6 / completed : 0;
  sample.p50_us = (*low)["latency_us"]["p50"];
  sample.p99_us = (*low)["latency_us"]["p99"];
  sample.raw["saturation"] = *saturation;
  sample.raw["fixed_rate"] = *fixed;
  sample.raw["low_rate"] = *low;
  return sample;
}

// A daemon histogram's quantile from one run's stats (bucket upper bound, us); -1 for +Inf.
double daemon_quantile(const Sample& sample, const char* histogram, const char* quantile) {
  const json& value = sample.raw["daemon_histograms"][histogram][quantile];
  return value.is_number() ? value.get<double>() : -1;
}

// The policy path's release latency: the client's view (new names against the same names once
// plumbed, same rate) and the daemon's (its histograms, to the bucket bound), median and range.
json release_summary(const Options& options, const std::string& path,
                     const std::vector<Sample>& runs) {
  std::vector<double> new_p50, new_p99, plumbed_p50, plumbed_p99, added_p50, added_p99;
  std::vector<double> release_p50, release_p99, ack_p50, ack_p99;
  for (const Sample& s : runs) {
    new_p50.push_back(s.new_p50_us);
    new_p99.push_back(s.new_p99_us);
    plumbed_p50.push_back(s.plumbed_p50_us);
    plumbed_p99.push_back(s.plumbed_p99_us);
    added_p50.push_back(s.new_p50_us - s.plumbed_p50_us);
    added_p99.push_back(s.new_p99_us - s.plumbed_p99_us);
    release_p50.push_back(daemon_quantile(s, "release_on_ack_us", "p50"));
    release_p99.push_back(daemon_quantile(s, "release_on_ack_us", "p99"));
    ack_p50.push_back(daemon_quantile(s, "mapping_to_ack_us", "p50"));
    ack_p99.push_back(daemon_quantile(s, "mapping_to_ack_us", "p99"));
  }
  std::printf(
      "\n%s release latency at %.0f q/s (client-measured, us; new: every answer's address new "
      "to the proxy, waits for the %s agent; plumbed: the same queries again, released at "
      "once):\n| new p50 | new p99 | plumbed p50 | plumbed p99 | added p50 | added p99 | daemon "
      "park-to-release p50 | p99 | daemon mapping-to-ACK p50 | p99 | (daemon: bucket upper bounds, "
      "-1 = over 1 s)\n"
      "|---|---|---|---|---|---|---|---|---|---|\n| %s | %s | %s | %s | %s | %s | %s | %s | %s | "
      "%s |\n",
      path.c_str(), options.new_name_rate, path == "policy" ? "embedded" : "external",
      range_text(new_p50, "%.0f").c_str(), range_text(new_p99, "%.0f").c_str(),
      range_text(plumbed_p50, "%.0f").c_str(), range_text(plumbed_p99, "%.0f").c_str(),
      range_text(added_p50, "%+.0f").c_str(), range_text(added_p99, "%+.0f").c_str(),
      range_text(release_p50, "%.0f").c_str(), range_text(release_p99, "%.0f").c_str(),
      range_text(ack_p50, "%.0f").c_str(), range_text(ack_p99, "%.0f").c_str());
  return {{"rate", options.new_name_rate},
          {"new_p50_us", new_p50},
          {"new_p99_us", new_p99},
          {"plumbed_p50_us", plumbed_p50},
          {"plumbed_p99_us", plumbed_p99},
          {"added_p50_us", added_p50},
          {"added_p99_us", added_p99},
          {"daemon_release_on_ack_p50_us", release_p50},
          {"daemon_release_on_ack_p99_us", release_p99},
          {"daemon_mapping_to_ack_p50_us", ack_p50},
          {"daemon_mapping_to_ack_p99_us", ack_p99}};
}

const char* layout_text(const std::string& layout) {
  if (layout == "shared")
    return "shared: loadgen, knotd and the proxy (dnsproxyd --cpus 0, dnsdist) all on CPU 0 "
           "(taskset); CPU 1 only for softirq work the kernel puts there";
  return layout == "pinned"
             ? "pinned: loadgen and knotd on CPU 0 (taskset); dnsproxyd's worker (--cpus 1) or "
               "dnsdist alone on CPU 1; kernel/XDP forwarding runs in softirq where the packets "
               "are (mostly CPU 0)"
             : "default: nothing pinned by the harness; dnsproxyd puts its one worker on the "
               "first allowed CPU (CPU 0); loadgen, knotd, dnsdist wherever the scheduler puts "
               "them";
}

int run_layout(const Options& options, const std::string& layout, json& results) {
  // pinned and shared: load generator and knotd on CPU 0; the proxy on CPU 1 or also on 0.
  const bool pinned = layout != "default";
  const std::string proxy_cpu = layout == "shared" ? "0" : "1";
  auto env = build_environment(options, pinned);
  if (!env) {
    std::fprintf(stderr, "cannot build the topology: %s\n", env.error().message.c_str());
    return 1;
  }
  // What an interrupted run must remove (test/e2e/e2e_bench_test.cpp checks it).
  std::printf("\n== layout %s\n   %s\n   cleanup list: %s %s %s %s %s %s\n", layout.c_str(),
              layout_text(layout), (*env)->topology->client().name().c_str(),
              (*env)->topology->node().name().c_str(), (*env)->topology->upstream().name().c_str(),
              (*env)->bpffs.path().c_str(), (*env)->work_dir.c_str(),
              (*env)->knotd->directory().c_str());
  std::fflush(stdout);
  const std::vector<std::string>& paths = options.paths;
  json unavailable = json::object();
  std::map<std::string, std::vector<Sample>> samples;
  std::map<std::string, std::string> evidence;
  std::vector<double> background_cpus;
  for (int run = 0; run < options.runs && !g_stop.load(); ++run) {
    std::vector<std::string> order = paths;
    if (run % 2 == 1) std::reverse(order.begin(), order.end());
    // Shown, not subtracted; the kernel path's figure of the same run is what every path is
    // compared with.
    const double background = background_busy_cpus(options.seconds / 4);
    background_cpus.push_back(background);
    std::printf("run %d (load average %s, busy CPUs before the run without our load %.2f):",
                run + 1, load_average().c_str(), background);
    for (const std::string& path : order) {
      if (g_stop.load()) break;
      if (unavailable.contains(path)) continue;
      auto setup = start_path(**env, path, pinned, proxy_cpu);
      Result<Sample> sample =
          setup ? measure(**env, options, path, **setup, pinned) : tl::unexpected(setup.error());
      if (setup) {
        if (auto done = (*setup)->finish(); !done && sample) sample = tl::unexpected(done.error());
        evidence[path] = (*setup)->evidence();
        if (sample) sample->raw["daemon_histograms"] = (*setup)->histograms();
      }
      if (!sample) {
        if (g_stop.load()) break;
        std::printf(" %s FAILED", path.c_str());
        unavailable[path] = "failed: " + sample.error().message;
        continue;
      }
      std::printf(" %s %.0f q/s", path.c_str(), sample->qps);
      std::fflush(stdout);
      samples[path].push_back(std::move(*sample));
    }
    std::printf("\n");
  }
  if (g_stop.load()) return 130;
  for (const auto& [path, why] : unavailable.items())
    if (why.get<std::string>().rfind("failed", 0) == 0)
      std::printf("   %s %s\n", path.c_str(), why.get<std::string>().c_str());

  // Summary: ratios and differences against the kernel path of the same run.
  const std::vector<Sample>& kernel = samples["kernel"];
  std::printf(
      "\n| path | q/s at saturation | / kernel | machine CPU us/query at %.0f q/s | added vs "
      "kernel | our CPU us/query | added vs kernel | p50 us at %.0f q/s | added p50 | p99 us | "
      "added p99 |\n|---|---|---|---|---|---|---|---|---|---|---|\n",
      options.cpu_rate, options.low_rate);
  json summary = json::object();
  for (const std::string& path : paths) {
    const auto found = samples.find(path);
    if (found == samples.end()) continue;
    const std::vector<Sample>& s = found->second;
    std::vector<double> qps, ratio, cpu, added_cpu, ours, added_ours, p50, added_p50, p99,
        added_p99;
    for (size_t i = 0; i < s.size() && i < kernel.size(); ++i) {
      qps.push_back(s[i].qps);
      ratio.push_back(s[i].qps / kernel[i].qps);
      cpu.push_back(s[i].cpu_us);
      added_cpu.push_back(s[i].cpu_us - kernel[i].cpu_us);
      ours.push_back(s[i].ours_cpu_us);
      added_ours.push_back(s[i].ours_cpu_us - kernel[i].ours_cpu_us);
      p50.push_back(s[i].p50_us);
      added_p50.push_back(s[i].p50_us - kernel[i].p50_us);
      p99.push_back(s[i].p99_us);
      added_p99.push_back(s[i].p99_us - kernel[i].p99_us);
    }
    std::printf("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", path.c_str(),
                range_text(qps, "%.0f").c_str(), range_text(ratio, "%.2f").c_str(),
                range_text(cpu, "%.1f").c_str(), range_text(added_cpu, "%+.1f").c_str(),
                range_text(ours, "%.1f").c_str(), range_text(added_ours, "%+.1f").c_str(),
                range_text(p50, "%.0f").c_str(), range_text(added_p50, "%+.0f").c_str(),
                range_text(p99, "%.0f").c_str(), range_text(added_p99, "%+.0f").c_str());
    json runs = json::array();
    for (const Sample& one : s) runs.push_back(one.raw);
    summary[path] = {{"qps", qps},
                     {"ratio_to_kernel", ratio},
                     {"cpu_us_per_query", cpu},
                     {"added_cpu_us", added_cpu},
                     {"our_cpu_us_per_query", ours},
                     {"added_our_cpu_us", added_ours},
                     {"p50_us", p50},
                     {"added_p50_us", added_p50},
                     {"p99_us", p99},
                     {"added_p99_us", added_p99},
                     {"runs", runs}};
  }
  for (const char* path : {"policy", "policy-agent"})
    if (const auto runs = samples.find(path); runs != samples.end())
      summary[path]["release"] = release_summary(options, path, runs->second);
  for (const auto& [path, text] : evidence)
    if (!text.empty())
      std::printf("%s, last run's final counters:\n%s", path.c_str(), text.c_str());

  // Latency against offered load, one sweep per path (default layout only: the plot).
  json curves = json::object();
  if (!pinned) {
    for (const std::string& path : paths) {
      if (g_stop.load()) return 130;
      if (samples.find(path) == samples.end()) continue;
      auto setup = start_path(**env, path, pinned, proxy_cpu);
      if (!setup) continue;
      json points = json::array();
      for (const double rate : options.curve_rates) {
        auto r = loadgen(**env, (*setup)->server(), pinned,
                         {"-l", std::to_string(options.seconds / 2), "-Q", std::to_string(rate)});
        if (!r) break;
        points.push_back({{"offered_qps", rate},
                          {"completed_qps", (*r)["completed_qps"]},
                          {"p50_us", (*r)["latency_us"]["p50"]},
                          {"p99_us", (*r)["latency_us"]["p99"]},
                          {"lost", (*r)["lost"]},
                          {"rate_reached", (*r)["rate_reached"]}});
      }
      (void)(*setup)->finish();
      curves[path] = points;
    }
  }
  if (g_stop.load()) return 130;

  std::printf("load average at the end: %s\n", load_average().c_str());
  results[layout] = {
      {"description", layout_text(layout)}, {"paths", summary},
      {"unavailable", unavailable},         {"background_busy_cpus", background_cpus},
      {"latency_vs_load", curves},          {"load_average_end", load_average()}};
  return 0;
}

// One generator's run: completed q/s and the queries it counted lost.
struct GeneratorRun {
  double qps = 0;
  uint64_t lost = 0;
  // knotd's user + system CPU time over the run's wall time (1.0: a whole core). Near 1, the
  // server, not the generator, bounds the completed q/s (its XDP path is one thread).
  double server_cpus = 0;
};

// dnsperf from the client namespace, the same load as dnsproxy-loadgen's.
Result<GeneratorRun> run_dnsperf(const NetNs& client, const Options& options,
                                 const std::string& queries) {
  auto out = client.run({"dnsperf", "-s", Topology::kUpstreamV4, "-d", queries, "-l",
                         std::to_string(static_cast<int>(options.seconds)), "-c", "4", "-q",
                         std::to_string(options.outstanding), "-t", "2"});
  const size_t qps = out ? out->output.find("Queries per second:") : std::string::npos;
  const size_t lost = out ? out->output.find("Queries lost:") : std::string::npos;
  if (qps == std::string::npos || lost == std::string::npos) return fail("dnsperf failed");
  return GeneratorRun{std::stod(out->output.substr(qps + 19)),
                      std::stoull(out->output.substr(lost + 13))};
}

// The generators of the comparison: dnsperf, and dnsproxy-loadgen with each of its TX paths.
struct Generator {
  std::string name;
  std::vector<std::string> args;  // dnsproxy-loadgen's; dnsperf: none
  std::vector<double> qps, ratio, server_cpus;
  std::vector<uint64_t> lost;
};

Result<GeneratorRun> run_generator(const Generator& generator, const NetNs& client,
                                   const Options& options, const std::string& queries,
                                   const std::string& work_dir) {
  if (generator.args.empty()) return run_dnsperf(client, options, queries);
  std::vector<std::string> args = {"-l", std::to_string(options.seconds), "-q",
                                   std::to_string(options.outstanding)};
  args.insert(args.end(), generator.args.begin(), generator.args.end());
  auto r = run_loadgen(client, queries, work_dir, Topology::kUpstreamV4, false, args);
  if (!r) return tl::unexpected(r.error());
  return GeneratorRun{(*r)["completed_qps"].get<double>(), (*r)["lost"].get<uint64_t>()};
}

// dnsperf and dnsproxy-loadgen from the same client namespace against the same knotd serving
// through its own XDP path (knot's `xdp: listen`), the client and the server on one veth link:
// what each generator can offer, in turn (the order rotates every run), same run.
int compare_generators(const Options& options, json& results) {
  auto client = NetNs::create("genclient");
  auto server = NetNs::create("genserver");
  if (!client || !server) return std::fprintf(stderr, "cannot create namespaces\n"), 1;
  auto link = test::VethPair::create(
      {.name_a = "eth0", .ns_a = &*client, .name_b = "eth0", .ns_b = &*server});
  if (!link) return std::fprintf(stderr, "%s\n", link.error().message.c_str()), 1;
  for (const auto& [ns, v4, v6] : {std::tuple{&*client, "198.51.100.10/24", "2001:db8:5::10/64"},
                                   std::tuple{&*server, "198.51.100.53/24", "2001:db8:5::53/64"}}) {
    if (!ns->add_address("eth0", v4) || !ns->add_address("eth0", v6))
      return std::fprintf(stderr, "cannot address the generator link\n"), 1;
  }
  char dir_template[] = "/tmp/dnsproxy-e2e-bench-XXXXXX";
  if (mkdtemp(dir_template) == nullptr) return 1;
  const std::string work_dir = dir_template;
  struct RemoveDir {
    std::string dir;
    ~RemoveDir() { std::filesystem::remove_all(dir); }
  } remove_dir{work_dir};
  auto knotd = Knotd::start(*server, 1000, "eth0");
  if (!knotd) return std::fprintf(stderr, "%s\n", knotd.error().message.c_str()), 1;
  std::printf(
      "\n== load generators against knotd in XDP mode (direct link), cleanup list: %s %s %s %s\n",
      client->name().c_str(), server->name().c_str(), work_dir.c_str(),
      (*knotd)->directory().c_str());
  std::string queries = options.query_file;
  if (queries.empty()) {
    auto written = (*knotd)->write_query_file(1000);
    if (!written) return 1;
    queries = *written;
  }
  std::vector<Generator> generators(4);
  generators[0].name = "dnsperf -c 4";
  generators[1] = {.name = "dnsproxy-loadgen --tx afxdp", .args = {"--tx", "afxdp"}};
  generators[2] = {.name = "dnsproxy-loadgen --tx xdp", .args = {"--tx", "xdp"}};
  generators[3] = {.name = "dnsproxy-loadgen --tx xdp --threaded-napi",
                   .args = {"--tx", "xdp", "--threaded-napi"}};
  std::vector<double> background_cpus;
  const std::vector<ino_t> server_inodes = namespace_inodes({&*server});
  for (int run = 0; run < options.runs && !g_stop.load(); ++run) {
    background_cpus.push_back(background_busy_cpus(options.seconds / 4));
    std::printf("run %d (load average %s, busy CPUs before the run without our load %.2f):",
                run + 1, load_average().c_str(), background_cpus.back());
    std::vector<GeneratorRun> runs(generators.size());
    for (size_t leg = 0; leg < generators.size() && !g_stop.load(); ++leg) {
      const size_t g = (leg + static_cast<size_t>(run)) % generators.size();
      const uint64_t server_before = namespace_jiffies(server_inodes);
      const auto started = std::chrono::steady_clock::now();
      auto measured = run_generator(generators[g], *client, options, queries, work_dir);
      if (!measured) {
        if (!g_stop.load()) std::fprintf(stderr, "%s\n", measured.error().message.c_str());
        return g_stop.load() ? 130 : 1;
      }
      runs[g] = *measured;
      const double wall =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
      runs[g].server_cpus = static_cast<double>(namespace_jiffies(server_inodes) - server_before) /
                            static_cast<double>(sysconf(_SC_CLK_TCK)) / wall;
    }
    if (g_stop.load()) return 130;
    for (size_t g = 0; g < generators.size(); ++g) {
      const double ratio = runs[g].qps / runs[0].qps;
      generators[g].qps.push_back(runs[g].qps);
      generators[g].ratio.push_back(ratio);
      generators[g].lost.push_back(runs[g].lost);
      generators[g].server_cpus.push_back(runs[g].server_cpus);
      std::printf(" %s %.0f q/s (%.2fx, %llu lost, knotd %.2f CPU)", generators[g].name.c_str(),
                  runs[g].qps, ratio, static_cast<unsigned long long>(runs[g].lost),
                  runs[g].server_cpus);
    }
    std::printf("\n");
    std::fflush(stdout);
  }
  json summary = json::object();
  for (const Generator& g : generators) {
    std::printf("%s -q %u: %s q/s, / dnsperf %s%s, knotd busy %s CPU\n", g.name.c_str(),
                options.outstanding, range_text(g.qps, "%.0f").c_str(),
                range_text(g.ratio, "%.2f").c_str(), g.args.empty() ? "" : " (target >= 3)",
                range_text(g.server_cpus, "%.2f").c_str());
    summary[g.name] = {{"qps", g.qps},
                       {"ratio_to_dnsperf", g.ratio},
                       {"lost", g.lost},
                       {"knotd_cpus", g.server_cpus}};
  }
  results["load_generators"] = {{"server", "knotd, xdp: listen eth0, direct veth link"},
                                {"generators", summary},
                                {"background_busy_cpus", background_cpus}};
  return 0;
}

int bench(const Options& options) {
  std::printf(
      "dnsproxy end-to-end benchmark: %d runs per path, %.1f s at saturation (-q %u), %.1f s at "
      "%.0f q/s (CPU), %.1f s at %.0f q/s (latency); %ld CPUs online; load average %s\n",
      options.runs, options.seconds, options.outstanding, options.seconds / 2, options.cpu_rate,
      options.seconds / 2, options.low_rate, sysconf(_SC_NPROCESSORS_ONLN), load_average().c_str());
  json out = {{"command_options",
               {{"runs", options.runs},
                {"seconds", options.seconds},
                {"low_rate", options.low_rate},
                {"cpu_rate", options.cpu_rate},
                {"outstanding", options.outstanding}}},
              {"load_average_start", load_average()},
              {"cpus_online", sysconf(_SC_NPROCESSORS_ONLN)}};
  int code = 0;
  for (const std::string& layout : options.layouts) {
    if (options.only_generators) break;
    code = run_layout(options, layout, out);
    if (code != 0) break;
  }
  if (code == 0 && options.dnsperf) code = compare_generators(options, out);
  if (code == 1) return code;
  if (code == 130) {
    std::printf("interrupted: namespaces, processes and pins removed\n");
    return code;
  }
  std::ofstream(options.json_path) << out.dump(1) << "\n";
  std::printf("wrote %s\n", options.json_path.c_str());
  return code;
}

}  // namespace
}  // namespace dnsproxy::bench

int main(int argc, char** argv) {
  dnsproxy::bench::Options options;
  CLI::App app{
      "dnsproxy end-to-end benchmark: kernel forwarding, XDP forwarder, dnsproxyd, dnsdist side "
      "by side (needs root: namespaces, XDP, AF_XDP)"};
  app.add_option("--runs", options.runs, "alternating runs per path (median and range reported)")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000));
  app.add_option("--seconds", options.seconds,
                 "length of a saturation run; each fixed-rate run takes half")
      ->capture_default_str()
      ->check(CLI::Range(0.5, 3600.0));
  app.add_option("--low-rate", options.low_rate, "q/s of the latency runs")->capture_default_str();
  app.add_option("--cpu-rate", options.cpu_rate, "q/s of the CPU-per-query runs")
      ->capture_default_str();
  app.add_option("--curve-rates", options.curve_rates, "offered q/s of the latency-vs-load sweep")
      ->capture_default_str();
  app.add_option("--outstanding", options.outstanding, "queries in flight at saturation")
      ->capture_default_str();
  app.add_option("--new-name-rate", options.new_name_rate,
                 "q/s of the policy path's release-latency runs (new names, then plumbed)")
      ->capture_default_str()
      ->check(CLI::Range(10.0, 100000.0));
  app.add_option("--layouts", options.layouts, "default, pinned, shared (see the output)")
      ->capture_default_str()
      ->check(CLI::IsMember({"default", "pinned", "shared"}));
  app.add_option("--paths", options.paths, "kernel, xdp, forward, policy, dnsdist (kernel first)")
      ->capture_default_str()
      ->check(CLI::IsMember({"kernel", "xdp", "forward", "policy", "policy-agent", "dnsdist"}));
  app.add_option("--queries", options.query_file,
                 "query file in dnsperf format (default: A queries for the zone's 1000 names)")
      ->check(CLI::ExistingFile);
  app.add_option("--json", options.json_path, "where the results go")->capture_default_str();
  app.add_flag("!--no-dnsperf", options.dnsperf, "skip dnsperf vs dnsproxy-loadgen");
  app.add_flag("--only-generators", options.only_generators,
               "only dnsperf vs dnsproxy-loadgen (no paths)")
      ->excludes("--no-dnsperf");
  CLI11_PARSE(app, argc, argv);
  if (options.paths.empty() || options.paths.front() != "kernel") {
    std::fprintf(stderr, "--paths: kernel must come first (every figure is relative to it)\n");
    return 2;
  }
  if (const std::string missing = dnsproxy::test::missing_capabilities(); !missing.empty()) {
    std::fprintf(stderr, "needs %s (run as root)\n", missing.c_str());
    return 77;
  }
  struct sigaction action {};
  action.sa_handler = dnsproxy::bench::on_signal;
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
  return dnsproxy::bench::bench(options);
}
