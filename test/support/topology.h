// The three-namespace test topology of DESIGN.md, and a knotd upstream serving a generated zone.
//
//   client                      node (router; dnsproxyd attaches here)          upstream
//   eth0 192.0.2.10/24   ---   cli0 192.0.2.1/24      up0 198.51.100.1/24  ---  eth0
//   198.51.100.53/24
//        2001:db8:c::10/64          2001:db8:c::1/64      2001:db8:5::1/64 2001:db8:5::53/64
//
// The node forwards in the kernel; the client and the upstream route through it. Every veth end
// has a fixed MAC and every host has permanent neighbour entries for its peers, so the FIB lookup
// in dns_steer resolves the next hop from the first packet on (no ARP/ND race in a test).
// Reused by the e2e tests, the end-to-end benchmark and the demo (bench/e2e_harness.cpp).
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/result.h"
#include "test/support/netns.h"

namespace dnsproxy::test {

struct TopologyOptions {
  unsigned queues = 1;  // RX/TX queues of the node's veth ends (and their peers)
};

class Topology {
 public:
  static constexpr const char* kClientV4 = "192.0.2.10";
  static constexpr const char* kClientV6 = "2001:db8:c::10";
  static constexpr const char* kUpstreamV4 = "198.51.100.53";
  static constexpr const char* kUpstreamV6 = "2001:db8:5::53";
  static constexpr const char* kNodeClientSide = "cli0";
  static constexpr const char* kNodeUpstreamSide = "up0";

  static Result<std::unique_ptr<Topology>> create(const TopologyOptions& options = {});

  const NetNs& client() const { return client_; }
  const NetNs& node() const { return node_; }
  const NetNs& upstream() const { return upstream_; }

  // One more address pair on the client's (or the upstream's) eth0, e.g. a second endpoint
  // ("192.0.2.11", "2001:db8:c::11") or a second server, with the node's permanent neighbour
  // entries for both, so dns_steer's FIB lookup resolves them from the first packet as it does
  // for the fixed addresses.
  Result<void> add_client_address(const std::string& v4, const std::string& v6) const;
  Result<void> add_upstream_address(const std::string& v4, const std::string& v6) const;

  // Makes the node's RX queue for a flow a function of the sender's CPU: a socket in the client
  // or upstream namespace that first sends from CPU q uses TX queue q of its eth0 (XPS), and
  // veth delivers into the peer's RX queue of the same number. Without it the kernel hashes
  // each socket to a queue, so a test that needs traffic on every queue would depend on luck.
  // Pin the sender (`taskset -c q`) to choose the queue. Needs queues <= CPUs.
  Result<void> steer_tx_queues_by_cpu() const;

 private:
  Topology(NetNs client, NetNs node, NetNs upstream)
      : client_(std::move(client)), node_(std::move(node)), upstream_(std::move(upstream)) {}

  NetNs client_, node_, upstream_;
  unsigned queues_ = 1;
  std::vector<VethPair> links_;
};

// knotd answering authoritatively for `example.test` on the upstream addresses, port 53. The
// zone has `names` A + AAAA records host0..host<names-1>.example.test (hostN: 203.0.113.<N+1>
// and 2001:db8:e::<N+1 in hex>), plus www (203.0.113.80,
// 2001:db8:e::80), TTL 300, and for the policy tests:
//   alias1 -> host11; alias2 -> alias2-b -> host12; alias3 -> alias3-b -> alias3-c -> host13;
//   alias4 -> host14; alias5 -> alias5-b -> host15; wwwalias -> www   (CNAME chains)
//   short (A 203.0.113.251, AAAA 2001:db8:e::fb, TTL 2); shortalias -> short (TTL 300)
// Each chain ends at its own host, so plumbing one test case never releases another at once. Files
// live in a fresh temporary directory, removed on destruction, after knotd is stopped.
class Knotd {
 public:
  static constexpr const char* kZone = "example.test";

  // `xdp_interface`: also serve UDP on that interface through knotd's own XDP program and AF_XDP
  // sockets (knot's `xdp: listen`), the fastest server there is for a load generator to measure
  // itself against; the interface must have no other XDP program.
  static Result<std::unique_ptr<Knotd>> start(const NetNs& upstream, unsigned names = 1000,
                                              const std::string& xdp_interface = "");
  ~Knotd();
  Knotd(const Knotd&) = delete;
  Knotd& operator=(const Knotd&) = delete;

  const std::string& directory() const { return directory_; }
  // A dnsperf input file with one "hostN.example.test A" (or AAAA) line per name.
  Result<std::string> write_query_file(unsigned names) const;

 private:
  Knotd(std::string directory, BackgroundProcess process)
      : directory_(std::move(directory)), process_(std::move(process)) {}

  std::string directory_;
  BackgroundProcess process_;
};

// dnsproxyd run as a subprocess in the node namespace, its log and its stats file (--stats-file,
// passed by start()) in temporary files. start() returns once the daemon wrote its first stats
// snapshot, i.e. it is serving (or fails with the log if it exited or did not get there within
// the timeout). stop() sends SIGTERM and returns the exit code; the stats file then holds the
// final snapshot. Counters are read from the stats file, never from the log.
class Dnsproxyd {
 public:
  // `binary`: path of dnsproxyd. `args` come after the binary, then `--pin-dir pin_dir` (a
  // directory on a bpf filesystem: a test's own BpfFsMount, see bpffs.h) and `--stats-file`.
  static Result<std::unique_ptr<Dnsproxyd>> start(const std::string& binary, const NetNs& node,
                                                  std::vector<std::string> args,
                                                  const std::string& pin_dir,
                                                  int timeout_ms = 15000);
  ~Dnsproxyd();
  Dnsproxyd(const Dnsproxyd&) = delete;
  Dnsproxyd& operator=(const Dnsproxyd&) = delete;

  int stop();
  void kill_hard();  // SIGKILL, as a crash would: leaves the program attached and pinned
  // SIGUSR1, then waits up to timeout_ms for the snapshot it triggers ("reason": "signal") or a
  // later one; false if none came.
  bool report_counters(int timeout_ms = 5000);
  std::string log() const;
  const std::string& pin_dir() const { return pin_dir_; }
  pid_t pid() const { return process_.pid(); }
  // The last stats snapshot written (README, "Stats file"); after stop(), the final one.
  Result<nlohmann::json> stats() const;
  // The workers' tx_packets counters in the last snapshot, by worker index, and their sum (0 when
  // there is no snapshot: tests compare against a positive count, so that fails loudly).
  std::map<unsigned, uint64_t> transmitted_by_worker() const;
  uint64_t transmitted() const;

 private:
  Dnsproxyd(std::string log_path, std::string stats_path, std::string pin_dir,
            BackgroundProcess process)
      : log_path_(std::move(log_path)),
        stats_path_(std::move(stats_path)),
        pin_dir_(std::move(pin_dir)),
        process_(std::move(process)) {}

  std::string log_path_;
  std::string stats_path_;
  std::string pin_dir_;
  BackgroundProcess process_;
  bool stopped_ = false;
};

// Polls `kdig` from `ns` until `server` answers for the zone or `timeout_ms` passes.
Result<void> wait_until_answering(const NetNs& ns, const std::string& server, int timeout_ms);

}  // namespace dnsproxy::test
