#include "datapath/pipeline/policy_handler.h"

#include <cstring>

#include "datapath/checksum.h"
#include "datapath/forward.h"
#include "datapath/frame_layout.h"
#include "datapath/pipeline/reply.h"
#include "dns/message.h"
#include "dns/name_text.h"

namespace dnsproxy::datapath::pipeline {

// The addresses and ports of a packet as dns_steer saw them, and where its DNS message ends.
struct PolicyHandler::Flow {
  policy::IpAddress src;
  policy::IpAddress dst;
  uint16_t sport = 0;
  uint16_t dport = 0;
  size_t dns_length = 0;  // from the UDP length: Ethernet padding is not DNS
};

namespace {

using namespace frame;  // datapath/frame_layout.h

uint16_t load_u16(std::span<const std::byte> b, size_t at) noexcept {
  return static_cast<uint16_t>(std::to_integer<unsigned>(b[at]) << 8 |
                               std::to_integer<unsigned>(b[at + 1]));
}

template <size_t N>
std::span<const uint8_t, N> address_at(std::span<const std::byte> b, size_t at) noexcept {
  return std::span<const uint8_t, N>(reinterpret_cast<const uint8_t*>(b.data()) + at, N);
}

std::span<uint8_t> as_u8(std::span<std::byte> b) noexcept {
  return {reinterpret_cast<uint8_t*>(b.data()), b.size()};
}

uint64_t ms_of(uint64_t ns) noexcept {
  return ns / 1'000'000;
}

policy::Clock::time_point time_of(uint64_t ns) noexcept {
  return policy::Clock::time_point(
      std::chrono::duration_cast<policy::Clock::duration>(std::chrono::nanoseconds(ns)));
}

PolicyCounter deny_counter(policy::DenyReason reason) noexcept {
  switch (reason) {
    case policy::DenyReason::kUnknownSource:
      return PolicyCounter::kDeniedUnknownSource;
    case policy::DenyReason::kNoRuleForPort:
      return PolicyCounter::kDeniedNoRuleForPort;
    case policy::DenyReason::kServerNotSelected:
      return PolicyCounter::kDeniedServerNotSelected;
    case policy::DenyReason::kNameNotAllowed:
      break;
  }
  return PolicyCounter::kDeniedNameNotAllowed;
}

// Where a frame the policy let through goes after its forwarding rewrite (queries and released
// responses alike): its egress port; the node's stack when its next hop has no neighbour entry
// yet (the stack resolves it, so the next packets to that hop are forwarded here); or a drop
// with the reason the rewrite failed.
PolicyHandler::Verdict onward(ForwardVerdict verdict, const dns_steer_meta& meta) noexcept {
  switch (verdict) {
    case ForwardVerdict::kForward:
      return PolicyHandler::Verdict::forward(meta.egress_ifindex);
    case ForwardVerdict::kToKernel:
      return PolicyHandler::Verdict::to_kernel(meta.l3_offset);
    case ForwardVerdict::kNotForwarded:
      return PolicyHandler::Verdict::dropped(PolicyDrop::kNotForwarded);
    case ForwardVerdict::kTtlExceeded:
      return PolicyHandler::Verdict::dropped(PolicyDrop::kTtlExceeded);
    case ForwardVerdict::kMalformed:
    case ForwardVerdict::kShortDns:
      break;
  }
  return PolicyHandler::Verdict::dropped(PolicyDrop::kBadOffsets);
}

}  // namespace

PolicyHandler::PolicyHandler(PolicyHandlerConfig config, const policy::SnapshotStore& store,
                             policy::QsbrDomain::Reader reader, QueryTracker& tracker,
                             Channel& channel, CounterSet<PolicyCounter>& counters)
    : config_(config),
      store_(store),
      reader_(std::move(reader)),
      tracker_(tracker),
      channel_(channel),
      counters_(counters),
      parked_(config.max_parked == 0 ? 1 : config.max_parked),
      ready_(parked_.size()) {}

PolicyHandler::Verdict PolicyHandler::decide(const RxPacket& rx) noexcept {
  const dns_steer_meta meta = load_steer_meta(rx.bytes.data());
  const std::span<const std::byte> b = rx.bytes;
  const bool ipv6 = (meta.flags & DNS_STEER_META_IPV6) != 0;
  const size_t l3 = meta.l3_offset;
  const size_t l4 = size_t{meta.dns_offset} - kUdpHeader;
  if (l3 < kEthernetHeader || meta.dns_offset < kUdpHeader ||
      l4 < l3 + (ipv6 ? kIpv6Header : kIpv4MinHeader) || size_t{meta.dns_offset} > b.size())
    return Verdict::dropped(PolicyDrop::kBadOffsets);
  Flow flow;
  const size_t udp_length = load_u16(b, l4 + 4);
  if (udp_length < kUdpHeader + dns::kHeaderSize || l4 + udp_length > b.size())
    return Verdict::dropped(PolicyDrop::kBadOffsets);
  flow.dns_length = udp_length - kUdpHeader;
  if (ipv6) {
    flow.src = policy::IpAddress::v6(address_at<16>(b, l3 + 8));
    flow.dst = policy::IpAddress::v6(address_at<16>(b, l3 + 24));
  } else {
    flow.src = policy::IpAddress::v4(address_at<4>(b, l3 + 12));
    flow.dst = policy::IpAddress::v4(address_at<4>(b, l3 + 16));
  }
  flow.sport = load_u16(b, l4);
  flow.dport = load_u16(b, l4 + 2);
  return (meta.flags & DNS_STEER_META_RESPONSE) != 0 ? on_response(rx, meta, flow)
                                                     : on_query(rx, meta, flow);
}

PolicyHandler::Verdict PolicyHandler::on_query(const RxPacket& rx, const dns_steer_meta& meta,
                                               const Flow& flow) noexcept {
  const std::span<uint8_t> payload = as_u8(rx.bytes.subspan(meta.dns_offset, flow.dns_length));
  const auto query = dns::parse_query(payload);
  if (!query) {
    counters_.add(parse_error_counter(false, query.error()));
    return Verdict::dropped(PolicyDrop::kMalformedQuery);
  }
  std::array<uint8_t, dns::kMaxNameWireLength> qname;
  const size_t qname_length = dns::copy_question_name(*query, qname);
  const std::span<const uint8_t> name(qname.data(), qname_length);
  const policy::Decision decision =
      snapshot_->decide(flow.src, flow.dst, flow.dport, policy::Protocol::kUdp, name);

  if (!decision.allowed) {
    counters_.add(deny_counter(decision.reason));
    const size_t answer =
        dns::write_error_answer(payload, *query, config_.deny_rcode, config_.answers);
    const uint32_t length = turn_around(rx.bytes, meta, answer);
    if (length == 0) return Verdict::dropped(PolicyDrop::kBadOffsets);  // checked above: never
    return Verdict::reply(length);
  }

  const QueryKey key{
      flow.src,    flow.dst,
      flow.sport,  flow.dport,
      query->id(), tracker_.question_digest(name, query->question.qtype, query->question.qclass)};
  const Verdict forward = onward(rewrite_for_forwarding(rx.bytes, meta), meta);
  if (forward.kind == VerdictKind::kDrop) return forward;
  if (tracker_.insert(key, ms_of(rx.now_ns)) != TrackOutcome::kInserted)
    return Verdict::dropped(PolicyDrop::kTrackerFull);
  counters_.add(PolicyCounter::kAllowed);
  return forward;
}

PolicyHandler::Verdict PolicyHandler::on_response(const RxPacket& rx, const dns_steer_meta& meta,
                                                  const Flow& flow) noexcept {
  const std::span<uint8_t> payload = as_u8(rx.bytes.subspan(meta.dns_offset, flow.dns_length));
  const auto response = dns::parse_response(payload);
  if (!response) {
    counters_.add(parse_error_counter(true, response.error()));
    return Verdict::dropped(PolicyDrop::kMalformedResponse);
  }
  std::array<uint8_t, dns::kMaxNameWireLength> qname;
  const size_t qname_length = dns::copy_question_name(*response, qname);
  const std::span<const uint8_t> name(qname.data(), qname_length);
  const QueryKey key{
      flow.dst,
      flow.src,
      flow.dport,
      flow.sport,
      response->id(),
      tracker_.question_digest(name, response->question.qtype, response->question.qclass)};
  switch (tracker_.claim(key, ms_of(rx.now_ns))) {
    case TrackOutcome::kClaimed:
      break;
    case TrackOutcome::kDuplicate:
      return Verdict::dropped(PolicyDrop::kDuplicate);
    case TrackOutcome::kLate:
      return Verdict::dropped(PolicyDrop::kLate);
    case TrackOutcome::kQuestionMismatch:
      return Verdict::dropped(PolicyDrop::kQuestionMismatch);
    case TrackOutcome::kInserted:
    case TrackOutcome::kFull:
    case TrackOutcome::kUnmatched:
      return Verdict::dropped(PolicyDrop::kUnmatched);
  }
  counters_.add(PolicyCounter::kResponses);

  // Rewritten for the next hop now, so a frame that cannot be forwarded is never parked.
  const Verdict release = onward(rewrite_for_forwarding(rx.bytes, meta), meta);
  if (release.kind == VerdictKind::kDrop) return release;

  const policy::EndpointInfo* endpoint = snapshot_->endpoints->find(flow.dst);
  const policy::EndpointRules* rules =
      endpoint == nullptr ? nullptr : snapshot_->rules->find(endpoint->endpoint_id);
  if (rules == nullptr || !rules->has_to_fqdns) {
    counters_.add(PolicyCounter::kReleasedNoSelector);
    return release;
  }
  bool selected = false;
  if (stage_mappings(*response, endpoint->endpoint_id, name, rx.now_ns, selected) == 0) {
    // Every selected address is plumbed now; those whose plumbing this answer's TTL outlives
    // are staged as refreshes, sent without a ticket (a full ring leaves them to the next answer).
    if (staged_count_ > 0) (void)push_staged(0, MappingNotice::kNoTicket);
    counters_.add(selected ? PolicyCounter::kReleasedPlumbed : PolicyCounter::kReleasedNoSelector);
    return release;
  }

  if (config_.release_before_plumb) {
    if (!push_staged(0, MappingNotice::kNoTicket))
      return Verdict::dropped(PolicyDrop::kNoticeRingFull);
    counters_.add(PolicyCounter::kReleasedBeforePlumb);
    return release;
  }
  if (parked() >= parked_.size()) {
    // Still plumb what it learned, so the client's retry is likely released at once.
    (void)push_staged(0, MappingNotice::kNoTicket);
    return Verdict::dropped(PolicyDrop::kParkedFull);
  }
  const uint32_t ticket = next_ticket_;
  if (!push_staged(ticket, 0)) return Verdict::dropped(PolicyDrop::kNoticeRingFull);
  ++next_ticket_;
  Parked& slot = slot_of(ticket);
  slot = Parked{
      rx.frame,
      rx.bytes,
      rx.port,
      release,
      ticket,
      static_cast<uint16_t>(flow.dns_length),
      Slot::kWaiting,
      rx.now_ns,
      rx.now_ns + static_cast<uint64_t>(std::chrono::nanoseconds(config_.max_delay).count())};
  counters_.add(PolicyCounter::kParked);
  return Verdict::park();
}

size_t PolicyHandler::stage_mappings(const dns::Message& response, uint32_t endpoint_id,
                                     std::span<const uint8_t> qname, uint64_t now_ns,
                                     bool& selected) noexcept {
  const policy::EndpointRules& rules = *snapshot_->rules->find(endpoint_id);
  const policy::Clock::time_point now = time_of(now_ns);
  const bool qname_selected = rules.to_fqdns.matches(qname);
  staged_count_ = 0;
  size_t unplumbed = 0;
  std::array<uint8_t, dns::kMaxNameWireLength> owner;
  dns::AnswerWalk walk(response);
  dns::AnswerRecord record;
  while (walk.next(record)) {
    if (!record.on_chain || record.type == dns::RecordType::kCname) continue;
    const policy::IpAddress ip = record.type == dns::RecordType::kA
                                     ? policy::IpAddress::v4(record.rdata.first<4>())
                                     : policy::IpAddress::v6(record.rdata.first<16>());
    // The names this address is known under: the question, and the owner at the chain's end.
    const size_t owner_length = dns::copy_name(response.wire, record.owner_offset, owner);
    dns::lowercase_ascii(std::span(owner).first(owner_length));
    const std::span<const uint8_t> owner_name(owner.data(), owner_length);
    const bool same =
        owner_length == qname.size() && std::memcmp(owner.data(), qname.data(), owner_length) == 0;
    const bool owner_selected = !same && rules.to_fqdns.matches(owner_name);
    if (!qname_selected && !owner_selected) continue;
    selected = true;
    // A plumbed address needs no wait, but the client may use it for this answer's TTL: when
    // that outlives the plumbing by more than kRefreshSlack, the mapping is sent again so the
    // agent extends it (the allow map's grace period covers the refresh's round trip).
    const policy::Clock::time_point until = snapshot_->plumbed_until(endpoint_id, ip);
    const bool plumbed = until > now;
    if (plumbed && now + std::chrono::seconds(record.chain_ttl) <= until + kRefreshSlack) continue;
    if (!plumbed) ++unplumbed;
    for (const std::span<const uint8_t> n : {qname, owner_name}) {
      if ((n.data() == qname.data() && !qname_selected) ||
          (n.data() == owner_name.data() && !owner_selected))
        continue;
      if (staged_count_ == kMaxNotices) {
        counters_.add(PolicyCounter::kMappingsTruncated);
        continue;
      }
      MappingNotice& notice = staged_[staged_count_++];
      notice.endpoint_id = endpoint_id;
      notice.ttl = record.chain_ttl;
      notice.ip = ip;
      notice.name_length = static_cast<uint8_t>(n.size());
      std::memcpy(notice.name.data(), n.data(), n.size());
    }
  }
  return unplumbed;
}

bool PolicyHandler::push_staged(uint32_t ticket, uint8_t flags) noexcept {
  if (!channel_.notices.has_room(staged_count_)) return false;
  for (size_t i = 0; i < staged_count_; ++i) {
    MappingNotice& notice = staged_[i];
    notice.ticket = ticket;
    notice.flags =
        static_cast<uint8_t>(flags | (i + 1 == staged_count_ ? MappingNotice::kLastOfTicket : 0));
    (void)channel_.notices.push(notice);  // room checked above, and only this thread pushes
  }
  counters_.add(PolicyCounter::kNotices, staged_count_);
  notified_ = true;
  return true;
}

void PolicyHandler::end_batch() noexcept {
  snapshot_ = nullptr;
  reader_.quiescent();
  if (notified_) {
    channel_.notify.signal();
    notified_ = false;
  }
}

void PolicyHandler::online() noexcept {
  reader_.online();
  channel_.wake.drain();
}

void PolicyHandler::sweep(uint64_t now_ns) noexcept {
  now_ns_ = now_ns;
  TicketAck ack;
  while (channel_.acks.pop(ack)) {
    Parked& slot = slot_of(ack.ticket);
    if (ack.ticket - oldest_ticket_ >= parked() || slot.ticket != ack.ticket ||
        slot.state != Slot::kWaiting) {
      counters_.add(PolicyCounter::kLateAcks);
      continue;
    }
    slot.state = Slot::kReady;
    ready_[ready_tail_++ % ready_.size()] = ack.ticket;
  }
}

PolicyHandler::Verdict PolicyHandler::time_out(Parked& parked) noexcept {
  if (!config_.servfail_at_max_delay) {
    counters_.add(PolicyCounter::kReleasedAtMaxDelay);
    return parked.release;
  }
  // The frame was rewritten for the next hop when it was parked; the answer shrinks in place,
  // then the lengths and checksums follow.
  const dns_steer_meta meta = load_steer_meta(parked.bytes.data());
  const std::span<uint8_t> payload =
      as_u8(parked.bytes.subspan(meta.dns_offset, parked.dns_length));
  const auto response = dns::parse_response(payload);  // parsed fine when it was parked
  if (!response) {
    counters_.add(parse_error_counter(true, response.error()));
    return Verdict::dropped(PolicyDrop::kMalformedResponse);
  }
  const size_t answer =
      dns::write_error_answer(payload, *response, dns::ErrorAnswer::kServFail, config_.answers);
  const uint32_t length = resize_payload(parked.bytes, meta, answer);
  if (length == 0) return Verdict::dropped(PolicyDrop::kBadOffsets);
  const bool ipv6 = (meta.flags & DNS_STEER_META_IPV6) != 0;
  (void)write_udp_checksum(parked.bytes.first(length), meta.l3_offset,
                           size_t{meta.dns_offset} - kUdpHeader, ipv6);
  counters_.add(PolicyCounter::kServfailAtMaxDelay);
  // A forward sends `length` bytes; the node's stack takes the IP length, resized above.
  Verdict servfail = parked.release;
  if (servfail.kind == VerdictKind::kForward) servfail.length = length;
  return servfail;
}

uint32_t PolicyHandler::take_released(std::span<Released> out) noexcept {
  uint32_t n = 0;
  while (n < out.size() && ready_head_ != ready_tail_) {
    Parked& slot = slot_of(ready_[ready_head_++ % ready_.size()]);
    out[n++] = Released{slot.frame, slot.port, slot.release};
    slot.state = Slot::kFree;
    counters_.add(PolicyCounter::kReleasedOnAck);
    release_on_ack_.record(std::chrono::nanoseconds(now_ns_ - slot.arrived_ns));
  }
  while (oldest_ticket_ != next_ticket_) {
    Parked& slot = slot_of(oldest_ticket_);
    if (slot.state == Slot::kWaiting) {
      if (n == out.size() || slot.deadline_ns > now_ns_) break;
      out[n++] = Released{slot.frame, slot.port, time_out(slot)};
      slot.state = Slot::kFree;
    } else if (slot.state == Slot::kReady) {
      break;  // handed back by the ready queue above, next iteration
    }
    ++oldest_ticket_;
  }
  return n;
}

}  // namespace dnsproxy::datapath::pipeline
