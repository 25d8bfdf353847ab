// The daemon's control loop: one epoll over a signalfd (the signals the daemon handles), timerfds
// and whatever fds features register (later: the policy mirror, the agent link, the admin and
// metrics sockets). Runs on the control thread; callbacks run there, one at a time, and must not
// block. A feature plugs in with add_fd / add_timer / on_signal, without editing the loop.
//
// The signals are blocked in the thread that creates the loop, before any worker thread starts,
// so every thread inherits the mask and only the signalfd sees them.
#pragma once

#include <chrono>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <vector>

#include "common/result.h"

namespace dnsproxy::daemon {

class ControlLoop {
 public:
  using Callback = std::function<void()>;

  // Blocks `signals` in the calling thread and reads them through a signalfd.
  [[nodiscard]] static Result<std::unique_ptr<ControlLoop>> create(
      std::initializer_list<int> signals);
  ~ControlLoop();
  ControlLoop(const ControlLoop&) = delete;
  ControlLoop& operator=(const ControlLoop&) = delete;

  // Calls `on_readable` whenever `fd` is readable (level-triggered: the callback reads it). The
  // caller keeps owning the fd and removes it before closing it.
  [[nodiscard]] Result<void> add_fd(int fd, Callback on_readable);
  void remove_fd(int fd) noexcept;
  // Calls `on_tick` every `interval` (first after one interval); the loop owns the timerfd.
  // Ticks missed while a callback ran are folded into one call.
  [[nodiscard]] Result<void> add_timer(std::chrono::milliseconds interval, Callback on_tick);
  // A one-shot timer its owner re-arms: arm(at) makes the loop call the callback once at `at`
  // (replacing an earlier arm). For deadlines that move, such as the open plumbing batch's.
  class Deadline {
   public:
    void arm(std::chrono::steady_clock::time_point at) const noexcept;

   private:
    friend class ControlLoop;
    explicit Deadline(int fd) : fd_(fd) {}
    int fd_;
  };
  // The loop owns the timerfd; the Deadline is valid while the loop lives.
  [[nodiscard]] Result<Deadline> add_deadline(Callback on_due);
  // Calls `handler` when `signal` (one of those given to create) arrives.
  void on_signal(int signal, Callback handler);

  // Dispatches until stop() is called from a callback. Fails only when epoll itself fails.
  [[nodiscard]] Result<void> run();
  void stop() noexcept { stopped_ = true; }

 private:
  ControlLoop(int epoll_fd, int signal_fd) : epoll_fd_(epoll_fd), signal_fd_(signal_fd) {}
  void read_signals();

  int epoll_fd_;
  int signal_fd_;
  bool stopped_ = false;
  std::map<int, Callback> fds_;      // fd -> callback (the signalfd and the timers too)
  std::map<int, Callback> signals_;  // signal -> handler
  std::vector<int> timer_fds_;       // owned
};

}  // namespace dnsproxy::daemon
