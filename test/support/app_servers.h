// The servers clients connect to after resolving (DESIGN.md: 203.0.113.0/24 and
// 2001:db8:e::/64), for the resolve-then-connect tests, and a client that resolves a name and
// connects to its address at once.
//
// AppServers lives in the topology's upstream namespace: the node routes both ranges to the
// upstream host, which owns every address in them (AnyIP: a `local` route on lo), and one
// dual-stack TCP listener accepts on all of them. An accepted connection is closed at once; the
// client only needs the handshake to complete, which it cannot while L3 policy drops its SYN.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common/result.h"
#include "test/support/topology.h"

namespace dnsproxy::test {

class AppServers {
 public:
  static constexpr uint16_t kPort = 80;

  static Result<std::unique_ptr<AppServers>> start(const Topology& topology);
  ~AppServers();  // stops the listener, removes the routes it added
  AppServers(const AppServers&) = delete;
  AppServers& operator=(const AppServers&) = delete;

  [[nodiscard]] uint64_t accepted() const { return accepted_.load(); }
  // Connections complete in the kernel before the listener accepts them: waits (up to
  // `timeout`) until at least `count` were accepted, and returns the number accepted.
  uint64_t wait_accepted(uint64_t count, std::chrono::milliseconds timeout) const;

 private:
  explicit AppServers(const Topology& topology) : topology_(topology) {}
  void serve(int listen_fd);

  const Topology& topology_;
  int stop_fd_ = -1;  // eventfd: written to stop the accept loop
  std::atomic<uint64_t> accepted_{0};
  std::thread thread_;
};

// What happened to each resolve-then-connect trial, counted.
struct ResolveConnectReport {
  uint64_t trials = 0;
  uint64_t connected = 0;         // answer with an address, then the TCP handshake completed
  uint64_t dns_timeouts = 0;      // no answer within the DNS timeout
  uint64_t dns_errors = 0;        // an answer with a non-zero rcode, or none of the asked type
  uint64_t connect_failures = 0;  // the handshake did not complete within the connect timeout
  std::vector<std::string> failed_names;      // every name whose trial did not connect
  std::vector<double> resolve_to_connect_ms;  // per connected trial: query sent -> connected
  [[nodiscard]] uint64_t failures() const { return trials - connected; }
};

struct ResolveConnectOptions {
  std::string server;   // the DNS server the client asks (its queries cross the node)
  uint16_t qtype = 28;  // AAAA: 2001:db8:e::/64 has room for 10,000 distinct addresses
  std::chrono::milliseconds dns_timeout{1000};
  // Under the kernel's 1 s SYN retransmission: a dropped first SYN makes the trial fail
  // instead of silently succeeding on the retry.
  std::chrono::milliseconds connect_timeout{800};
};

// From inside `client`: for each name, one UDP query, then a TCP connect to the first address
// of the asked type in the answer, to port AppServers::kPort, sent as soon as the answer came.
Result<ResolveConnectReport> resolve_then_connect(const NetNs& client,
                                                  const std::vector<std::string>& names,
                                                  const ResolveConnectOptions& options);

}  // namespace dnsproxy::test
