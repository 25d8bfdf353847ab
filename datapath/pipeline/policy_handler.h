// The policy handler: the worker's per-packet decision with policy on (issue 11). It implements
// datapath::PacketHandler, so datapath::Worker runs it exactly as it runs ForwardAllHandler.
//
// Query (client -> server): endpoint of the client address, identity of the server address, port,
// UDP -> Snapshot::decide.
//   allowed -> recorded in the QueryTracker, rewritten for the FIB's next hop, forwarded (or,
//              when that next hop has no neighbour entry yet, handed to the node's stack, which
//              resolves it; the same holds for every response released)
//   denied  -> REFUSED (or NXDOMAIN) written in place and turned around out of the ingress port;
//              one counter per deny reason
// Response (server -> client): QueryTracker::claim (unmatched, duplicate, late and question
// mismatches each dropped and counted), then the addresses on the answer's CNAME chain whose
// names (the question or the record's owner) one of the endpoint's toFQDNs selectors selects:
//   none, or every one plumbed and unexpired in the snapshot -> released at once (plumbed ones
//              whose plumbing the answer's TTL outlives are sent as refreshes, without a ticket)
//   otherwise -> the mappings go to the control thread (Channel::notices, never blocking) and the
//              frame is parked under a ticket until the ACK for that ticket comes back
//              (Channel::acks) or the max delay passes (released, or SERVFAIL if so configured)
//   --release-before-plumb (ablation) -> notified the same way, released at once.
// Bounds: at most max_parked frames parked; at the bound, or when the notice ring cannot take
// every mapping of the response, the response is dropped and counted (the client retries; in the
// first case the mappings are still sent, so the retry usually finds them plumbed). A response is
// never released before its mappings are plumbed except by the max delay or the ablation.
//
// Frame ownership: a parked frame is the handler's (ledger place kParked) from decide() returning
// park() until take_released() hands it back; the handler keeps its bytes span (the UMEM frame
// does not move) to write a SERVFAIL in place at the max delay.
//
// Threading: one handler per worker thread. It reads the snapshot only between begin_batch() and
// end_batch() (QSBR), shares the QueryTracker with every other worker, and talks to the control
// thread only through its Channel. No locks, no allocation after construction.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "common/counters.h"
#include "common/histogram.h"
#include "datapath/pipeline/channel.h"
#include "datapath/pipeline/query_tracker.h"
#include "datapath/worker.h"
#include "dns/answer_writer.h"
#include "dns/parse_error.h"
#include "policy/snapshot.h"

