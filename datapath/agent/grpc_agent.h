// The gRPC agent link (DESIGN.md 7, issue 12): the Agent seam's second implementation, for an
// external agent (the reference one is dnsproxy-agent) reached over a unix socket. The agent owns
// the pinned BPF maps; this side only sends what the proxy learned and takes the ACKs.
//
//   submit(batch)  -> one MappingBatch on the Mappings stream (queued; one write in flight)
//   agent's ACK    -> poll() reports the batch plumbed (every mapping PLUMBED) or failed
//   stream ends    -> poll() reports the link down once, and every batch still unanswered failed
//
// Threading: gRPC's callback (reactor) API, so nothing here blocks the control loop. The
// reactions run on gRPC's threads; they hand what arrived (initial metadata, ACKs, the end of the
// stream) to the control thread under a mutex and ring an eventfd, event_fd(), which the control
// loop waits on and answers with poll(). submit(), poll() and the rest: control thread only.
//
// Stage 1 of issue 12: one stream for the daemon's life. Once it is down, batches are reported
// failed at once (their parked responses follow --on-max-delay), and names plumbed before keep
// being released without a round trip. Reconnecting is the next stage.
#pragma once

#include <array>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/counters.h"
#include "common/result.h"
#include "datapath/agent/agent.h"
#include "datapath/agent/grpc_codec.h"
#include "datapath/pipeline/channel.h"

namespace dnsproxy::datapath::agent {

struct GrpcAgentConfig {
  std::string target;      // "unix:PATH" (--agent)
  IdentityOf identity_of;  // each mapping's source identity
};

enum class GrpcAgentCounter : uint8_t {
  kBatchesSent,     // batches written to the stream
  kMappingsSent,    // mappings in them
  kBatchesAcked,    // ACKs with every mapping plumbed
  kBatchesNacked,   // ACKs with a mapping not plumbed (the batch is reported failed)
  kBatchesLost,     // batches unanswered when the stream ended
  kBatchesRefused,  // batches submitted while the link was down (failed at once)
  kUnknownAcks,     // ACKs for no batch in flight
  kLinkUp,          // transitions to up
  kLinkDown,        // transitions to down
  kCount,
};
constexpr std::array<std::string_view, 9> counter_names(GrpcAgentCounter) {
  return {"link_batches_sent", "link_mappings_sent",   "link_batches_acked", "link_batches_nacked",
          "link_batches_lost", "link_batches_refused", "link_unknown_acks",  "link_up",
          "link_down"};
}

// The socket path of a "unix:PATH" target; an error naming the flag otherwise.
[[nodiscard]] Result<std::string> unix_socket_path(std::string_view target);

class GrpcAgent final : public Agent {
 public:
  // Fails when the target is not "unix:PATH" or nothing is listening there; opens the stream.
  [[nodiscard]] static Result<std::unique_ptr<GrpcAgent>> create(GrpcAgentConfig config);
  ~GrpcAgent() override;  // cancels the stream and waits for gRPC to finish with it

  void submit(pipeline::PlumbBatch batch) override;
  [[nodiscard]] int event_fd() const noexcept override { return wake_.fd(); }
  void poll(pipeline::Clock::time_point now, std::vector<BatchResult>& results) override;
  // The external agent expires its own allow map.
  void expire(pipeline::Clock::time_point) override {}
  [[nodiscard]] LinkState link_state() const noexcept override { return state_; }
  [[nodiscard]] std::string_view kind() const noexcept override { return "grpc"; }
  void for_each_counter(const CounterVisitor& use) const override { counters_.for_each(use); }

  [[nodiscard]] const CounterSet<GrpcAgentCounter>& counters() const noexcept { return counters_; }
  [[nodiscard]] const std::string& target() const noexcept { return config_.target; }

 private:
  class Link;  // the channel, the stub and the stream's reactor (grpc_agent.cpp)
  GrpcAgent(GrpcAgentConfig config, pipeline::EventFd wake);

  GrpcAgentConfig config_;
  pipeline::EventFd wake_;  // rung by the reactions; read by poll()
  std::unique_ptr<Link> link_;
  LinkState state_ = LinkState::kConnecting;
  std::string down_reason_;
  std::map<uint64_t, std::vector<std::string>> in_flight_;  // batch id -> its mappings' names
  std::vector<BatchResult> refused_;  // submitted while down, reported by the next poll()
  CounterSet<GrpcAgentCounter> counters_;
};

}  // namespace dnsproxy::datapath::agent
