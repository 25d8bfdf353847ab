// dnsproxy-e2e: the demo, on the test topology (client -- node -- upstream knotd in network
// namespaces, test/support/topology.h). The end-to-end benchmark is dnsproxy-e2e-bench
// (bench/e2e_bench.cpp).
//
//   dnsproxy-e2e demo                             one client resolving through dnsproxyd

#include <CLI/CLI.hpp>
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

void show(const std::string& title, const std::string& text) {
  std::printf("\n== %s\n%s", title.c_str(), text.c_str());
  if (!text.empty() && text.back() != '\n') std::printf("\n");
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
