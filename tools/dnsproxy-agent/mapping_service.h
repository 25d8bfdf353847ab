// The reference agent's side of the Mappings stream (proto/dnsproxy/v1/agent.proto): each batch
// is written into the pinned allow map and only then ACKed, and the fault injection the tests of
// issue 12 use to play a slow, flaky or hung agent.
//
// gRPC's synchronous API, one thread per stream: an agent may block on its own work (and
// --ack-delay does). The maps and the counters are used under one mutex, shared with the main
// thread (expiry, stats).
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string_view>

#include <grpcpp/grpcpp.h>

#include "common/counters.h"
#include "datapath/agent/agent_maps.h"
#include "dnsproxy/v1/agent.grpc.pb.h"

namespace dnsproxy::agent_tool {

// Fault injection (tests only; every one off by default).
struct Faults {
  std::chrono::milliseconds ack_delay{0};  // --ack-delay MS: each ACK this late after its writes
  uint64_t drop_stream_after = 0;          // --drop-stream-after N: end each stream after N ACKs
  bool stop_answering = false;             // --stop-answering: read batches, never plumb or ACK
};

enum class LinkCounter : uint8_t {
  kConnectionsAccepted,  // connections from --proxy-uid, handed to gRPC
  kConnectionsRefused,   // connections from any other uid, closed before any gRPC
  kStreams,              // Mappings streams opened
  kBatchesAnswered,      // batches ACKed (after their map writes)
  kBatchesUnanswered,    // batches read and left unanswered (--stop-answering)
  kStreamsDropped,       // streams ended by --drop-stream-after
  kPolicyStreams,        // Policy streams opened
  kPolicyUpdatesSent,    // policy responses sent (the first of each stream even when empty)
  kPolicyResourcesSent,  // resources in them
  kPolicyAcks,           // ... ACKed by the proxy
  kPolicyNacks,          // ... NACKed (logged with the proxy's error detail)
  kPolicyReloadsFailed,  // SIGHUPs whose policy file was refused (the old policy stays)
  kCount,
};
constexpr std::array<std::string_view, 12> counter_names(LinkCounter) {
  return {"link_connections_accepted",
          "link_connections_refused",
          "link_streams",
          "link_batches_answered",
          "link_batches_unanswered",
          "link_streams_dropped",
          "policy_streams",
          "policy_updates_sent",
          "policy_resources_sent",
          "policy_acks",
          "policy_nacks",
          "policy_reloads_failed"};
}

class PolicyStreams;

// The AgentLink service: Mappings here, Policy handed to PolicyStreams (policy_streams.h).
class MappingService final : public v1::AgentLink::Service {
 public:
  MappingService(datapath::agent::AgentMaps& maps, CounterSet<LinkCounter>& counters,
                 std::mutex& mutex, Faults faults, PolicyStreams& policy)
      : maps_(maps), counters_(counters), mutex_(mutex), faults_(faults), policy_(policy) {}

  grpc::Status Mappings(grpc::ServerContext* context,
                        grpc::ServerReaderWriter<v1::BatchAck, v1::MappingBatch>* stream) override;
  grpc::Status Policy(
      grpc::ServerContext* context,
      grpc::ServerReaderWriter<v1::PolicyResponse, v1::PolicyRequest>* stream) override;

 private:
  [[nodiscard]] v1::BatchAck plumb(const v1::MappingBatch& batch);
  void count(LinkCounter counter);

  datapath::agent::AgentMaps& maps_;
  CounterSet<LinkCounter>& counters_;
  std::mutex& mutex_;  // maps_ and counters_
  const Faults faults_;
  PolicyStreams& policy_;
};

}  // namespace dnsproxy::agent_tool
