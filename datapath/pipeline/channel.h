// What one worker's policy handler and the control thread exchange (DESIGN.md 5: workers talk to
// the control plane only through SPSC rings, and never wait on it):
//
//   worker -> control   MappingNotice: (endpoint, name, IP, TTL) learned from an accepted response
//                       that needs plumbing, tagged with the ticket of the parked frame waiting
//                       for it; `notify` (an eventfd) is written once per batch that pushed any.
//   control -> worker   TicketAck: every mapping of that ticket is plumbed, release the frame;
//                       `wake` (an eventfd) is written after pushing, so an idle worker wakes.
//
// Ownership: the daemon creates one Channel per worker (cold path) and keeps it alive until the
// worker and the control loop stopped; the worker is the only producer of `notices` and consumer
// of `acks`, the control thread the reverse.
#pragma once

#include <array>
#include <cstdint>
#include <memory>

#include "common/result.h"
#include "datapath/pipeline/spsc_ring.h"
#include "dns/wire_name.h"
#include "policy/ip_address.h"

namespace dnsproxy::datapath::pipeline {

struct MappingNotice {
  static constexpr uint8_t kLastOfTicket = 0x01;  // the ticket's last notice: it can be judged
  static constexpr uint8_t kNoTicket = 0x02;      // no frame waits (released already): plumb only

  uint32_t ticket = 0;
  uint32_t endpoint_id = 0;
  uint32_t ttl = 0;  // seconds: the chain TTL of the address
  policy::IpAddress ip;
  uint8_t flags = 0;
  uint8_t name_length = 0;                            // bytes of `name` used
  std::array<uint8_t, dns::kMaxNameWireLength> name;  // lowercased wire form, root byte included
};

struct TicketAck {
  uint32_t ticket = 0;
};

// A counting eventfd, non-blocking; the cheap doorbell beside each ring.
class EventFd {
 public:
  [[nodiscard]] static Result<EventFd> create();
  EventFd(EventFd&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
  EventFd& operator=(EventFd&&) = delete;
  ~EventFd();

  [[nodiscard]] int fd() const noexcept { return fd_; }
  void signal() noexcept;  // one write(2)
  void drain() noexcept;   // one read(2); nothing to read is fine

 private:
  explicit EventFd(int fd) : fd_(fd) {}
  int fd_;
};

struct ChannelConfig {
  size_t notice_ring = 4096;  // mappings in flight to the control thread
  size_t ack_ring = 4096;     // >= the worker's parked limit, so an ACK always finds room
};

struct Channel {
  SpscRing<MappingNotice> notices;
  SpscRing<TicketAck> acks;
  EventFd notify;  // worker -> control
  EventFd wake;    // control -> worker

  // Cold path: allocates the rings, creates the eventfds.
  [[nodiscard]] static Result<std::unique_ptr<Channel>> create(ChannelConfig config);
};

}  // namespace dnsproxy::datapath::pipeline
