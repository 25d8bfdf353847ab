// Threaded NAPI on the load generator's interface (--threaded-napi).
//
// Why: on veth, the receiving end's NAPI poll runs in the context of whoever transmits to it,
// once per packet. For the load generator that poll is its own receive work (its XDP program,
// the copy into its UMEM, waking it up), and the transmitter is the server: without threaded
// NAPI that work is charged to the server's CPU, so the load generator slows down what it
// measures. Threaded, the poll runs in a kernel thread (napi/IFACE-ID), a batch at a time.
#pragma once

#include <memory>
#include <string>

#include "common/result.h"

namespace dnsproxy::loadgen {

class ThreadedNapi {
 public:
  // Switches `interface` to threaded NAPI and remembers the previous setting. Its NAPI instances
  // must exist already (veth has them only while an XDP program is attached).
  [[nodiscard]] static Result<std::unique_ptr<ThreadedNapi>> enable(const std::string& interface);
  ~ThreadedNapi();  // restores the previous setting (before the XDP program goes)
  ThreadedNapi(const ThreadedNapi&) = delete;
  ThreadedNapi& operator=(const ThreadedNapi&) = delete;

 private:
  ThreadedNapi(std::string interface, std::string previous)
      : interface_(std::move(interface)), previous_(std::move(previous)) {}

  std::string interface_;
  std::string previous_;
};

}  // namespace dnsproxy::loadgen