namespace dnsproxy::datapath::pipeline {

// Why the policy handler drops a packet; one counter each (the worker counts them).
enum class PolicyDrop : uint8_t {
  kMalformedQuery,     // the DNS codec rejected a query (why: malformed_query_<reason> counters)
  kMalformedResponse,  // ... a response (malformed_response_<reason>)
  kBadOffsets,         // dns_steer's offsets or the UDP length do not fit the packet
  kNotForwarded,       // the FIB has no next hop (local, unreachable, MTU, forwarding off)
  kTtlExceeded,        // IPv4 TTL / IPv6 hop limit <= 1
  kTrackerFull,        // an allowed query the tracker had no room for (its answer would be refused)
  kUnmatched,          // a response to no query we forwarded (address, port or ID differ)
  kDuplicate,          // a second response to a query already answered
  kLate,               // a response after the query's tracker lifetime
  kQuestionMismatch,   // addresses, ports and ID match a query, its question does not
  kParkedFull,         // the response needed plumbing and max_parked frames were parked already
  kNoticeRingFull,     // the response needed plumbing and the ring to the control thread was full
  kCount,
};

// What the policy handler did, besides drops.
enum class PolicyCounter : uint8_t {
  kAllowed,              // queries forwarded
  kDeniedUnknownSource,  // queries answered with the deny rcode, one counter per reason
  kDeniedNoRuleForPort,
  kDeniedServerNotSelected,
  kDeniedNameNotAllowed,
  kResponses,            // responses that answer a query we forwarded
  kReleasedNoSelector,   // ... released at once: no address any toFQDNs selector selects
  kReleasedPlumbed,      // ... released at once: every such address plumbed already
  kReleasedBeforePlumb,  // ... released at once by --release-before-plumb
  kParked,               // ... parked until plumbed
  kReleasedOnAck,        // parked frames released by their ACK
  kReleasedAtMaxDelay,   // parked frames released at the max delay without an ACK
  kServfailAtMaxDelay,   // ... turned into SERVFAIL instead (--on-max-delay servfail)
  kNotices,              // mappings sent to the control thread
  kMappingsTruncated,    // addresses beyond kMaxNotices of one response (not plumbed)
  kLateAcks,             // ACKs for tickets released already (at the max delay)
  // Why the codec rejected a query: one counter per dns::ParseError, in its order (the reasons
  // behind the malformed_query drop; parse_error_counter() picks one). Then the same for
  // responses (malformed_response).
  kMalformedQueryReasons,
  kMalformedResponseReasons = kMalformedQueryReasons + dns::kParseErrorCount,
  kCount = kMalformedResponseReasons + dns::kParseErrorCount,
};

[[nodiscard]] constexpr PolicyCounter parse_error_counter(bool response,
                                                          dns::ParseError error) noexcept {
  const auto first = static_cast<size_t>(response ? PolicyCounter::kMalformedResponseReasons
                                                  : PolicyCounter::kMalformedQueryReasons);
  return static_cast<PolicyCounter>(first + static_cast<size_t>(error));
}

constexpr std::array<std::string_view, 12> counter_names(PolicyDrop) {
  return {"malformed_query",    "malformed_response",
          "bad_offsets",        "not_forwarded",
          "ttl_exceeded",       "tracker_full",
          "response_unmatched", "response_duplicate",
          "response_late",      "response_question_mismatch",
          "parked_full",        "notice_ring_full"};
}

namespace detail {
// "malformed_query_<reason>" then "malformed_response_<reason>" for every dns::ParseError, built
// at compile time from dns::counter_names(ParseError), so each reason is still spelled once. The
// counter names below point into this static array.
inline constexpr std::string_view kMalformedPrefixes[] = {"malformed_query_",
                                                          "malformed_response_"};
constexpr size_t malformed_names_size() {
  size_t size = 0;
  for (std::string_view prefix : kMalformedPrefixes)
    for (std::string_view reason : dns::counter_names(dns::ParseError{}))
      size += prefix.size() + reason.size();
  return size;
}
inline constexpr auto kMalformedNames = [] {
  std::array<char, malformed_names_size()> chars{};
  size_t at = 0;
  for (std::string_view prefix : kMalformedPrefixes)
    for (std::string_view reason : dns::counter_names(dns::ParseError{})) {
      for (char c : prefix) chars[at++] = c;
      for (char c : reason) chars[at++] = c;
    }
  return chars;
}();
}  // namespace detail

// (kCount spelled out: kCounterCount needs this function declared already.)
constexpr std::array<std::string_view, static_cast<size_t>(PolicyCounter::kCount)> counter_names(
    PolicyCounter) {
  std::array<std::string_view, static_cast<size_t>(PolicyCounter::kCount)> names = {
      "allowed",
      "denied_unknown_source",
      "denied_no_rule_for_port",
      "denied_server_not_selected",
      "denied_name_not_allowed",
      "responses",
      "released_no_selector",
      "released_plumbed",
      "released_before_plumb",
      "responses_parked",
      "released_on_ack",
      "released_at_max_delay",
      "servfail_at_max_delay",
      "notices",
      "mappings_truncated",
      "late_acks"};
  size_t at = 0;
  size_t slot = static_cast<size_t>(PolicyCounter::kMalformedQueryReasons);
  for (std::string_view prefix : detail::kMalformedPrefixes)
    for (std::string_view reason : dns::counter_names(dns::ParseError{})) {
      names[slot++] =
          std::string_view(detail::kMalformedNames.data() + at, prefix.size() + reason.size());
      at += prefix.size() + reason.size();
    }
  return names;
}

struct PolicyHandlerConfig {
  dns::ErrorAnswer deny_rcode = dns::ErrorAnswer::kRefused;  // --deny-rcode
  std::chrono::milliseconds max_delay{100};                  // --max-delay
  bool servfail_at_max_delay = false;                        // --on-max-delay servfail
  bool release_before_plumb = false;                         // --release-before-plumb
  uint32_t max_parked = 1024;                                // --max-parked, per worker
  dns::AnswerConfig answers;
};

class PolicyHandler {
 public:
  using DropReason = PolicyDrop;
  using Verdict = datapath::Verdict<PolicyDrop>;
  using Released = datapath::Released<PolicyDrop>;
  // Mappings one response may send; more are counted (kMappingsTruncated) and not plumbed.
  static constexpr size_t kMaxNotices = 64;
  // A plumbed address is sent again (a refresh, no parking) when an answer's TTL outlives its
  // plumbing by more than this; below the agent's grace period (10 s), so a client never holds
  // an address longer than the allow map does, and a hot name refreshes about once a second.
  static constexpr std::chrono::seconds kRefreshSlack{1};

