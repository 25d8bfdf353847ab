// The control loop with real fds: a signal through its signalfd, a timerfd tick, an eventfd
// registered by a "feature", removal, and stop from a callback.
#include "datapath/daemon/control_loop.h"

#include <signal.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>

namespace dnsproxy::daemon {
namespace {

TEST(ControlLoopTest, ASignalReachesItsHandler) {
  auto loop = ControlLoop::create({SIGUSR1, SIGUSR2});
  ASSERT_TRUE(loop) << loop.error().message;
  int usr1 = 0, usr2 = 0;
  (*loop)->on_signal(SIGUSR1, [&] { ++usr1; });
  (*loop)->on_signal(SIGUSR2, [&] {
    ++usr2;
    (*loop)->stop();
  });
  ASSERT_EQ(kill(getpid(), SIGUSR1), 0);  // blocked: pending until the signalfd reads it
  ASSERT_EQ(kill(getpid(), SIGUSR2), 0);
  ASSERT_TRUE((*loop)->run());
  EXPECT_EQ(usr1, 1);
  EXPECT_EQ(usr2, 1);
}

TEST(ControlLoopTest, TimersTickAndRegisteredFdsAreServed) {
  auto loop = ControlLoop::create({SIGUSR1});
  ASSERT_TRUE(loop) << loop.error().message;
  const int event = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  ASSERT_GE(event, 0);
  int ticks = 0, events = 0;
  ASSERT_TRUE((*loop)->add_fd(event, [&] {
    uint64_t value = 0;
    ASSERT_EQ(read(event, &value, sizeof(value)), static_cast<ssize_t>(sizeof(value)));
    events += static_cast<int>(value);
  }));
  const auto started = std::chrono::steady_clock::now();
  ASSERT_TRUE((*loop)->add_timer(std::chrono::milliseconds(10), [&] {
    if (++ticks == 1) {
      const uint64_t two = 2;
      ASSERT_EQ(write(event, &two, sizeof(two)), static_cast<ssize_t>(sizeof(two)));
    }
    if (ticks == 3) (*loop)->stop();
  }));
  ASSERT_TRUE((*loop)->run());
  EXPECT_EQ(ticks, 3);
  EXPECT_EQ(events, 2);
  EXPECT_GE(std::chrono::steady_clock::now() - started, std::chrono::milliseconds(30));
  (*loop)->remove_fd(event);
  close(event);
}

TEST(ControlLoopTest, ARemovedFdIsNoLongerServedAndBadRegistrationsFail) {
  auto loop = ControlLoop::create({SIGUSR1});
  ASSERT_TRUE(loop) << loop.error().message;
  const int event = eventfd(1, EFD_NONBLOCK | EFD_CLOEXEC);  // readable from the start
  ASSERT_GE(event, 0);
  int served = 0;
  ASSERT_TRUE((*loop)->add_fd(event, [&] { ++served; }));
  (*loop)->remove_fd(event);
  int ticks = 0;
  ASSERT_TRUE((*loop)->add_timer(std::chrono::milliseconds(5), [&] {
    if (++ticks == 2) (*loop)->stop();
  }));
  ASSERT_TRUE((*loop)->run());
  EXPECT_EQ(served, 0);
  EXPECT_FALSE((*loop)->add_fd(-1, [] {}));
  EXPECT_FALSE((*loop)->add_timer(std::chrono::milliseconds(0), [] {}));
  close(event);
}

}  // namespace
}  // namespace dnsproxy::daemon
