// The reference agent's side of the Policy stream (proto/dnsproxy/v1/agent.proto, "Policy"): the
// resources of its --policy file (datapath/agent/policy_resources.h), and per stream what that
// proxy holds. Each stream starts with the difference from the versions the proxy says it holds
// (sent even when empty, so the proxy knows it is in sync); after that each change of the policy
// (SIGHUP) is sent as the difference from what the proxy last ACKed. One update is outstanding at
// a time; a NACK is logged with its detail and counted, and what the proxy holds stays as it was.
//
// gRPC's synchronous API, like the Mappings stream: the stream's handler thread sends, a second
// thread reads the proxy's ACKs and NACKs (gRPC allows one reader and one writer at a time).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>

#include <grpcpp/grpcpp.h>

#include "common/counters.h"
#include "datapath/agent/policy_resources.h"
#include "dnsproxy/v1/agent.grpc.pb.h"
#include "tools/dnsproxy-agent/mapping_service.h"

namespace dnsproxy::agent_tool {

class PolicyStreams {
 public:
  // `counters` are used under `counters_mutex` (shared with the Mappings side and the main
  // thread). nack_next_update: --nack-next-update.
  PolicyStreams(datapath::agent::PolicyResources resources, CounterSet<LinkCounter>& counters,
                std::mutex& counters_mutex, bool nack_next_update);

  // Main thread: the policy changed (SIGHUP); every stream sends its proxy the difference.
  void update(datapath::agent::PolicyResources resources);

  // One Policy stream, until the proxy ends it or the server shuts down.
  grpc::Status serve(grpc::ServerContext* context,
                     grpc::ServerReaderWriter<v1::PolicyResponse, v1::PolicyRequest>* stream);

 private:
  struct Stream;
  void read_answers(Stream& stream,
                    grpc::ServerReaderWriter<v1::PolicyResponse, v1::PolicyRequest>& rpc);
  static void spoil(v1::PolicyResponse& update, const datapath::agent::PolicyResources& resources);
  void count(LinkCounter counter, uint64_t n = 1);

  CounterSet<LinkCounter>& counters_;
  std::mutex& counters_mutex_;
  std::atomic<bool> nack_next_update_;
  std::atomic<uint64_t> next_nonce_{1};

  std::mutex mutex_;  // the policy and its generation
  std::condition_variable changed_;
  std::shared_ptr<const datapath::agent::PolicyResources> resources_;
  uint64_t generation_ = 1;
};

}  // namespace dnsproxy::agent_tool
