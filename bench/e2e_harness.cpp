// dnsproxy-e2e: the demo, on the test topology (client -- node -- upstream knotd in network
// namespaces, test/support/topology.h). The end-to-end benchmark is dnsproxy-e2e-bench
// (bench/e2e_bench.cpp).
//
//   dnsproxy-e2e demo    policy mode: allowed, denied, unresolved-address traffic, counters

#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "test/support/app_servers.h"
#include "test/support/bpffs.h"
#include "test/support/policy_text.h"
#include "test/support/privileges.h"
#include "test/support/topology.h"

namespace dnsproxy::bench {
namespace {

using test::Dnsproxyd;
using test::Knotd;
using test::Topology;

std::string sibling_binary(const std::string& name) {
  return (std::filesystem::read_symlink("/proc/self/exe").parent_path() / name).string();
}

// The client 192.0.2.10 / 2001:db8:c::10 is endpoint 101: it may resolve host*.example.test
// through the cluster DNS server, and connect to what those names resolve to (toFQDNs).
const std::string kDemoPolicy = test::frontend_policy(R"([{matchPattern: "host*.example.test"}])",
                                                      R"([{matchPattern: "host*.example.test"}])");

struct Environment {
  test::BpfFsMount bpffs;  // dnsproxyd pins here, not in the host's /sys/fs/bpf
  std::unique_ptr<Topology> topology;
  std::unique_ptr<Knotd> knotd;
  std::unique_ptr<test::AppServers> servers;  // port 80 on 203.0.113.0/24, 2001:db8:e::/64
  std::string policy_path;                    // in knotd's directory, removed with it

