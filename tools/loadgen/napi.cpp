#include "tools/loadgen/napi.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace dnsproxy::loadgen {
namespace {

// The child's side of exchange_net_attribute: returns 0 or the errno of the step that failed,
// and writes the attribute's previous value to `out`.
int exchange_in_own_sysfs(const std::string& path, const std::string& value, int out) {
  // /sys shows the network namespace of whoever mounted it, not ours (we may have been started
  // by setns() alone, without `ip netns exec`'s remount): mount our own, privately.
  if (unshare(CLONE_NEWNS) != 0 || mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0)
    return errno;
  (void)umount2("/sys", MNT_DETACH);
  if (mount("sysfs", "/sys", "sysfs", 0, nullptr) != 0) return errno;
  const int fd = open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) return errno;
  char previous[64];
  const ssize_t n = read(fd, previous, sizeof(previous));
  if (n <= 0 || lseek(fd, 0, SEEK_SET) != 0 ||
      write(fd, value.data(), value.size()) != static_cast<ssize_t>(value.size()))
    return errno != 0 ? errno : EIO;
  return write(out, previous, static_cast<size_t>(n)) == n ? 0 : errno;
}

// Writes `value` to /sys/class/net/INTERFACE/ATTRIBUTE of this process's network namespace and
// returns what was there before (without the newline). A child process does it, so this
// process's own mounts never change.
Result<std::string> exchange_net_attribute(const std::string& interface,
                                           const std::string& attribute, const std::string& value) {
  const std::string path = "/sys/class/net/" + interface + "/" + attribute;
  int pipe_fds[2];
  if (pipe2(pipe_fds, O_CLOEXEC) != 0) return fail("pipe: ", std::strerror(errno));
  const pid_t child = fork();
  if (child < 0) return fail("fork: ", std::strerror(errno));
  if (child == 0) _exit(exchange_in_own_sysfs(path, value, pipe_fds[1]));
  close(pipe_fds[1]);
  std::string previous;
  char buffer[64];
  for (ssize_t n; (n = read(pipe_fds[0], buffer, sizeof(buffer))) > 0;)
    previous.append(buffer, static_cast<size_t>(n));
  close(pipe_fds[0]);
  int status = 0;
  if (waitpid(child, &status, 0) != child || !WIFEXITED(status))
    return fail("cannot set ", path, ": the helper process died");
  if (WEXITSTATUS(status) != 0)
    return fail("cannot set ", path, " to ", value, ": ", std::strerror(WEXITSTATUS(status)));
  while (!previous.empty() && (previous.back() == '\n' || previous.back() == ' '))
    previous.pop_back();
  return previous;
}

}  // namespace

Result<std::unique_ptr<ThreadedNapi>> ThreadedNapi::enable(const std::string& interface) {
  auto previous = exchange_net_attribute(interface, "threaded", "1");
  if (!previous) return tl::unexpected(previous.error());
  return std::unique_ptr<ThreadedNapi>(new ThreadedNapi(interface, std::move(*previous)));
}

ThreadedNapi::~ThreadedNapi() {
  (void)exchange_net_attribute(interface_, "threaded", previous_);
}

}  // namespace dnsproxy::loadgen
