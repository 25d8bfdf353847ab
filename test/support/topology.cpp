#include "test/support/topology.h"

#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <atomic>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

namespace dnsproxy::test {
namespace {

constexpr const char* kClientMac = "02:00:00:00:0c:10";
constexpr const char* kNodeClientMac = "02:00:00:00:0c:01";
constexpr const char* kNodeUpstreamMac = "02:00:00:00:05:01";
constexpr const char* kUpstreamMac = "02:00:00:00:05:53";

// `ip neigh replace ADDR lladdr MAC nud permanent dev IF` inside ns.
Result<void> add_neighbour(const NetNs& ns, const std::string& ifname, const std::string& address,
                           const std::string& mac) {
  auto done =
      ns.ip({"neigh", "replace", address, "lladdr", mac, "nud", "permanent", "dev", ifname});
  if (!done) return tl::unexpected(done.error());
  return {};
}

// Configures one host side: address, default routes via `gateway4/6`, neighbour entry for it.
Result<void> configure_host(const NetNs& ns, const std::string& v4, const std::string& v6,
                            const std::string& gw4, const std::string& gw6,
                            const std::string& gateway_mac) {
  for (const std::string& cidr : {v4 + "/24", v6 + "/64"})
    if (auto r = ns.add_address("eth0", cidr); !r) return r;
  if (auto r = add_neighbour(ns, "eth0", gw4, gateway_mac); !r) return r;
  if (auto r = add_neighbour(ns, "eth0", gw6, gateway_mac); !r) return r;
  if (auto r = ns.ip({"route", "add", "default", "via", gw4}); !r) return tl::unexpected(r.error());
  if (auto r = ns.ip({"-6", "route", "add", "default", "via", gw6}); !r)
    return tl::unexpected(r.error());
  return {};
}

}  // namespace

Result<std::unique_ptr<Topology>> Topology::create(const TopologyOptions& options) {
  auto client = NetNs::create("client");
  if (!client) return tl::unexpected(client.error());
  auto node = NetNs::create("node");
  if (!node) return tl::unexpected(node.error());
  auto upstream = NetNs::create("upstream");
  if (!upstream) return tl::unexpected(upstream.error());
  std::unique_ptr<Topology> topology(
      new Topology(std::move(*client), std::move(*node), std::move(*upstream)));
  topology->queues_ = options.queues;
  const NetNs& c = topology->client_;
  const NetNs& n = topology->node_;
  const NetNs& u = topology->upstream_;

  auto client_link = VethPair::create({.name_a = "eth0",
                                       .ns_a = &c,
                                       .name_b = kNodeClientSide,
                                       .ns_b = &n,
                                       .queues = options.queues,
                                       .mac_a = kClientMac,
                                       .mac_b = kNodeClientMac});
  if (!client_link) return tl::unexpected(client_link.error());
  topology->links_.push_back(std::move(*client_link));
  auto upstream_link = VethPair::create({.name_a = "eth0",
                                         .ns_a = &u,
                                         .name_b = kNodeUpstreamSide,
                                         .ns_b = &n,
                                         .queues = options.queues,
                                         .mac_a = kUpstreamMac,
                                         .mac_b = kNodeUpstreamMac});
  if (!upstream_link) return tl::unexpected(upstream_link.error());
  topology->links_.push_back(std::move(*upstream_link));

  for (const auto& [ifname, cidr] :
       std::vector<std::pair<std::string, std::string>>{{kNodeClientSide, "192.0.2.1/24"},
                                                        {kNodeClientSide, "2001:db8:c::1/64"},
                                                        {kNodeUpstreamSide, "198.51.100.1/24"},
                                                        {kNodeUpstreamSide, "2001:db8:5::1/64"}})
    if (auto r = n.add_address(ifname, cidr); !r) return tl::unexpected(r.error());
  if (auto r = n.enable_forwarding(); !r) return tl::unexpected(r.error());
  for (const auto& [ifname, address, mac] :
       std::vector<std::tuple<std::string, std::string, std::string>>{
           {kNodeClientSide, kClientV4, kClientMac},
           {kNodeClientSide, kClientV6, kClientMac},
           {kNodeUpstreamSide, kUpstreamV4, kUpstreamMac},
           {kNodeUpstreamSide, kUpstreamV6, kUpstreamMac}})
    if (auto r = add_neighbour(n, ifname, address, mac); !r) return tl::unexpected(r.error());

  if (auto r =
          configure_host(c, kClientV4, kClientV6, "192.0.2.1", "2001:db8:c::1", kNodeClientMac);
      !r)
    return tl::unexpected(r.error());
  if (auto r = configure_host(u, kUpstreamV4, kUpstreamV6, "198.51.100.1", "2001:db8:5::1",
                              kNodeUpstreamMac);
      !r)
    return tl::unexpected(r.error());
  return topology;
}

namespace {

Result<void> write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
  if (!out.flush()) return fail("cannot write ", path);
  return {};
}

std::string zone_text(unsigned names) {
  std::string zone =
      "$ORIGIN example.test.\n$TTL 300\n"
      "@ SOA ns.example.test. hostmaster.example.test. 1 3600 600 86400 300\n"
      "@ NS ns\nns A 198.51.100.53\nns AAAA 2001:db8:5::53\n"
      "www A 203.0.113.80\nwww AAAA 2001:db8:e::80\n"
      // CNAME chains of 1 to 3 links, each ending at its own host (topology.h).
      "alias1 CNAME host11\n"
      "alias2 CNAME alias2-b\nalias2-b CNAME host12\n"
      "alias3 CNAME alias3-b\nalias3-b CNAME alias3-c\nalias3-c CNAME host13\n"
      "alias4 CNAME host14\n"
      "alias5 CNAME alias5-b\nalias5-b CNAME host15\n"
      "wwwalias CNAME www\n"
      // Short TTLs: the address's, and an alias whose chain is as short as its target's.
      "short 2 A 203.0.113.251\nshort 2 AAAA 2001:db8:e::fb\n"
      "shortalias CNAME short\n";
  for (unsigned i = 0; i < names; ++i) {
    const std::string host = "host" + std::to_string(i);
    zone += host + " A 203.0.113." + std::to_string(i % 254 + 1) + "\n";
    // Hex, so every name up to 65,535 has its own valid address.
    std::ostringstream v6;
    v6 << "2001:db8:e::" << std::hex << (i % 65535 + 1);
    zone += host + " AAAA " + v6.str() + "\n";
  }
  return zone;
}

}  // namespace

