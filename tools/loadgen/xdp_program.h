// dnsproxy-loadgen's XDP program (datapath/bpf/loadgen_rx.bpf.c) on the interface it sends from:
// attached at creation, detached on destruction.
//
// Its receive role steers the answers to the AF_XDP sockets (xsks_fd()). With --tx xdp it also
// sends: transmit() has the kernel run it on frames of its own (BPF_PROG_TEST_RUN, live-frames
// mode), and each run writes the next query and returns XDP_TX.
//
// Why XDP frames: AF_XDP in copy mode turns every descriptor into an skb, and on veth the
// receiving end's NAPI then polls once per packet, in the sender's context (the peer's XDP
// program, its copy, its wakeup: per query). XDP frames skip the skb, and the peer polls them in
// batches. Why the same program: test_run swaps the program into the XDP dispatcher and back
// (two RCU grace periods, ~20 ms here) unless the program is attached already. The cost: the
// receiving end must take XDP frames (veth: the peer has an XDP program, or GRO, on); frames it
// refuses are dropped without a trace here, so they show up as lost queries.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/result.h"
#include "datapath/bpf/dnsproxy_abi.h"

struct loadgen_rx;

namespace dnsproxy::loadgen {

struct XdpProgramConfig {
  uint32_t ifindex = 0;
  uint16_t server_port = 53;
  uint16_t first_port = 32768;  // the source ports: first_port .. first_port + port_count - 1
  uint16_t port_count = 1024;
  uint32_t ids_per_port = 1024;
  bool generic = false;  // attach in SKB mode instead of native
  // --tx xdp: query k is templates[k % size]; empty: the program only receives.
  std::vector<loadgen_template> templates;
};

class XdpProgram {
 public:
  [[nodiscard]] static Result<std::unique_ptr<XdpProgram>> attach(const XdpProgramConfig& config);
  ~XdpProgram();
  XdpProgram(const XdpProgram&) = delete;
  XdpProgram& operator=(const XdpProgram&) = delete;

  [[nodiscard]] int xsks_fd() const noexcept;
  [[nodiscard]] bool generic() const noexcept;  // attached in SKB (generic) mode

  // Sends queries first .. first + count - 1 and returns how many runs the program made (fewer
  // when a signal or an error cut the call short). A run that could not build its query (counted
  // in build_failures()) sent nothing: its query shows up as lost.
  [[nodiscard]] uint64_t transmit(uint64_t first, uint64_t count) noexcept;
  [[nodiscard]] uint64_t build_failures() const noexcept;
  // test_run calls the kernel refused (errno other than EINTR).
  [[nodiscard]] uint64_t run_errors() const noexcept { return run_errors_; }

 private:
  explicit XdpProgram(uint32_t ifindex) : ifindex_(ifindex) {}
  [[nodiscard]] Result<void> fill_templates(const std::vector<loadgen_template>& templates);

  uint32_t ifindex_;
  int64_t flags_ = -1;  // the XDP attach flags once attached
  loadgen_rx* skel_ = nullptr;
  std::vector<uint8_t> seed_;  // test_run's frame: the seed metadata, then a query (rewritten)
  uint64_t run_errors_ = 0;
};

}  // namespace dnsproxy::loadgen
