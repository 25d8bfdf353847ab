// The gRPC agent link (DESIGN.md 7, issue 12): the Agent seam's second implementation, for an
// external agent (the reference one is dnsproxy-agent) reached over a unix socket. The agent owns
// the pinned BPF maps; this side only sends what the proxy learned and takes the ACKs.
//
//   submit(batch)  -> kept until its ACK; written to the Mappings stream at once when the link is
//                     up, else when it is up again (in submit order, so batch ids still increase
//                     on each stream)
//   agent's ACK    -> poll() reports the batch plumbed (every mapping PLUMBED) or failed
//   stream ends    -> the link is down (logged once, counted); batches unanswered are kept and
//                     sent again on the next stream (the agent's plumbing is idempotent), and the
//                     link reconnects with jittered exponential backoff (grpc_backoff.h)
//
// While the link is down nothing is reported for the kept batches, so their parked responses
// follow --max-delay / --on-max-delay on the workers, as for any slow agent; names plumbed before
// are released at once without asking (the PlumbedSet), and the agent's allow map, which outlives
// it, keeps their connections working. At most `max_kept_mappings` mappings are kept: beyond it
// the oldest batches are dropped and reported failed (counted).
//
// The Policy stream (with `install` set): opened beside Mappings on each connection, its first
// request the versions of the policy held (`policy`: the persisted one, or none), so the agent
// sends only the difference. Every response is applied whole to a copy of the state
// (policy_resources.h) and handed to `install`; only when both succeed does it become the state
// and is ACKed, otherwise it is NACKed with the reason (logged once, counted) and the last good
// policy stays. The link is one connection: when either stream ends, both go and the link
// reconnects.
//
// Each connection is a socket this side connects itself: the agent's uid is checked with
// SO_PEERCRED on it (anyone but --agent-uid is refused, logged, counted) before gRPC gets it
// (grpc::CreateCustomInsecureChannelFromFd), with HTTP/2 keepalive, so a hung agent (stopped,
// not crashed) is noticed within keepalive time + timeout.
//
// Threading: gRPC's callback (reactor) API, so nothing here blocks the control loop. The
// reactions run on gRPC's threads; they post what arrived (initial metadata, ACKs, the end of
// the stream) to a mailbox under a mutex and ring an eventfd. event_fd() is an epoll fd over that
// eventfd and the reconnect timer, and poll() answers both. submit(), poll() and the rest:
// control thread only.
#pragma once

#include <sys/types.h>

#include <array>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/counters.h"
#include "common/result.h"
#include "datapath/agent/agent.h"
#include "datapath/agent/grpc_backoff.h"
#include "datapath/agent/grpc_codec.h"
#include "datapath/agent/grpc_socket.h"
#include "datapath/agent/policy_resources.h"

namespace dnsproxy::datapath::agent {

struct GrpcAgentConfig {
  std::string target;      // "unix:PATH" (--agent)
  IdentityOf identity_of;  // each mapping's source identity
  uid_t agent_uid = 0;     // --agent-uid: the only uid accepted at the other end of the socket
  // Mappings of the batches kept unanswered (waiting for the link, or sent and not ACKed): 64 Ki
  // names cover minutes of new names on a busy node at some MB; the oldest go first beyond it.
  size_t max_kept_mappings = 65536;
  BackoffConfig backoff;
  // The policy held at start, and what puts an accepted one in force (control thread, from
  // poll()); its failure NACKs the update. No install: no Policy stream.
  PolicyState policy;
  std::function<Result<void>(const PolicyState&)> install;
};

enum class GrpcAgentCounter : uint8_t {
  kBatchesSent,              // batches written to a stream (a kept one again on each new stream)
  kMappingsSent,             // mappings in them
  kBatchesAcked,             // ACKs with every mapping plumbed
  kBatchesNacked,            // ACKs with a mapping not plumbed (the batch is reported failed)
  kBatchesKept,              // batches submitted while the link was not up (sent once it is)
  kBatchesInterrupted,       // batches unanswered when their stream ended (sent again on the next)
  kBatchesDropped,           // the oldest kept batches, dropped beyond max_kept_mappings (failed)
  kMappingsDropped,          // mappings in them
  kUnknownAcks,              // ACKs for no batch in flight
  kLinkUp,                   // transitions to up
  kLinkDown,                 // transitions from up to down
  kConnectAttempts,          // connections tried
  kConnectFailed,            // ... that could not connect (no socket file, nobody listening)
  kPeerRefused,              // ... whose peer's uid was not agent_uid (closed before any gRPC)
  kStreamsFailed,            // ... whose stream ended before it was up (the agent refused it)
  kBatchesWaiting,           // a gauge: the batches kept unanswered now (0: resynced)
  kPolicyUpdatesAcked,       // policy responses applied and ACKed
  kPolicyUpdatesNacked,      // ... refused (invalid, or not installed) and NACKed
  kPolicyResourcesReceived,  // resources in the responses (a resync of nothing: 0)
  kPolicyResourcesRemoved,   // removals in them
  kCount,
};
constexpr std::array<std::string_view, 20> counter_names(GrpcAgentCounter) {
  return {"link_batches_sent",
          "link_mappings_sent",
          "link_batches_acked",
          "link_batches_nacked",
          "link_batches_kept",
          "link_batches_interrupted",
          "link_batches_dropped",
          "link_mappings_dropped",
          "link_unknown_acks",
          "link_up",
          "link_down",
          "link_connect_attempts",
          "link_connect_failed",
          "link_peer_refused",
          "link_streams_failed",
          "link_batches_waiting",
          "policy_updates_acked",
          "policy_updates_nacked",
          "policy_resources_received",
          "policy_resources_removed"};
}

class GrpcAgent final : public Agent {
 public:
  // Fails only on a target that is not "unix:PATH" or when the fds cannot be made. Nothing has to
  // listen yet: the first connection is tried here, and the link keeps trying until it is up.
  [[nodiscard]] static Result<std::unique_ptr<GrpcAgent>> create(GrpcAgentConfig config);
  ~GrpcAgent() override;  // cancels every stream and waits for gRPC to finish with them