  // Cold path. Everything passed in outlives the handler; `reader` is this worker's QSBR slot.
  PolicyHandler(PolicyHandlerConfig config, const policy::SnapshotStore& store,
                policy::QsbrDomain::Reader reader, QueryTracker& tracker, Channel& channel,
                CounterSet<PolicyCounter>& counters);

  [[nodiscard]] Verdict decide(const RxPacket& rx) noexcept;
  void begin_batch() noexcept { snapshot_ = store_.acquire(); }
  void end_batch() noexcept;
  void offline() noexcept { reader_.offline(); }
  void online() noexcept;
  void sweep(uint64_t now_ns) noexcept;
  [[nodiscard]] uint32_t take_released(std::span<Released> out) noexcept;
  [[nodiscard]] int wake_fd() const noexcept { return channel_.wake.fd(); }

  [[nodiscard]] uint32_t parked() const noexcept { return next_ticket_ - oldest_ticket_; }
  // Per response released by its ACK: from its arrival to the sweep that saw the ACK (the wait
  // for plumbing). Written by this worker, read by the control thread.
  [[nodiscard]] const LatencyHistogram& release_on_ack() const noexcept { return release_on_ack_; }

 private:
  struct Flow;
  enum class Slot : uint8_t { kFree, kWaiting, kReady };
  struct Parked {
    Packet frame;
    std::span<std::byte> bytes;
    uint32_t port = 0;
    Verdict release;  // forward to the egress port, or to the node's stack (no neighbour yet)
    uint32_t ticket = 0;
    uint16_t dns_length = 0;
    Slot state = Slot::kFree;
    uint64_t arrived_ns = 0;
    uint64_t deadline_ns = 0;
  };

  [[nodiscard]] Verdict on_query(const RxPacket& rx, const dns_steer_meta& meta,
                                 const Flow& flow) noexcept;
  [[nodiscard]] Verdict on_response(const RxPacket& rx, const dns_steer_meta& meta,
                                    const Flow& flow) noexcept;
  // Stages the mappings of an accepted response that need plumbing, or a refresh of their
  // plumbing (staged_count_ counts both); returns how many need plumbing (the response waits
  // only for those). `selected`: whether any address on the chain is under a toFQDNs selector.
  [[nodiscard]] size_t stage_mappings(const dns::Message& response, uint32_t endpoint_id,
                                      std::span<const uint8_t> qname, uint64_t now_ns,
                                      bool& selected) noexcept;
  // Pushes the staged notices whole (all or none), tagged with `ticket` and `flags`.
  [[nodiscard]] bool push_staged(uint32_t ticket, uint8_t flags) noexcept;
  [[nodiscard]] Parked& slot_of(uint32_t ticket) noexcept {
    return parked_[ticket % parked_.size()];
  }
  [[nodiscard]] Verdict time_out(Parked& parked) noexcept;

  PolicyHandlerConfig config_;
  const policy::SnapshotStore& store_;
  policy::QsbrDomain::Reader reader_;
  QueryTracker& tracker_;
  Channel& channel_;
  CounterSet<PolicyCounter>& counters_;
  const policy::Snapshot* snapshot_ = nullptr;  // between begin_batch and end_batch only
  uint64_t now_ns_ = 0;                         // from the last sweep
  bool notified_ = false;                       // this batch pushed notices

  std::array<MappingNotice, kMaxNotices> staged_;
  size_t staged_count_ = 0;

  // Parked frames in ticket order (they time out in that order: one max delay for all); a
  // ticket's slot is ticket % max_parked, live tickets are [oldest_ticket_, next_ticket_).
  std::vector<Parked> parked_;
  LatencyHistogram release_on_ack_;
  uint32_t oldest_ticket_ = 0;
  uint32_t next_ticket_ = 0;
  std::vector<uint32_t> ready_;  // ACKed tickets waiting for take_released, a ring
  uint32_t ready_head_ = 0;
  uint32_t ready_tail_ = 0;
};

static_assert(PacketHandler<PolicyHandler>);

}  // namespace dnsproxy::datapath::pipeline