  std::string pin_dir() const { return bpffs.path() + "/dnsproxy"; }
};

Result<Environment> build_environment() {
  auto bpffs = test::BpfFsMount::create();
  if (!bpffs) return tl::unexpected(bpffs.error());
  auto topology = Topology::create();
  if (!topology) return tl::unexpected(topology.error());
  auto knotd = Knotd::start((*topology)->upstream(), 1000);
  if (!knotd) return tl::unexpected(knotd.error());
  auto servers = test::AppServers::start(**topology);
  if (!servers) return tl::unexpected(servers.error());
  const std::string policy_path = (*knotd)->directory() + "/demo-policy.yaml";
  std::ofstream(policy_path) << kDemoPolicy;
  return Environment{std::move(*bpffs), std::move(*topology), std::move(*knotd),
                     std::move(*servers), policy_path};
}

void show(const std::string& title, const std::string& text) {
  std::printf("\n== %s\n%s", title.c_str(), text.c_str());
  if (!text.empty() && text.back() != '\n') std::printf("\n");
}

// The final stats snapshot's non-zero counters of one group ("counters", "drops"), summed over
// workers, then the control thread's and l3_guard's.
void print_counters(const Dnsproxyd& daemon) {
  const auto stats = daemon.stats();
  if (!stats) {
    std::printf("  dnsproxyd: %s\n", stats.error().message.c_str());
    return;
  }
  const auto nonzero = [](const nlohmann::json& group) {
    std::string line;
    for (const auto& [name, value] : group.items())
      if (value.is_number() && value.get<uint64_t>() != 0) line += " " + name + "=" + value.dump();
    return line.empty() ? std::string(" (none)") : line;
  };
  std::printf("  workers:  %s\n", nonzero(stats->at("totals").at("counters")).c_str());
  std::printf("  drops:    %s\n", nonzero(stats->at("totals").at("drops")).c_str());
  std::printf("  control:  %s\n", nonzero(stats->at("control")).c_str());
  std::printf("  l3_guard: %s\n", nonzero(stats->at("l3_guard")).c_str());
  std::printf("  frame check: %s\n", stats->at("frame_check").dump().c_str());
}

// kdig's status line and answer records.
std::string kdig(const Environment& env, const std::string& name, const std::string& type) {
  auto out = env.topology->client().run(
      {"kdig", "@" + std::string(Topology::kUpstreamV6), "+time=2", name, type});
  if (!out) return out.error().message;
  std::string shown;
  std::istringstream lines(out->output);
  for (std::string line; std::getline(lines, line);)
    if (line.find("status:") != std::string::npos || (!line.empty() && line[0] != ';'))
      shown += line + "\n";
  return shown;
}

int demo() {
  std::printf(
      "dnsproxy demo: policy mode with the embedded agent\n\n"
      "  client 192.0.2.10 / 2001:db8:c::10 (endpoint 101: may resolve host*.example.test and\n"
      "    | eth0 -- cli0               connect to what those names resolve to)\n"
      "  node: dnsproxyd --policy on cli0 and up0: dns_steer -> AF_XDP workers, l3_guard\n"
      "    | up0 -- eth0\n"
      "  upstream: knotd 198.51.100.53 / 2001:db8:5::53 (zone example.test), and servers on\n"
      "            port 80 at every address of 203.0.113.0/24 and 2001:db8:e::/64\n");
  auto env = build_environment();
  if (!env)
    return std::fprintf(stderr, "cannot build the topology: %s\n", env.error().message.c_str()), 1;
  const std::vector<std::string> args = {"-i",       Topology::kNodeClientSide,
                                         "-i",       Topology::kNodeUpstreamSide,
                                         "--policy", env->policy_path};
  auto daemon =
      Dnsproxyd::start(sibling_binary("dnsproxyd"), env->topology->node(), args, env->pin_dir());
  if (!daemon) return std::fprintf(stderr, "%s\n", daemon.error().message.c_str()), 1;
  show("dnsproxyd started", (*daemon)->log());

  show("1. an allowed name: client$ kdig host7.example.test AAAA",
       kdig(*env, "host7.example.test", "AAAA"));
  auto connected = test::resolve_then_connect(env->topology->client(), {"host8.example.test"},
                                              {.server = Topology::kUpstreamV6});
  show("   resolve host8.example.test and connect to its address at once (port 80)",
       !connected ? connected.error().message
       : connected->connected == 1
           ? "connected, " + std::to_string(connected->resolve_to_connect_ms[0]) +
                 " ms from query to established: the response waited until the agent had "
                 "plumbed the address"
           : "FAILED: the connection did not complete");
  show("2. a denied name: client$ kdig www.example.test AAAA (REFUSED, built by dnsproxyd)",
       kdig(*env, "www.example.test", "AAAA"));
  auto unresolved = env->topology->client().run(
      {"python3", "-c",
       "import socket; s = socket.socket(socket.AF_INET6); s.settimeout(0.5)\n"
       "print('connected' if s.connect_ex(('2001:db8:e::ffff', 80)) == 0 else "
       "'timed out: the SYN was dropped by l3_guard')"});
  show("3. an address never resolved: client$ connect [2001:db8:e::ffff]:80",
       unresolved ? unresolved->output : unresolved.error().message);

  const size_t before = (*daemon)->log().size();
  const int code = (*daemon)->stop();
  show("dnsproxyd stopped (SIGTERM), exit code " + std::to_string(code),
       (*daemon)->log().substr(before));
  std::printf("\n== 4. counters (the final stats snapshot, non-zero ones)\n");
  print_counters(**daemon);
  std::printf("\ncleaning up: namespaces, knotd, servers and pins removed\n");
  return code;
}

}  // namespace
}  // namespace dnsproxy::bench

int main(int argc, char** argv) {
  CLI::App app{"dnsproxy end-to-end demo (needs root: namespaces, XDP, AF_XDP)"};
  app.require_subcommand(1);
  app.add_subcommand("demo", "a client resolving through dnsproxyd, printed step by step");
  CLI11_PARSE(app, argc, argv);
  if (const std::string missing = dnsproxy::test::missing_capabilities(); !missing.empty()) {
    std::fprintf(stderr, "needs %s (run as root)\n", missing.c_str());
    return 77;
  }
  return dnsproxy::bench::demo();
}
