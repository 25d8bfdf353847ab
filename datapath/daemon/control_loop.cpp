#include "datapath/daemon/control_loop.h"

#include <pthread.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

namespace dnsproxy::daemon {

Result<std::unique_ptr<ControlLoop>> ControlLoop::create(std::initializer_list<int> signals) {
  sigset_t set;
  sigemptyset(&set);
  for (int sig : signals) sigaddset(&set, sig);
  if (const int err = pthread_sigmask(SIG_BLOCK, &set, nullptr); err != 0)
    return fail("cannot block signals: ", std::strerror(err));
  const int signal_fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
  if (signal_fd < 0) return fail("signalfd: ", std::strerror(errno));
  const int epoll_fd = epoll_create1(EPOLL_CLOEXEC);
  if (epoll_fd < 0) {
    const int err = errno;
    ::close(signal_fd);
    return fail("epoll_create1: ", std::strerror(err));
  }
  std::unique_ptr<ControlLoop> loop(new ControlLoop(epoll_fd, signal_fd));
  if (auto added = loop->add_fd(signal_fd, [raw = loop.get()] { raw->read_signals(); }); !added)
    return tl::unexpected(added.error());
  return loop;
}

ControlLoop::~ControlLoop() {
  for (int fd : timer_fds_) ::close(fd);
  ::close(signal_fd_);
  ::close(epoll_fd_);
}

Result<void> ControlLoop::add_fd(int fd, Callback on_readable) {
  epoll_event event{};
  event.events = EPOLLIN;
  event.data.fd = fd;
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &event) != 0)
    return fail("epoll_ctl add fd ", std::to_string(fd), ": ", std::strerror(errno));
  fds_[fd] = std::move(on_readable);
  return {};
}

void ControlLoop::remove_fd(int fd) noexcept {
  (void)epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
  fds_.erase(fd);
}

Result<void> ControlLoop::add_timer(std::chrono::milliseconds interval, Callback on_tick) {
  if (interval.count() <= 0) return fail("a timer needs an interval of at least 1 ms");
  const int fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
  if (fd < 0) return fail("timerfd_create: ", std::strerror(errno));
  itimerspec spec{};
  spec.it_interval.tv_sec = interval.count() / 1000;
  spec.it_interval.tv_nsec = (interval.count() % 1000) * 1'000'000;
  spec.it_value = spec.it_interval;
  if (timerfd_settime(fd, 0, &spec, nullptr) != 0) {
    const int err = errno;
    ::close(fd);
    return fail("timerfd_settime: ", std::strerror(err));
  }
  auto added = add_fd(fd, [fd, tick = std::move(on_tick)] {
    uint64_t expirations = 0;
    if (::read(fd, &expirations, sizeof(expirations)) == sizeof(expirations)) tick();
  });
  if (!added) {
    ::close(fd);
    return added;
  }
  timer_fds_.push_back(fd);
  return {};
}

Result<ControlLoop::Deadline> ControlLoop::add_deadline(Callback on_due) {
  const int fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
  if (fd < 0) return fail("timerfd_create: ", std::strerror(errno));
  auto added = add_fd(fd, [fd, due = std::move(on_due)] {
    uint64_t expirations = 0;
    if (::read(fd, &expirations, sizeof(expirations)) == sizeof(expirations)) due();
  });
  if (!added) {
    ::close(fd);
    return tl::unexpected(added.error());
  }
  timer_fds_.push_back(fd);
  return Deadline(fd);
}

void ControlLoop::Deadline::arm(std::chrono::steady_clock::time_point at) const noexcept {
  // steady_clock is CLOCK_MONOTONIC; an absolute time already past fires at once, and the
  // minimum of 1 ns keeps a zero from disarming the timer instead.
  const auto ns = std::max<int64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(at.time_since_epoch()).count(), 1);
  itimerspec spec{};
  spec.it_value.tv_sec = ns / 1'000'000'000;
  spec.it_value.tv_nsec = ns % 1'000'000'000;
  (void)timerfd_settime(fd_, TFD_TIMER_ABSTIME, &spec, nullptr);
}

void ControlLoop::on_signal(int signal, Callback handler) {
  signals_[signal] = std::move(handler);
}

void ControlLoop::read_signals() {
  signalfd_siginfo info{};
  while (::read(signal_fd_, &info, sizeof(info)) == sizeof(info)) {
    const auto handler = signals_.find(static_cast<int>(info.ssi_signo));
    if (handler != signals_.end()) handler->second();
  }
}

Result<void> ControlLoop::run() {
  stopped_ = false;
  std::vector<epoll_event> events(16);
  while (!stopped_) {
    const int n = epoll_wait(epoll_fd_, events.data(), static_cast<int>(events.size()), -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail("epoll_wait: ", std::strerror(errno));
    }
    for (int i = 0; i < n && !stopped_; ++i) {
      // Looked up per event: a callback may have removed this fd (or another) meanwhile.
      const auto entry = fds_.find(events[i].data.fd);
      if (entry != fds_.end()) {
        const Callback callback = entry->second;  // a copy: the callback may remove itself
        callback();
      }
    }
  }
  return {};
}

}  // namespace dnsproxy::daemon
