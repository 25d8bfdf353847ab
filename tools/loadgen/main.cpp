// dnsproxy-loadgen: a DNS load generator on AF_XDP, with dnsperf's flags where they exist
// (README.md, "Load generator"). Exit codes: 0 measured, 2 bad command line or query file,
// 3 the interface, route, XDP program or AF_XDP sockets could not be set up.
#include <signal.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <cstdio>
#include <map>

#include "tools/loadgen/generator.h"
#include "tools/loadgen/query_file.h"

namespace {
std::atomic<bool> g_stop{false};
void on_signal(int) {
  g_stop.store(true);
}
}  // namespace

int main(int argc, char** argv) {
  using namespace dnsproxy::loadgen;
  CLI::App app{"dnsproxy-loadgen: DNS queries from AF_XDP sockets, open or closed loop"};
  Config config;
  std::string server, query_file;
  bool json = false;
  app.add_option("-i,--interface", config.interface, "interface to send from (AF_XDP on it)")
      ->required();
  app.add_option("-s,--server", server, "server address, IPv4 or IPv6")->required();
  app.add_option("-p,--port", config.port, "server UDP port")->capture_default_str();
  app.add_option("-d,--datafile", query_file, "query file, dnsperf format: NAME [TYPE] per line")
      ->required();
  app.add_option("-l,--seconds", config.seconds, "how long to send")
      ->capture_default_str()
      ->check(CLI::Range(0.1, 86400.0));
  app.add_option("-Q,--rate", config.rate,
                 "queries per second, open loop (omitted: as fast as answers come back, keeping "
                 "-q in flight)")
      ->check(CLI::Range(1.0, 1e8));
  app.add_option("-q,--outstanding", config.max_outstanding,
                 "queries in flight at most, closed loop (without -Q)")
      ->capture_default_str()
      ->check(CLI::Range(1u, kPorts * kIdsPerPort));
  app.add_option("-t,--timeout", config.timeout_seconds, "seconds before a query counts as lost")
      ->capture_default_str()
      ->check(CLI::Range(0.001, 60.0));
  app.add_option("--queues", config.queues,
                 "AF_XDP sockets, one per receive queue from 0 (default: every RX queue)")
      ->check(CLI::Range(1u, 64u));
  app.add_flag("--generic-xdp", config.generic_xdp, "attach the receive program in SKB mode");
  app.add_flag("--threaded-napi", config.threaded_napi,
               "receive NAPI in a kernel thread while running (veth: else it runs on the "
               "server's CPU), restored at exit");
  app.add_option("--tx", config.tx,
                 "how queries leave: afxdp (the AF_XDP TX ring; default) or xdp (XDP frames built "
                 "by the kernel; the receiving end must take XDP frames)")
      ->transform(CLI::CheckedTransformer(
          std::map<std::string, TxPath>{{"afxdp", TxPath::kAfXdp}, {"xdp", TxPath::kXdp}},
          CLI::ignore_case));
  app.add_flag("--json", json, "print the result as one JSON object instead of text");
  CLI11_PARSE(app, argc, argv);

  auto address = parse_ip(server);
  if (!address) {
    std::fprintf(stderr, "dnsproxy-loadgen: -s: %s\n", address.error().message.c_str());
    return 2;
  }
  config.server = *address;
  auto queries = read_query_file(query_file);
  if (!queries) {
    std::fprintf(stderr, "dnsproxy-loadgen: %s\n", queries.error().message.c_str());
    return 2;
  }
  config.queries = std::move(*queries);

  struct sigaction action {};
  action.sa_handler = on_signal;
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
  auto report = run(config, g_stop);
  if (!report) {
    std::fprintf(stderr, "dnsproxy-loadgen: %s\n", report.error().message.c_str());
    return 3;
  }
  std::printf("%s\n", json ? json_report(*report).c_str() : text_report(*report).c_str());
  return 0;
}
