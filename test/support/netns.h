// Network namespace helpers for privileged and e2e tests (DESIGN.md, Test topology).
//
// Every test that sends packets builds its own topology out of these pieces, so nothing ever
// touches the root namespace or a real interface:
//
//   auto client = NetNs::create("client");            // "dnsproxy-client-<pid>-<n>"
//   auto node = NetNs::create("node");
//   auto link = VethPair::create({.name_a = "eth0", .ns_a = &*client,
//                                 .name_b = "cli0", .ns_b = &*node, .queues = 2});
//   client->ip({"addr", "add", "192.0.2.10/24", "dev", "eth0"});
//   client->set_up("eth0");
//   auto out = client->exec({"kdig", "@198.51.100.53", "example.org"});
//   { auto inside = ScopedNetns::enter(*node); /* sockets, BPF attach happen in `node` */ }
//
// Ownership and cleanup: NetNs deletes its namespace on destruction (which also destroys every
// interface inside it, veth ends included, and kills nothing: stop your processes first, e.g.
// with BackgroundProcess). VethPair deletes its link explicitly so a pair can be torn down while
// its namespaces live on; it holds its own reference to ns_a, so destruction order does not
// matter. Objects are move-only; a moved-from object owns nothing. Destructors
// never throw and are safe after any failure, including partial creation.
//
// Errors: every operation returns dnsproxy::Result with the failing command line and its output
// in the message, so `ASSERT_TRUE(r) << r.error().message;` says exactly what went wrong.
//
// Commands run through fork + setns + execvp (no shell, no `ip netns exec`): the child switches
// only its network namespace, so /sys still shows the caller's mount view; use netlink tools
// (`ip`, `ethtool`) rather than reading /sys/class/net for a namespace's interfaces.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"

namespace dnsproxy::test {

// Outcome of a finished command: exit status (or 128 + signal) and stdout+stderr interleaved.
struct CommandOutput {
  int exit_code = -1;
  std::string output;
};

class NetNs;

// Runs argv[0] (searched in PATH) with argv, in `ns` (nullptr: the caller's namespace), and
// waits for it. Fails only when the command could not be started; a non-zero exit is data.
Result<CommandOutput> run_command(const std::vector<std::string>& argv, const NetNs* ns = nullptr);

// A named network namespace (`ip netns add`), deleted on destruction.
class NetNs {
 public:
  // Creates "dnsproxy-<prefix>-<pid>-<n>": unique per process and per call, so concurrent test
  // processes and repeated fixtures never collide. Loopback is set up.
  static Result<NetNs> create(const std::string& prefix);

  NetNs(NetNs&& other) noexcept;
  NetNs& operator=(NetNs&& other) noexcept;
  NetNs(const NetNs&) = delete;
  NetNs& operator=(const NetNs&) = delete;
  ~NetNs();

  const std::string& name() const { return name_; }
  // An O_RDONLY fd on /run/netns/<name>, owned by this object; valid until destruction.
  int fd() const { return fd_; }

  // Runs argv inside the namespace. exec() fails on a non-zero exit (message: command + output)
  // and returns the output; use run_command(argv, &ns) to inspect a failing command instead.
  Result<CommandOutput> run(const std::vector<std::string>& argv) const;
  Result<std::string> exec(const std::vector<std::string>& argv) const;

  // `ip <args...>` inside the namespace, failing on a non-zero exit.
  Result<std::string> ip(const std::vector<std::string>& args) const;
  Result<void> set_up(const std::string& ifname) const;
  // `cidr` like "192.0.2.1/24" or "2001:db8:c::1/64". IPv6 addresses are added `nodad` so they
  // are usable at once (no 1-2 s duplicate address detection delay in tests).
  Result<void> add_address(const std::string& ifname, const std::string& cidr) const;
  Result<uint32_t> ifindex(const std::string& ifname) const;
  Result<std::string> mac(const std::string& ifname) const;  // "02:00:00:00:00:01"
  // Sets net.ipv4.ip_forward and net.ipv6.conf.all.forwarding (a router between two sides).
  Result<void> enable_forwarding() const;

