// dnsproxy-e2e: the end-to-end benchmark and the demo, on the test topology (client -- node --
// upstream knotd in network namespaces, test/support/topology.h).
//
//   dnsproxy-e2e bench [--seconds N] [--runs R]   dnsperf at saturation, kernel vs dnsproxyd
//   dnsproxy-e2e demo                             one client resolving through dnsproxyd
//
// The benchmark measures, in the same run, completed queries per second from the client to knotd
// with the node forwarding in the kernel (direct) and with dnsproxyd --forward-all forwarding
// (proxied), alternating which goes first, and prints the ratio per run and the medians.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "test/support/bpffs.h"
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

const std::vector<std::string> kDaemonArgs = {"-i", Topology::kNodeClientSide, "-i",
                                              Topology::kNodeUpstreamSide, "--forward-all"};

struct Environment {
  test::BpfFsMount bpffs;  // dnsproxyd pins here, not in the host's /sys/fs/bpf
  std::unique_ptr<Topology> topology;
  std::unique_ptr<Knotd> knotd;

  std::string pin_dir() const { return bpffs.path() + "/dnsproxy"; }
};

Result<Environment> build_environment() {
  auto bpffs = test::BpfFsMount::create();
  if (!bpffs) return tl::unexpected(bpffs.error());
  auto topology = Topology::create();
  if (!topology) return tl::unexpected(topology.error());
  auto knotd = Knotd::start((*topology)->upstream(), 1000);
  if (!knotd) return tl::unexpected(knotd.error());
  return Environment{std::move(*bpffs), std::move(*topology), std::move(*knotd)};
}

// dnsperf's "Queries per second:" figure (completed queries / elapsed).
Result<double> dnsperf_qps(const Environment& env, const std::string& queries, int seconds) {
  auto out =
      env.topology->client().run({"dnsperf", "-s", Topology::kUpstreamV4, "-d", queries, "-l",
                                  std::to_string(seconds), "-c", "4", "-q", "256", "-t", "2"});
  if (!out) return tl::unexpected(out.error());
  const size_t at = out->output.find("Queries per second:");
  if (out->exit_code != 0 || at == std::string::npos) return fail("dnsperf failed: ", out->output);
  return std::stod(out->output.substr(at + 19));
}

// The daemon's final per-worker counters (from its stats file: rx, tx, drops, leaked frames), as
// evidence that the proxied figure did not come from dropping work.
void print_worker_counters(const Dnsproxyd& daemon) {
  const auto stats = daemon.stats();
  if (!stats) {
    std::printf("  dnsproxyd: %s\n", stats.error().message.c_str());
    return;
  }
  for (const nlohmann::json& worker : stats->at("workers")) {
    std::string line;
    for (const auto& [name, value] : worker.at("counters").items())
      if (value.get<uint64_t>() != 0 || name == "leaked_frames")
        line += " " + name + "=" + value.dump();
    for (const auto& [name, value] : worker.at("drops").items())
      if (value.get<uint64_t>() != 0) line += " drop_" + name + "=" + value.dump();
    std::printf("  dnsproxyd worker %u:%s\n", worker.at("worker").get<unsigned>(), line.c_str());
  }
  std::printf("  dnsproxyd frame check: %s\n", stats->at("frame_check").dump().c_str());
}

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const size_t n = values.size();
  return n % 2 == 1 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

int bench(int seconds, int runs, const std::vector<std::string>& extra_daemon_args) {
  std::vector<std::string> daemon_args = kDaemonArgs;
  daemon_args.insert(daemon_args.end(), extra_daemon_args.begin(), extra_daemon_args.end());
  auto env = build_environment();
  if (!env) {
    std::fprintf(stderr, "cannot build the topology: %s\n", env.error().message.c_str());
    return 1;
  }
  auto queries = env->knotd->write_query_file(1000);
  if (!queries) return 1;
  const std::string daemon_path = sibling_binary("dnsproxyd");
  std::vector<double> direct, proxied, ratios;
  std::string args_text;
  for (const std::string& arg : daemon_args) args_text += " " + arg;
  std::printf(
      "dnsperf -c 4 -q 256 -l %d at saturation, client -> node -> knotd; %ld CPUs online\n"
      "dnsproxyd%s\n",
      seconds, sysconf(_SC_NPROCESSORS_ONLN), args_text.c_str());
  for (int run = 0; run < runs; ++run) {
    double qps_direct = 0, qps_proxied = 0;
    for (int leg = 0; leg < 2; ++leg) {
      const bool through_proxy = (leg == 0) == (run % 2 == 1);  // alternate which path goes first
      if (!through_proxy) {
        auto qps = dnsperf_qps(*env, *queries, seconds);
        if (!qps) return std::fprintf(stderr, "%s\n", qps.error().message.c_str()), 1;
        qps_direct = *qps;
        continue;
      }
      auto daemon =
          Dnsproxyd::start(daemon_path, env->topology->node(), daemon_args, env->pin_dir());
      if (!daemon) return std::fprintf(stderr, "%s\n", daemon.error().message.c_str()), 1;
      auto qps = dnsperf_qps(*env, *queries, seconds);
      if (!qps) return std::fprintf(stderr, "%s\n", qps.error().message.c_str()), 1;
      qps_proxied = *qps;
      if (const int code = (*daemon)->stop(); code != 0)
        return std::fprintf(stderr, "dnsproxyd exited with %d:\n%s\n", code,
                            (*daemon)->log().c_str()),
               1;
      print_worker_counters(**daemon);
    }
    direct.push_back(qps_direct);
    proxied.push_back(qps_proxied);
    ratios.push_back(qps_proxied / qps_direct);
    std::printf("run %d: kernel forwarding %.0f q/s, dnsproxyd %.0f q/s, ratio %.3f\n", run + 1,
                qps_direct, qps_proxied, ratios.back());
  }
  std::printf(
      "median of %d runs: kernel forwarding %.0f q/s, dnsproxyd %.0f q/s, ratio %.3f (target >= "
      "0.95)\n",
      runs, median(direct), median(proxied), median(ratios));
  return 0;
}