Result<std::unique_ptr<Knotd>> Knotd::start(const NetNs& upstream, unsigned names,
                                            const std::string& xdp_interface) {
  char pattern[] = "/tmp/dnsproxy-knotd-XXXXXX";
  if (mkdtemp(pattern) == nullptr) return fail("cannot create a temporary directory for knotd");
  const std::string dir = pattern;
  const std::string conf =
      "server:\n"
      "  rundir: \"" +
      dir +
      "\"\n"
      "  listen: [ " +
      std::string(Topology::kUpstreamV4) + "@53, " + Topology::kUpstreamV6 +
      "@53 ]\n"
      "  udp-workers: 2\n  tcp-workers: 1\n  background-workers: 1\n" +
      (xdp_interface.empty() ? "" : "xdp:\n  listen: " + xdp_interface + "@53\n  udp: on\n") +
      "database:\n  storage: \"" + dir +
      "/db\"\n"
      "template:\n  - id: default\n    storage: \"" +
      dir +
      "\"\n    semantic-checks: off\n"
      "zone:\n  - domain: example.test\n    file: \"example.test.zone\"\n"
      "log:\n  - target: stderr\n    any: warning\n";
  if (auto r = write_file(dir + "/knot.conf", conf); !r) return tl::unexpected(r.error());
  if (auto r = write_file(dir + "/example.test.zone", zone_text(names)); !r)
    return tl::unexpected(r.error());

  auto process =
      BackgroundProcess::start({"knotd", "-c", dir + "/knot.conf"}, &upstream, dir + "/knotd.log");
  if (!process) {
    std::filesystem::remove_all(dir);
    return tl::unexpected(process.error());
  }
  std::unique_ptr<Knotd> knotd(new Knotd(dir, std::move(*process)));
  if (auto ready = wait_until_answering(upstream, Topology::kUpstreamV4, 10000); !ready) {
    std::ifstream log(dir + "/knotd.log");
    std::string text((std::istreambuf_iterator<char>(log)), std::istreambuf_iterator<char>());
    return fail(ready.error().message, "; knotd log: ", text);
  }
  return knotd;
}

Knotd::~Knotd() {
  process_.stop();
  std::error_code ignored;
  std::filesystem::remove_all(directory_, ignored);
}

Result<std::string> Knotd::write_query_file(unsigned names) const {
  std::string text;
  for (unsigned i = 0; i < names; ++i)
    text += "host" + std::to_string(i) + ".example.test " + (i % 2 == 0 ? "A" : "AAAA") + "\n";
  const std::string path = directory_ + "/queries.txt";
  if (auto r = write_file(path, text); !r) return tl::unexpected(r.error());
  return path;
}

namespace {

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

}  // namespace

