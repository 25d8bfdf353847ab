#include "datapath/pipeline/channel.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace dnsproxy::datapath::pipeline {

Result<EventFd> EventFd::create() {
  const int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (fd < 0) return fail("eventfd: ", std::strerror(errno));
  return EventFd(fd);
}

EventFd::~EventFd() {
  if (fd_ >= 0) close(fd_);
}

void EventFd::signal() noexcept {
  const uint64_t one = 1;
  // A full counter (2^64 - 2 pending signals) cannot happen; EAGAIN would only mean "still set".
  (void)!write(fd_, &one, sizeof(one));
}

void EventFd::drain() noexcept {
  uint64_t value = 0;
  (void)!read(fd_, &value, sizeof(value));
}

Result<std::unique_ptr<Channel>> Channel::create(ChannelConfig config) {
  auto notify = EventFd::create();
  if (!notify) return tl::unexpected(notify.error());
  auto wake = EventFd::create();
  if (!wake) return tl::unexpected(wake.error());
  return std::unique_ptr<Channel>(new Channel{SpscRing<MappingNotice>(config.notice_ring),
                                              SpscRing<TicketAck>(config.ack_ring),
                                              std::move(*notify), std::move(*wake)});
}

}  // namespace dnsproxy::datapath::pipeline