 private:
  NetNs(std::string name, int fd) : name_(std::move(name)), fd_(fd) {}
  void destroy() noexcept;

  std::string name_;
  int fd_ = -1;
};

// A veth pair with one end in each given namespace (both may be the same one).
struct VethOptions {
  std::string name_a;
  const NetNs* ns_a = nullptr;  // required
  std::string name_b;
  const NetNs* ns_b = nullptr;  // required
  // numtxqueues == numrxqueues on both ends; > 1 gives a multi-queue veth (one AF_XDP socket per
  // queue). veth spreads received packets over queues by the sender's TX queue.
  unsigned queues = 1;
  // Optional fixed MACs ("02:..."), else the kernel picks random ones.
  std::optional<std::string> mac_a;
  std::optional<std::string> mac_b;
  bool up = true;  // set both ends up after creation
};

class VethPair {
 public:
  static Result<VethPair> create(const VethOptions& options);

  VethPair(VethPair&& other) noexcept;
  VethPair& operator=(VethPair&& other) noexcept;
  VethPair(const VethPair&) = delete;
  VethPair& operator=(const VethPair&) = delete;
  ~VethPair();  // deletes the link (both ends); a no-op if a namespace deletion took it already

  const std::string& name_a() const { return name_a_; }
  const std::string& name_b() const { return name_b_; }
  uint32_t ifindex_a() const { return ifindex_a_; }
  uint32_t ifindex_b() const { return ifindex_b_; }

 private:
  VethPair() = default;
  void destroy() noexcept;

  int ns_a_fd_ = -1;  // our own reference to ns_a: the link is deleted from inside it
  std::string name_a_, name_b_;
  uint32_t ifindex_a_ = 0, ifindex_b_ = 0;
};

// Moves the calling thread into a namespace until destruction, then back to where it was.
// For code that must run inside: opening sockets, if_nametoindex, attaching XDP programs,
// BPF_PROG_TEST_RUN with a FIB lookup. Only this thread moves (setns is per thread); threads it
// starts inherit the namespace. Not movable: enter and leave happen in one scope of one thread.
class ScopedNetns {
 public:
  static Result<std::unique_ptr<ScopedNetns>> enter(const NetNs& ns);
  ScopedNetns(const ScopedNetns&) = delete;
  ScopedNetns& operator=(const ScopedNetns&) = delete;
  ~ScopedNetns();  // returns to the original namespace; aborts if that fails (state is unknown)

 private:
  explicit ScopedNetns(int original_fd) : original_fd_(original_fd) {}
  int original_fd_;
};

// A long-running command (knotd, dnsperf, a traffic source) started inside a namespace, its
// stdout+stderr going to `log_path`. Stopped with SIGTERM (then SIGKILL after a grace period) on
// stop() or destruction, so a failing test never leaves it running.
class BackgroundProcess {
 public:
  static Result<BackgroundProcess> start(const std::vector<std::string>& argv, const NetNs* ns,
                                         const std::string& log_path);

  BackgroundProcess(BackgroundProcess&& other) noexcept;
  BackgroundProcess& operator=(BackgroundProcess&& other) noexcept;
  BackgroundProcess(const BackgroundProcess&) = delete;
  BackgroundProcess& operator=(const BackgroundProcess&) = delete;
  ~BackgroundProcess();

  pid_t pid() const { return pid_; }
  // True while the process has not exited (reaps it if it has).
  bool running();
  // SIGTERM, wait up to `grace`, then SIGKILL. Returns the exit status as in CommandOutput.
  int stop(std::chrono::milliseconds grace = std::chrono::milliseconds(2000)) noexcept;

 private:
  explicit BackgroundProcess(pid_t pid) : pid_(pid) {}
  pid_t pid_ = -1;
  int exit_code_ = -1;
};

}  // namespace dnsproxy::test
