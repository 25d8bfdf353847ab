#include "test/support/netns.h"

#include <fcntl.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <utility>

namespace dnsproxy::test {
namespace {

std::string join(const std::vector<std::string>& argv) {
  std::string line;
  for (const std::string& arg : argv) {
    if (!line.empty()) line += ' ';
    line += arg;
  }
  return line;
}

std::string errno_text(int err) {
  return std::string(std::strerror(err));
}

int decode_wait_status(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

// argv as the char* array execvp wants; built before fork() so the child only makes syscalls.
std::vector<char*> exec_args(const std::vector<std::string>& argv) {
  std::vector<char*> args;
  args.reserve(argv.size() + 1);
  for (const std::string& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
  args.push_back(nullptr);
  return args;
}

// Appends argv (tab-separated, one line) to $DNSPROXY_EXEC_LOG when it is set: tools/run test
// sets it and hands the log to tools/check-commands, which fails if a command the tests ran
// comes from no package tools/run installs. One write() with O_APPEND, so concurrent tests
// never interleave within a line.
void record_exec(const std::vector<std::string>& argv) {
  const char* log_path = getenv("DNSPROXY_EXEC_LOG");
  if (log_path == nullptr || *log_path == '\0') return;
  std::string line;
  // One argv per line: a tab or newline inside an argument (a `python3 -c` script) becomes a
  // space, so the log stays one line per command.
  for (const std::string& arg : argv) {
    if (!line.empty()) line += '\t';
    for (char c : arg) line += (c == '\n' || c == '\t') ? ' ' : c;
  }
  line += '\n';
  const int fd = open(log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return;
  (void)!write(fd, line.data(), line.size());
  close(fd);
}

// In the forked child: enter `netns_fd` (if >= 0), redirect stdout+stderr to `out_fd`, exec.
// Only async-signal-safe calls: the parent may be multi-threaded.
[[noreturn]] void exec_child(char* const* args, int netns_fd, int out_fd) {
  if (netns_fd >= 0 && setns(netns_fd, CLONE_NEWNET) != 0) {
    static constexpr char kMsg[] = "netns.cpp: setns failed in child\n";
    (void)!write(out_fd, kMsg, sizeof(kMsg) - 1);
    _exit(126);
  }
  const int null_fd = open("/dev/null", O_RDONLY);
  if (null_fd >= 0) dup2(null_fd, STDIN_FILENO);
  dup2(out_fd, STDOUT_FILENO);
  dup2(out_fd, STDERR_FILENO);
  execvp(args[0], args);
  static constexpr char kMsg[] = "netns.cpp: exec failed (command not found?)\n";
  (void)!write(STDERR_FILENO, kMsg, sizeof(kMsg) - 1);
  _exit(127);
}

Result<std::string> checked(const Result<CommandOutput>& result,
                            const std::vector<std::string>& argv, const NetNs* ns) {
  if (!result) return tl::unexpected(result.error());
  if (result->exit_code != 0) {
    return fail("`", join(argv), "`", ns ? " in netns " + ns->name() : std::string(),
                " exited with ", std::to_string(result->exit_code), ": ", result->output);
  }
  return result->output;
}

Result<void> checked_void(const Result<std::string>& result) {
  if (!result) return tl::unexpected(result.error());
  return {};
}

// run_command() with the namespace given as an fd (-1: the caller's).
Result<CommandOutput> run_command_in(const std::vector<std::string>& argv, int netns_fd) {
  if (argv.empty()) return fail("run_command: empty command");
  record_exec(argv);
  std::vector<char*> args = exec_args(argv);
  int pipe_fds[2];
  if (pipe2(pipe_fds, O_CLOEXEC) != 0) return fail("pipe2: ", errno_text(errno));
  const pid_t pid = fork();
  if (pid < 0) {
    const int err = errno;
    close(pipe_fds[0]);
    close(pipe_fds[1]);
    return fail("fork: ", errno_text(err));
  }
  if (pid == 0) exec_child(args.data(), netns_fd, pipe_fds[1]);
  close(pipe_fds[1]);

  CommandOutput result;
  char buffer[4096];
  for (;;) {
    const ssize_t n = read(pipe_fds[0], buffer, sizeof(buffer));
    if (n > 0) {
      result.output.append(buffer, static_cast<size_t>(n));
    } else if (n == 0 || errno != EINTR) {
      break;
    }
  }
  close(pipe_fds[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  result.exit_code = decode_wait_status(status);
  return result;
}

}  // namespace

Result<CommandOutput> run_command(const std::vector<std::string>& argv, const NetNs* ns) {
  return run_command_in(argv, ns ? ns->fd() : -1);
}

// ---- NetNs ----

Result<NetNs> NetNs::create(const std::string& prefix) {
  static std::atomic<unsigned> counter{0};
  std::string name = "dnsproxy-" + prefix + "-" + std::to_string(getpid()) + "-" +
                     std::to_string(counter.fetch_add(1));
  const std::vector<std::string> add = {"ip", "netns", "add", name};
  if (auto added = checked(run_command(add), add, nullptr); !added) {
    return tl::unexpected(added.error());
  }
  // From here on the namespace exists: the NetNs owns it and deletes it on any failure below.
  NetNs ns(name, -1);
  const std::string path = "/run/netns/" + name;
  ns.fd_ = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (ns.fd_ < 0) return fail("open ", path, ": ", errno_text(errno));
  if (auto lo = ns.set_up("lo"); !lo) return tl::unexpected(lo.error());
  return ns;
}

NetNs::NetNs(NetNs&& other) noexcept
    : name_(std::exchange(other.name_, {})), fd_(std::exchange(other.fd_, -1)) {}

NetNs& NetNs::operator=(NetNs&& other) noexcept {
  if (this != &other) {
    destroy();
    name_ = std::exchange(other.name_, {});
    fd_ = std::exchange(other.fd_, -1);
  }
  return *this;
}

NetNs::~NetNs() {
  destroy();
}

void NetNs::destroy() noexcept {
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
  if (name_.empty()) return;
  const std::vector<std::string> del = {"ip", "netns", "delete", name_};
  auto deleted = run_command(del);
  if (!deleted || deleted->exit_code != 0) {
    std::fprintf(stderr, "netns.cpp: could not delete netns %s: %s\n", name_.c_str(),
                 deleted ? deleted->output.c_str() : deleted.error().message.c_str());
  }
  name_.clear();
}

Result<CommandOutput> NetNs::run(const std::vector<std::string>& argv) const {
  return run_command(argv, this);
}

Result<std::string> NetNs::exec(const std::vector<std::string>& argv) const {
  return checked(run(argv), argv, this);
}

Result<std::string> NetNs::ip(const std::vector<std::string>& args) const {
  std::vector<std::string> argv = {"ip"};
  argv.insert(argv.end(), args.begin(), args.end());
  return exec(argv);
}

Result<void> NetNs::set_up(const std::string& ifname) const {
  return checked_void(ip({"link", "set", "dev", ifname, "up"}));
}

Result<void> NetNs::add_address(const std::string& ifname, const std::string& cidr) const {
  std::vector<std::string> args = {"addr", "add", cidr, "dev", ifname};
  if (cidr.find(':') != std::string::npos) args.push_back("nodad");
  return checked_void(ip(args));
}

Result<uint32_t> NetNs::ifindex(const std::string& ifname) const {
  auto inside = ScopedNetns::enter(*this);
  if (!inside) return tl::unexpected(inside.error());
  const unsigned index = if_nametoindex(ifname.c_str());
  if (index == 0) return fail("no interface ", ifname, " in netns ", name_);
  return index;
}

Result<std::string> NetNs::mac(const std::string& ifname) const {
  auto inside = ScopedNetns::enter(*this);
  if (!inside) return tl::unexpected(inside.error());
  const int sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (sock < 0) return fail("socket: ", errno_text(errno));
  ifreq request{};
  std::snprintf(request.ifr_name, sizeof(request.ifr_name), "%s", ifname.c_str());
  const int rc = ioctl(sock, SIOCGIFHWADDR, &request);
  const int err = errno;
  close(sock);
  if (rc != 0) return fail("SIOCGIFHWADDR ", ifname, " in netns ", name_, ": ", errno_text(err));
  const auto* hw = reinterpret_cast<const unsigned char*>(request.ifr_hwaddr.sa_data);
  char text[18];
  std::snprintf(text, sizeof(text), "%02x:%02x:%02x:%02x:%02x:%02x", hw[0], hw[1], hw[2], hw[3],
                hw[4], hw[5]);
  return std::string(text);
}

Result<void> NetNs::enable_forwarding() const {
  for (const char* setting : {"net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1"}) {
    if (auto set = exec({"sysctl", "-q", "-w", setting}); !set) {
      return tl::unexpected(set.error());
    }
  }
  return {};
}

// ---- VethPair ----

Result<VethPair> VethPair::create(const VethOptions& options) {
  if (!options.ns_a || !options.ns_b) return fail("VethPair: both namespaces are required");
  if (options.name_a.empty() || options.name_b.empty() || options.name_a.size() >= IFNAMSIZ ||
      options.name_b.size() >= IFNAMSIZ) {
    return fail("VethPair: interface names must be 1..", std::to_string(IFNAMSIZ - 1),
                " characters");
  }
  if (options.queues == 0) return fail("VethPair: queues must be >= 1");
  const std::string queues = std::to_string(options.queues);
  // Created inside ns_a with the peer placed straight into ns_b: the names only need to be
  // unique inside those namespaces, never in the root namespace.
  std::vector<std::string> args = {"link", "add", options.name_a};
  if (options.mac_a) args.insert(args.end(), {"address", *options.mac_a});
  args.insert(args.end(), {"numtxqueues", queues, "numrxqueues", queues, "type", "veth", "peer",
                           "name", options.name_b});
  if (options.mac_b) args.insert(args.end(), {"address", *options.mac_b});
  args.insert(args.end(),
              {"numtxqueues", queues, "numrxqueues", queues, "netns", options.ns_b->name()});
  if (auto added = options.ns_a->ip(args); !added) return tl::unexpected(added.error());

  VethPair pair;  // owns the link from here on: deleted again if anything below fails
  pair.ns_a_fd_ = fcntl(options.ns_a->fd(), F_DUPFD_CLOEXEC, 0);
  if (pair.ns_a_fd_ < 0) return fail("dup netns fd: ", errno_text(errno));
  pair.name_a_ = options.name_a;
  pair.name_b_ = options.name_b;
  auto index_a = options.ns_a->ifindex(options.name_a);
  if (!index_a) return tl::unexpected(index_a.error());
  auto index_b = options.ns_b->ifindex(options.name_b);
  if (!index_b) return tl::unexpected(index_b.error());
  pair.ifindex_a_ = *index_a;
  pair.ifindex_b_ = *index_b;
  if (options.up) {
    if (auto up = options.ns_a->set_up(options.name_a); !up) return tl::unexpected(up.error());
    if (auto up = options.ns_b->set_up(options.name_b); !up) return tl::unexpected(up.error());
  }
  return pair;
}

VethPair::VethPair(VethPair&& other) noexcept
    : ns_a_fd_(std::exchange(other.ns_a_fd_, -1)),
      name_a_(std::exchange(other.name_a_, {})),
      name_b_(std::exchange(other.name_b_, {})),
      ifindex_a_(std::exchange(other.ifindex_a_, 0)),
      ifindex_b_(std::exchange(other.ifindex_b_, 0)) {}

VethPair& VethPair::operator=(VethPair&& other) noexcept {
  if (this != &other) {
    destroy();
    ns_a_fd_ = std::exchange(other.ns_a_fd_, -1);
    name_a_ = std::exchange(other.name_a_, {});
    name_b_ = std::exchange(other.name_b_, {});
    ifindex_a_ = std::exchange(other.ifindex_a_, 0);
    ifindex_b_ = std::exchange(other.ifindex_b_, 0);
  }
  return *this;
}

VethPair::~VethPair() {
  destroy();
}

void VethPair::destroy() noexcept {
  // Our own fd keeps ns_a alive even if its NetNs was deleted first, so the delete always has a
  // namespace to run in. A failure means the link is gone already (e.g. moved away): ignored.
  if (ns_a_fd_ >= 0) {
    (void)run_command_in({"ip", "link", "del", "dev", name_a_}, ns_a_fd_);
    close(ns_a_fd_);
  }
  ns_a_fd_ = -1;
  name_a_.clear();
  name_b_.clear();
}

// ---- ScopedNetns ----

Result<std::unique_ptr<ScopedNetns>> ScopedNetns::enter(const NetNs& ns) {
  const int original = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  if (original < 0) return fail("open /proc/thread-self/ns/net: ", errno_text(errno));
  if (setns(ns.fd(), CLONE_NEWNET) != 0) {
    const int err = errno;
    close(original);
    return fail("setns into ", ns.name(), ": ", errno_text(err));
  }
  return std::unique_ptr<ScopedNetns>(new ScopedNetns(original));
}

ScopedNetns::~ScopedNetns() {
  if (setns(original_fd_, CLONE_NEWNET) != 0) {
    // Carrying on would run the rest of the test process in the wrong namespace.
    std::fprintf(stderr, "netns.cpp: setns back to the original netns failed: %s\n",
                 std::strerror(errno));
    std::abort();
  }
  close(original_fd_);
}

// ---- BackgroundProcess ----

Result<BackgroundProcess> BackgroundProcess::start(const std::vector<std::string>& argv,
                                                   const NetNs* ns, const std::string& log_path) {
  if (argv.empty()) return fail("BackgroundProcess: empty command");
  record_exec(argv);
  std::vector<char*> args = exec_args(argv);
  const int log_fd = open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (log_fd < 0) return fail("open ", log_path, ": ", errno_text(errno));
  const pid_t pid = fork();
  if (pid < 0) {
    const int err = errno;
    close(log_fd);
    return fail("fork: ", errno_text(err));
  }
  if (pid == 0) {
    setpgid(0, 0);  // its own process group, so stop() also reaches anything it forks
    exec_child(args.data(), ns ? ns->fd() : -1, log_fd);
  }
  setpgid(pid, pid);  // also from the parent: no race with an early stop()
  close(log_fd);
  return BackgroundProcess(pid);
}

BackgroundProcess::BackgroundProcess(BackgroundProcess&& other) noexcept
    : pid_(std::exchange(other.pid_, -1)), exit_code_(other.exit_code_) {}

BackgroundProcess& BackgroundProcess::operator=(BackgroundProcess&& other) noexcept {
  if (this != &other) {
    stop();
    pid_ = std::exchange(other.pid_, -1);
    exit_code_ = other.exit_code_;
  }
  return *this;
}

BackgroundProcess::~BackgroundProcess() {
  stop();
}

bool BackgroundProcess::running() {
  if (pid_ < 0) return false;
  int status = 0;
  if (waitpid(pid_, &status, WNOHANG) == pid_) {
    exit_code_ = decode_wait_status(status);
    kill(-pid_, SIGKILL);  // whatever it left behind in its group
    pid_ = -1;
    return false;
  }
  return true;
}

int BackgroundProcess::stop(std::chrono::milliseconds grace) noexcept {
  if (!running()) return exit_code_;
  kill(-pid_, SIGTERM);
  const auto deadline = std::chrono::steady_clock::now() + grace;
  while (std::chrono::steady_clock::now() < deadline) {
    if (!running()) return exit_code_;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  kill(-pid_, SIGKILL);
  int status = 0;
  while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  exit_code_ = decode_wait_status(status);
  pid_ = -1;
  return exit_code_;
}

}  // namespace dnsproxy::test