Result<std::unique_ptr<Dnsproxyd>> Dnsproxyd::start(const std::string& binary, const NetNs& node,
                                                    std::vector<std::string> args,
                                                    const std::string& pin_dir, int timeout_ms) {
  static std::atomic<int> counter{0};
  const std::string base =
      "/tmp/dnsproxyd-test-" + std::to_string(getpid()) + "-" + std::to_string(counter++);
  const std::string log_path = base + ".log";
  const std::string stats_path = base + ".stats.json";
  std::filesystem::remove(stats_path);
  args.insert(args.begin(), binary);
  for (const std::string& arg :
       {std::string("--pin-dir"), pin_dir, std::string("--stats-file"), stats_path})
    args.push_back(arg);
  auto process = BackgroundProcess::start(args, &node, log_path);
  if (!process) return tl::unexpected(process.error());
  std::unique_ptr<Dnsproxyd> daemon(
      new Dnsproxyd(log_path, stats_path, pin_dir, std::move(*process)));
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (std::chrono::steady_clock::now() < deadline) {
    if (daemon->stats()) return daemon;
    if (!daemon->process_.running())
      return fail("dnsproxyd exited during startup: ", daemon->log());
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return fail("dnsproxyd wrote no stats file after ", std::to_string(timeout_ms),
              " ms: ", daemon->log());
}

Dnsproxyd::~Dnsproxyd() {
  if (!stopped_) process_.stop();
  unlink(log_path_.c_str());
  unlink(stats_path_.c_str());
}

int Dnsproxyd::stop() {
  stopped_ = true;
  return process_.stop(std::chrono::milliseconds(10000));
}

void Dnsproxyd::kill_hard() {
  ::kill(process_.pid(), SIGKILL);
  stopped_ = true;
  process_.stop();  // reaps it
}

bool Dnsproxyd::report_counters(int timeout_ms) {
  const auto before = stats();
  const uint64_t sequence = before ? before->value("sequence", uint64_t{0}) : 0;
  ::kill(process_.pid(), SIGUSR1);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (std::chrono::steady_clock::now() < deadline) {
    // Interval snapshots may come in between: wait for the one the signal asked for, or for a
    // snapshot after it (an interval snapshot can replace the signal's before this poll reads
    // it). Two snapshots after `before` mean the second was taken after the signal, unless the
    // daemon took more than an interval to handle it.
    const auto now = stats();
    const uint64_t now_sequence = now ? now->value("sequence", uint64_t{0}) : 0;
    if (now && ((now_sequence > sequence && now->value("reason", std::string()) == "signal") ||
                now_sequence >= sequence + 2))
      return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

std::string Dnsproxyd::log() const {
  return read_file(log_path_);
}

Result<nlohmann::json> Dnsproxyd::stats() const {
  std::ifstream in(stats_path_);
  if (!in) return fail("no stats file ", stats_path_);
  nlohmann::json parsed = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) return fail("stats file ", stats_path_, " is not JSON");
  return parsed;
}

std::map<unsigned, uint64_t> Dnsproxyd::transmitted_by_worker() const {
  std::map<unsigned, uint64_t> per_worker;
  const auto snapshot = stats();
  if (!snapshot) return per_worker;
  for (const nlohmann::json& worker : snapshot->at("workers"))
    per_worker[worker.at("worker").get<unsigned>()] =
        worker.at("counters").at("tx_packets").get<uint64_t>();
  return per_worker;
}

uint64_t Dnsproxyd::transmitted() const {
  const std::map<unsigned, uint64_t> per_worker = transmitted_by_worker();
  uint64_t total = 0;
  for (const auto& [worker, tx] : per_worker) total += tx;
  return total;
}

Result<void> wait_until_answering(const NetNs& ns, const std::string& server, int timeout_ms) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  std::string last;
  while (std::chrono::steady_clock::now() < deadline) {
    auto out = run_command(
        {"kdig", "@" + server, "+time=1", "+retry=0", "+short", "www.example.test", "A"}, &ns);
    if (out && out->exit_code == 0 && out->output.find("203.0.113.80") != std::string::npos)
      return {};
    if (out) last = out->output;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return fail(server, " did not answer for www.example.test within ", std::to_string(timeout_ms),
              " ms: ", last);
}

Result<void> Topology::add_client_address(const std::string& v4, const std::string& v6) const {
  if (auto r = client_.add_address("eth0", v4 + "/24"); !r) return r;
  if (auto r = client_.add_address("eth0", v6 + "/64"); !r) return r;
  for (const std::string& address : {v4, v6})
    if (auto r = add_neighbour(node_, kNodeClientSide, address, kClientMac); !r) return r;
  return {};
}

Result<void> Topology::add_upstream_address(const std::string& v4, const std::string& v6) const {
  if (auto r = upstream_.add_address("eth0", v4 + "/24"); !r) return r;
  if (auto r = upstream_.add_address("eth0", v6 + "/64"); !r) return r;
  for (const std::string& address : {v4, v6})
    if (auto r = add_neighbour(node_, kNodeUpstreamSide, address, kUpstreamMac); !r) return r;
  return {};
}

Result<void> Topology::steer_tx_queues_by_cpu() const {
  // xps_cpus lives in sysfs, which shows a namespace's interfaces only when mounted from inside
  // it: `ip netns exec` gives the shell a private mount of the namespace's /sys.
  std::string script;
  for (unsigned q = 0; q < queues_; ++q)
    script += "printf %x " + std::to_string(1u << q) + " > /sys/class/net/eth0/queues/tx-" +
              std::to_string(q) + "/xps_cpus && ";
  script += "true";
  for (const NetNs* ns : {&client_, &upstream_}) {
    auto done = run_command({"ip", "netns", "exec", ns->name(), "sh", "-c", script});
    if (!done) return tl::unexpected(done.error());
    if (done->exit_code != 0)
      return tl::unexpected(Error{"setting XPS in " + ns->name() + ": " + done->output});
  }
  return {};
}

}  // namespace dnsproxy::test
