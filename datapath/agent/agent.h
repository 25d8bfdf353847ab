// The agent seam (DESIGN.md 7): what the proxy asks of the node agent, behind one interface with
// two implementations, the embedded agent (in process, from a policy file: embedded_agent.h) and
// the gRPC link to an external agent (grpc_agent.h). Both agents that own the BPF maps (the
// embedded one and the reference agent dnsproxy-agent) share their code: agent_maps.h.
//
//   proxy -> agent   submit(batch): plumb these (endpoint, name, IPs, expiry) mappings
//   agent -> proxy   poll(): the batches whose plumbing finished (ACK) or failed (NACK, lost)
//
// Control thread only. Nothing here blocks: submit() queues, the answer comes later through
// poll(), which the control loop calls when event_fd() is readable.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "datapath/pipeline/coordinator.h"

namespace dnsproxy::datapath::agent {

struct BatchResult {
  uint64_t batch_id = 0;
  bool plumbed = false;  // every mapping of the batch is in L3 policy
  std::string error;     // why not, when !plumbed
};

// The link to the agent, as the stats snapshot and the admin CLI show it.
enum class LinkState : uint8_t {
  kUp,          // batches are being answered
  kConnecting,  // never up yet (the first connection is still being tried)
  kDown,        // was up, lost; reconnecting, mappings kept until it is back
};
[[nodiscard]] std::string_view to_string(LinkState state) noexcept;

class Agent {
 public:
  virtual ~Agent() = default;

  // Hands `batch` to the agent; its result comes from poll() later.
  virtual void submit(pipeline::PlumbBatch batch) = 0;
  // Readable when poll() has something to do; the control loop waits on it.
  [[nodiscard]] virtual int event_fd() const noexcept = 0;
  // Does what is due at `now` and appends the batches that finished to `results`.
  virtual void poll(pipeline::Clock::time_point now, std::vector<BatchResult>& results) = 0;
  // Periodic housekeeping (the control loop's slow timer): expired plumbing is removed.
  virtual void expire(pipeline::Clock::time_point now) = 0;

  [[nodiscard]] virtual LinkState link_state() const noexcept = 0;
  [[nodiscard]] virtual std::string_view kind() const noexcept = 0;  // "embedded", "grpc"

  // use(name, value) for each of the agent's counters (the stats file's `control` section).
  using CounterVisitor = std::function<void(std::string_view name, uint64_t value)>;
  virtual void for_each_counter(const CounterVisitor& use) const = 0;
};

}  // namespace dnsproxy::datapath::agent