void show(const std::string& title, const std::string& text) {
  std::printf("\n== %s\n%s", title.c_str(), text.c_str());
  if (!text.empty() && text.back() != '\n') std::printf("\n");
}

int demo() {
  std::printf(
      "dnsproxy demo: forward-all mode (the policy comes in a later issue)\n\n"
      "  client 192.0.2.10 / 2001:db8:c::10\n"
      "    | eth0 -- cli0\n"
      "  node: dnsproxyd on cli0 and up0, dns_steer redirects DNS to AF_XDP workers\n"
      "    | up0 -- eth0\n"
      "  upstream: knotd 198.51.100.53 / 2001:db8:5::53, zone example.test\n");
  auto env = build_environment();
  if (!env)
    return std::fprintf(stderr, "cannot build the topology: %s\n", env.error().message.c_str()), 1;
  auto daemon = Dnsproxyd::start(sibling_binary("dnsproxyd"), env->topology->node(), kDaemonArgs,
                                 env->pin_dir());
  if (!daemon) return std::fprintf(stderr, "%s\n", daemon.error().message.c_str()), 1;
  show("dnsproxyd started", (*daemon)->log());
  for (const auto& [server, type] : std::vector<std::pair<std::string, std::string>>{
           {Topology::kUpstreamV4, "A"}, {Topology::kUpstreamV6, "AAAA"}}) {
    const std::vector<std::string> argv = {"kdig",   "@" + server,       "+noall", "+answer",
                                           "+stats", "www.example.test", type};
    auto out = env->topology->client().run(argv);
    show("client$ kdig @" + server + " www.example.test " + type,
         out ? out->output : out.error().message);
  }
  const size_t before = (*daemon)->log().size();
  const int code = (*daemon)->stop();
  show("dnsproxyd stopped (SIGTERM), exit code " + std::to_string(code),
       (*daemon)->log().substr(before));
  std::printf("\n== counters (the final stats snapshot)\n");
  print_worker_counters(**daemon);
  std::printf("\ncleaning up: namespaces, knotd and pins removed\n");
  return code;
}

}  // namespace
}  // namespace dnsproxy::bench

int main(int argc, char** argv) {
  CLI::App app{"dnsproxy end-to-end benchmark and demo (needs root: namespaces, XDP, AF_XDP)"};
  app.require_subcommand(1);
  int seconds = 10;
  int runs = 3;
  std::vector<std::string> daemon_args;
  CLI::App* bench =
      app.add_subcommand("bench", "dnsperf at saturation: kernel forwarding vs dnsproxyd");
  bench->add_option("--seconds", seconds, "length of each dnsperf run")->capture_default_str();
  bench->add_option("--runs", runs, "number of (kernel, dnsproxyd) pairs; the medians are reported")
      ->capture_default_str();
  bench
      ->add_option("--daemon-arg", daemon_args,
                   "extra dnsproxyd argument (repeat), e.g. --daemon-arg=--busy-poll")
      ->allow_extra_args(false);
  app.add_subcommand("demo", "a client resolving through dnsproxyd, printed step by step");
  CLI11_PARSE(app, argc, argv);
  if (const std::string missing = dnsproxy::test::missing_capabilities(); !missing.empty()) {
    std::fprintf(stderr, "needs %s (run as root)\n", missing.c_str());
    return 77;
  }
  return bench->parsed() ? dnsproxy::bench::bench(seconds, runs, daemon_args)
                         : dnsproxy::bench::demo();
}