  void submit(pipeline::PlumbBatch batch) override;
  [[nodiscard]] int event_fd() const noexcept override { return epoll_.get(); }
  void poll(pipeline::Clock::time_point now, std::vector<BatchResult>& results) override;
  // The external agent expires its own allow map.
  void expire(pipeline::Clock::time_point) override {}
  [[nodiscard]] LinkState link_state() const noexcept override { return state_; }
  [[nodiscard]] std::string_view kind() const noexcept override { return "grpc"; }
  void for_each_counter(const CounterVisitor& use) const override { counters_.for_each(use); }

  [[nodiscard]] const CounterSet<GrpcAgentCounter>& counters() const noexcept { return counters_; }
  [[nodiscard]] const std::string& target() const noexcept { return config_.target; }
  // The policy held (last accepted), and why the last refused update was refused ("" if none).
  [[nodiscard]] const PolicyState& policy() const noexcept { return held_; }
  [[nodiscard]] const std::string& last_nack() const noexcept { return last_nack_; }

 private:
  class Stream;  // a stream of a connection, as the control thread handles it
  template <class Out, class In>
  class Reactor;  // ... and its reactor: Mappings or Policy
  using MappingsStream = Reactor<v1::MappingBatch, v1::BatchAck>;
  using PolicyStream = Reactor<v1::PolicyRequest, v1::PolicyResponse>;
  struct Mailbox;  // what the reactions post to the control thread
  struct Event;
  struct Kept {
    pipeline::PlumbBatch batch;
    bool in_flight = false;  // written to the stream that is the link now
  };

  GrpcAgent(GrpcAgentConfig config, std::string path, Fd epoll, Fd timer,
            std::unique_ptr<Mailbox> mailbox);
  void attempt();
  void start_stream(Fd socket, const PeerCredentials& peer);
  void handle(Event& event, pipeline::Clock::time_point now, std::vector<BatchResult>& results);
  void on_up(pipeline::Clock::time_point now);
  void on_ack(const v1::BatchAck& ack, std::vector<BatchResult>& results);
  void on_policy(const v1::PolicyResponse& response);
  void end_connection();
  void on_stream_over(const std::string& error, pipeline::Clock::time_point now);
  void send(Kept& kept);
  void drop_oldest_beyond_bound();
  void retry_later(const std::string& why);
  [[nodiscard]] bool sending() const noexcept;

  GrpcAgentConfig config_;
  std::string path_;                  // the socket's path
  Fd epoll_;                          // event_fd(): the mailbox's eventfd and timer_
  Fd timer_;                          // CLOCK_MONOTONIC timerfd: the next connection attempt
  std::unique_ptr<Mailbox> mailbox_;  // outlives every stream (the destructor waits for them)
  Backoff backoff_;
  std::vector<std::unique_ptr<Stream>> streams_;  // started, their OnDone not handled yet
  MappingsStream* current_ = nullptr;  // where batches go; gRPC keeps it until we release it
  PolicyStream* policy_ = nullptr;     // where policy ACKs go, likewise
  uint64_t link_stream_ = 0;           // the id of the Mappings stream that is the link (0: none)
  uint64_t policy_stream_ = 0;         // the id of its Policy stream (0: none)
  uint64_t next_stream_ = 1;
  pid_t agent_pid_ = 0;  // the peer of the last connection (SO_PEERCRED), for the log
  LinkState state_ = LinkState::kConnecting;
  pipeline::Clock::time_point down_since_{};
  std::string last_logged_failure_;  // each different reason logged once per outage
  std::map<uint64_t, Kept> kept_;    // unanswered batches by id, oldest first
  size_t kept_mappings_ = 0;
  std::vector<BatchResult> dropped_;  // reported by the next poll()
  PolicyState held_;                  // the policy accepted last (config_.policy at first)
  std::string last_nack_;
  CounterSet<GrpcAgentCounter> counters_;
};

}  // namespace dnsproxy::datapath::agent
