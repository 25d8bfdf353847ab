// The policy handler as data: frames (with dns_steer's metadata in front) in, verdicts, rewritten
// frames, notices and counters out. The worker loop around it is covered by the e2e tests.
#include "datapath/pipeline/policy_handler.h"

#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <set>
#include <vector>

#include "dns/message.h"
#include "policy/name_pattern.h"
#include "test/datapath/frame_builder.h"
#include "test/dns/packet_builder.h"

namespace dnsproxy::datapath::pipeline {
namespace {

using namespace std::chrono_literals;
using dns::testing::PacketBuilder;

constexpr test::Ipv4 kClient{192, 0, 2, 10};
constexpr test::Ipv4 kOtherClient{192, 0, 2, 99};
constexpr test::Ipv4 kServer{198, 51, 100, 53};
constexpr uint32_t kEgress = 7;
constexpr uint64_t kNow = 1'000'000'000'000;  // ns

policy::IpAddress ip(std::string_view text) {
  return policy::IpAddress::parse(text).value();
}

// A frame in a buffer with room for the metadata in front, as in a UMEM frame.
struct Frame {
  std::vector<std::byte> buffer;
  size_t length = 0;
  std::span<std::byte> bytes() { return {buffer.data() + sizeof(dns_steer_meta), length}; }
  std::span<const uint8_t> dns() {
    const dns_steer_meta meta = load_steer_meta(bytes().data());
    return {reinterpret_cast<const uint8_t*>(bytes().data()) + meta.dns_offset,
            length - meta.dns_offset};
  }
};

Frame frame(bool response, const std::vector<uint8_t>& dns, test::Ipv4 client = kClient,
            uint16_t client_port = 40000) {
  test::FrameSpec spec;
  spec.ipv4 = response ? test::Ipv4Spec{.src = kServer, .dst = client}
                       : test::Ipv4Spec{.src = client, .dst = kServer};
  spec.sport = response ? 53 : client_port;
  spec.dport = response ? client_port : 53;
  spec.dns_length = dns.size();
  test::FrameLayout layout;
  const std::vector<uint8_t> raw = test::build_frame(spec, &layout);
  Frame f;
  f.length = raw.size();
  f.buffer.resize(sizeof(dns_steer_meta) + raw.size());
  std::memcpy(f.buffer.data() + sizeof(dns_steer_meta), raw.data(), raw.size());
  std::memcpy(f.buffer.data() + sizeof(dns_steer_meta) + layout.dns_offset, dns.data(), dns.size());
  dns_steer_meta meta{};
  meta.egress_ifindex = kEgress;
  meta.next_hop_mac[0] = 0x02;
  meta.egress_mac[0] = 0x02;
  meta.l3_offset = layout.l3_offset;
  meta.dns_offset = layout.dns_offset;
  meta.fib_status = DNS_STEER_FIB_OK;
  meta.flags = response ? DNS_STEER_META_RESPONSE : 0;
  std::memcpy(f.buffer.data(), &meta, sizeof(meta));
  return f;
}

std::vector<uint8_t> query(std::string_view name, uint16_t id = 0x1234, uint16_t qtype = 1) {
  PacketBuilder p;
  p.header(id, dns::testing::kFlagsQuery, 0, 1, 0, 0, 0).name(name).question(qtype);
  return p.bytes();
}

// name A 203.0.113.<last> (TTL 60), or through a CNAME to `target` when given.
std::vector<uint8_t> answer(std::string_view name, uint8_t last, uint16_t id = 0x1234,
                            std::string_view target = {}) {
  PacketBuilder p;
  p.header(id, dns::testing::kFlagsResponse, 0x80, 1, target.empty() ? 1 : 2, 0, 0);
  const uint16_t qname = p.here();
  p.name(name).question(1);
  uint16_t owner = qname;
  if (!target.empty()) {
    p.pointer(qname).fixed(5, 1, 300, 0);
    const uint16_t rdlength = static_cast<uint16_t>(p.here() - 2);
    owner = p.here();
    p.name(target);
    p.bytes()[rdlength + 1] = static_cast<uint8_t>(p.here() - owner);
  }
  p.pointer(owner).fixed(1, 1, 60, 4).u8(203).u8(0).u8(113).u8(last);
  return p.bytes();
}

struct Fixture {
  explicit Fixture(PolicyHandlerConfig config = {}) {
    policy::PolicySpec spec;
    policy::EndpointPolicy frontend;
    frontend.endpoint_id = 101;
    policy::DnsRule rule;
    rule.patterns.push_back(policy::parse_match_pattern("*.example.com").value());
    rule.patterns.push_back(policy::parse_match_pattern("*.example.org").value());
    frontend.dns_rules.push_back(rule);
    frontend.to_fqdns.push_back(policy::parse_match_pattern("*.example.com").value());
    frontend.to_fqdns.push_back(policy::parse_match_name("edge.cdn.example.net").value());
    spec.endpoints.push_back(frontend);
    const policy::EndpointEntry entries[] = {{ip("192.0.2.10"), {101, 10001}}};
    store.replace(
        {.rules = std::make_shared<const policy::RuleSet>(policy::RuleSet::compile(spec).value()),
         .endpoints = std::make_shared<const policy::EndpointTable>(entries)});
    tracker = std::move(*QueryTracker::create({1024, 2000}, 1));
    channel = std::move(*Channel::create({.notice_ring = 16, .ack_ring = 16}));
    handler = std::make_unique<PolicyHandler>(config, store, domain.register_reader().value(),
                                              *tracker, *channel, counters);
  }

  PolicyHandler::Verdict decide(Frame& f, uint64_t now = kNow) {
    handler->begin_batch();
    const RxPacket rx{Packet{0, static_cast<uint32_t>(f.length)}, f.bytes(), 0, {1, 0}, now};
    const PolicyHandler::Verdict v = handler->decide(rx);
    handler->end_batch();
    return v;
  }
  std::vector<MappingNotice> notices() {
    std::vector<MappingNotice> out;
    MappingNotice n;
    while (channel->notices.pop(n)) out.push_back(n);
    return out;
  }
  std::vector<PolicyHandler::Released> release(uint64_t now) {
    handler->begin_batch();
    handler->sweep(now);
    std::vector<PolicyHandler::Released> out(8);
    out.resize(handler->take_released(out));
    handler->end_batch();
    return out;
  }
  // Forwards a query for `name` from the client, as the proxy would.
  void forward_query(std::string_view name, uint16_t id = 0x1234) {
    Frame q = frame(false, query(name, id));
    ASSERT_EQ(decide(q).kind, VerdictKind::kForward);
  }
  uint64_t count(PolicyCounter c) const { return counters.get(c); }

  policy::QsbrDomain domain;
  policy::SnapshotStore store{domain};
  std::unique_ptr<QueryTracker> tracker;
  std::unique_ptr<Channel> channel;
  CounterSet<PolicyCounter> counters;
  std::unique_ptr<PolicyHandler> handler;
};

TEST(PolicyHandlerTest, AnAllowedQueryIsForwardedToTheFibNextHop) {
  Fixture f;
  Frame q = frame(false, query("www.example.com"));
  const auto v = f.decide(q);
  EXPECT_EQ(v.kind, VerdictKind::kForward);
  EXPECT_EQ(v.egress_ifindex, kEgress);
  EXPECT_EQ(f.count(PolicyCounter::kAllowed), 1u);
}

TEST(PolicyHandlerTest, DeniedQueriesAreAnsweredInPlaceWithOneCounterPerReason) {
  for (auto rcode : {dns::ErrorAnswer::kRefused, dns::ErrorAnswer::kNxDomain}) {
    Fixture f(PolicyHandlerConfig{.deny_rcode = rcode});
    Frame q = frame(false, query("www.example.net"));
    const auto v = f.decide(q);
    ASSERT_EQ(v.kind, VerdictKind::kReply);
    ASSERT_GT(v.length, 0u);
    q.length = v.length;
    auto answer = dns::parse_response(q.dns());
    ASSERT_TRUE(answer.has_value());
    EXPECT_EQ(answer->rcode(), static_cast<uint16_t>(rcode));
    EXPECT_EQ(f.count(PolicyCounter::kDeniedNameNotAllowed), 1u);

    Frame stranger = frame(false, query("www.example.com"), kOtherClient);
    EXPECT_EQ(f.decide(stranger).kind, VerdictKind::kReply);
    EXPECT_EQ(f.count(PolicyCounter::kDeniedUnknownSource), 1u);
    EXPECT_EQ(f.count(PolicyCounter::kAllowed), 0u);
  }
}

TEST(PolicyHandlerTest, MalformedPacketsAreDroppedWithTheirReason) {
  Fixture f;
  std::vector<uint8_t> bad = query("www.example.com");
  bad[5] = 2;  // QDCOUNT 2
  Frame q = frame(false, bad);
  auto v = f.decide(q);
  EXPECT_EQ(v.kind, VerdictKind::kDrop);
  EXPECT_EQ(v.drop, PolicyDrop::kMalformedQuery);
  Frame r = frame(true, bad);
  EXPECT_EQ(f.decide(r).drop, PolicyDrop::kMalformedResponse);
  Frame cut = frame(false, query("www.example.com"));
  cut.length -= 4;  // UDP length now runs past the frame
  EXPECT_EQ(f.decide(cut).drop, PolicyDrop::kBadOffsets);
}

// Behind the malformed_query / malformed_response drops, every rejection reason of the codec has
// a counter of its own, named from dns::counter_names(ParseError).
TEST(PolicyHandlerTest, EveryCodecRejectionHasItsOwnCounter) {
  std::set<std::string_view> names;
  for (std::string_view name : counter_names(PolicyCounter{})) {
    EXPECT_FALSE(name.empty());
    names.insert(name);
  }
  EXPECT_EQ(names.size(), kCounterCount<PolicyCounter>) << "every counter named once";
  EXPECT_EQ(counter_name(parse_error_counter(false, dns::ParseError::kShorterThanHeader)),
            "malformed_query_shorter_than_header");
  EXPECT_EQ(counter_name(parse_error_counter(true, dns::ParseError::kDuplicateOpt)),
            "malformed_response_duplicate_opt");

  Fixture f;
  std::vector<uint8_t> two_questions = query("www.example.com");
  two_questions[5] = 2;  // QDCOUNT 2
  std::vector<uint8_t> cut_name = query("www.example.com");
  cut_name.resize(14);  // the header and the first bytes of the name
  std::vector<uint8_t> two_question_answer = answer("www.example.com", 1);
  two_question_answer[5] = 2;
  const struct {
    bool response;
    std::vector<uint8_t> dns;
    dns::ParseError reason;
  } cases[] = {
      {false, two_questions, dns::ParseError::kQdcountNotOne},
      {false, cut_name, dns::ParseError::kNameTruncated},
      {false, answer("www.example.com", 1), dns::ParseError::kNotAQuery},
      {true, query("www.example.com"), dns::ParseError::kNotAResponse},
      {true, two_question_answer, dns::ParseError::kQdcountNotOne},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(counter_name(parse_error_counter(c.response, c.reason)));
    Frame packet = frame(c.response, c.dns);
    const uint64_t before = f.count(parse_error_counter(c.response, c.reason));
    const auto v = f.decide(packet);
    EXPECT_EQ(v.kind, VerdictKind::kDrop);
    EXPECT_EQ(v.drop, c.response ? PolicyDrop::kMalformedResponse : PolicyDrop::kMalformedQuery);
    EXPECT_EQ(f.count(parse_error_counter(c.response, c.reason)), before + 1);
  }
  // One count per rejection: the reasons add up to the drops.
  uint64_t queries = 0, responses = 0;
  for (size_t i = 0; i < dns::kParseErrorCount; ++i) {
    queries += f.count(parse_error_counter(false, static_cast<dns::ParseError>(i)));
    responses += f.count(parse_error_counter(true, static_cast<dns::ParseError>(i)));
  }
  EXPECT_EQ(queries, 3u);
  EXPECT_EQ(responses, 2u);
  EXPECT_EQ(f.count(PolicyCounter::kAllowed), 0u);
}

TEST(PolicyHandlerTest, OnlyAnswersToForwardedQueriesAreAccepted) {
  Fixture f;
  Frame unsolicited = frame(true, answer("www.example.org", 1));
  EXPECT_EQ(f.decide(unsolicited).drop, PolicyDrop::kUnmatched);
  f.forward_query("www.example.org");
  Frame wrong_id = frame(true, answer("www.example.org", 1, 0x9999));
  EXPECT_EQ(f.decide(wrong_id).drop, PolicyDrop::kUnmatched);
  Frame wrong_question = frame(true, answer("xyz.example.org", 1));
  EXPECT_EQ(f.decide(wrong_question).drop, PolicyDrop::kQuestionMismatch);
  Frame good = frame(true, answer("www.example.org", 1));
  EXPECT_EQ(f.decide(good).kind, VerdictKind::kForward);  // no toFQDNs selects it: at once
  EXPECT_EQ(f.count(PolicyCounter::kReleasedNoSelector), 1u);
  Frame again = frame(true, answer("www.example.org", 1));
  EXPECT_EQ(f.decide(again).drop, PolicyDrop::kDuplicate);
  f.forward_query("late.example.org", 7);
  Frame late = frame(true, answer("late.example.org", 1, 7));
  EXPECT_EQ(f.decide(late, kNow + 3'000'000'000).drop, PolicyDrop::kLate);
  EXPECT_EQ(f.count(PolicyCounter::kResponses), 1u);
}

TEST(PolicyHandlerTest, ASelectedNewAddressIsParkedUntilItsTicketIsAcked) {
  Fixture f;
  f.forward_query("www.example.com");
  Frame r = frame(true, answer("www.example.com", 1));
  ASSERT_EQ(f.decide(r).kind, VerdictKind::kPark);
  EXPECT_EQ(f.handler->parked(), 1u);
  const auto notices = f.notices();
  ASSERT_EQ(notices.size(), 1u);
  EXPECT_EQ(notices[0].endpoint_id, 101u);
  EXPECT_EQ(notices[0].ip, ip("203.0.113.1"));
  EXPECT_EQ(notices[0].ttl, 60u);
  EXPECT_EQ(notices[0].flags, MappingNotice::kLastOfTicket);
  EXPECT_TRUE(f.release(kNow + 1'000'000).empty()) << "nothing before the ACK";

  ASSERT_TRUE(f.channel->acks.push({notices[0].ticket}));
  const auto released = f.release(kNow + 2'000'000);
  ASSERT_EQ(released.size(), 1u);
  EXPECT_EQ(released[0].verdict.kind, VerdictKind::kForward);
  EXPECT_EQ(released[0].verdict.egress_ifindex, kEgress);
  EXPECT_EQ(f.count(PolicyCounter::kReleasedOnAck), 1u);
  EXPECT_TRUE(f.release(kNow + 200'000'000).empty()) << "released once, never again";
  EXPECT_EQ(f.handler->parked(), 0u);
  ASSERT_TRUE(f.channel->acks.push({notices[0].ticket}));
  EXPECT_TRUE(f.release(kNow + 300'000'000).empty());
  EXPECT_EQ(f.count(PolicyCounter::kLateAcks), 1u);
}

TEST(PolicyHandlerTest, TheCnameTargetNameCanBeTheSelectedOne) {
  Fixture f;
  f.forward_query("www.example.org");  // allowed by DNS rules, not selected by toFQDNs
  Frame r = frame(true, answer("www.example.org", 5, 0x1234, "edge.cdn.example.net"));
  ASSERT_EQ(f.decide(r).kind, VerdictKind::kPark);
  const auto notices = f.notices();
  ASSERT_EQ(notices.size(), 1u);
  EXPECT_EQ(
      std::string(reinterpret_cast<const char*>(notices[0].name.data()), notices[0].name_length),
      std::string("\4edge\3cdn\7example\3net\0", 22));
}

TEST(PolicyHandlerTest, PlumbedAddressesAreReleasedAtOnce) {
  Fixture f;
  const std::vector<policy::PlumbedSet::Change> plumb = {
      {101, ip("203.0.113.1"), policy::Clock::time_point(std::chrono::nanoseconds(kNow)) + 60s}};
  f.store.replace(
      {.plumbed = std::make_shared<policy::PlumbedSet>(policy::PlumbedSet().with_changes(plumb))});
  f.forward_query("www.example.com");
  Frame r = frame(true, answer("www.example.com", 1));
  EXPECT_EQ(f.decide(r).kind, VerdictKind::kForward);
  EXPECT_EQ(f.count(PolicyCounter::kReleasedPlumbed), 1u);
  EXPECT_TRUE(f.notices().empty());
}

// The client may use an address for the answer's TTL: a plumbed address whose plumbing ends
// sooner is released at once and sent again, without a ticket, so the agent extends it; one
// whose plumbing covers the TTL (within kRefreshSlack) is not.
TEST(PolicyHandlerTest, APlumbedAddressIsRefreshedWhenTheAnswerOutlivesItsPlumbing) {
  Fixture f;
  const auto now = policy::Clock::time_point(std::chrono::nanoseconds(kNow));
  const std::vector<policy::PlumbedSet::Change> plumb = {
      {101, ip("203.0.113.1"), now + 10s},       // the answer's TTL is 60 s
      {101, ip("203.0.113.2"), now + 59500ms}};  // within the slack
  f.store.replace(
      {.plumbed = std::make_shared<policy::PlumbedSet>(policy::PlumbedSet().with_changes(plumb))});
  f.forward_query("www.example.com");
  Frame r = frame(true, answer("www.example.com", 1));
  EXPECT_EQ(f.decide(r).kind, VerdictKind::kForward);
  EXPECT_EQ(f.count(PolicyCounter::kReleasedPlumbed), 1u);
  const std::vector<MappingNotice> sent = f.notices();
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_EQ(sent[0].ip, ip("203.0.113.1"));
  EXPECT_EQ(sent[0].ttl, 60u);
  EXPECT_NE(sent[0].flags & MappingNotice::kNoTicket, 0);
  EXPECT_NE(sent[0].flags & MappingNotice::kLastOfTicket, 0);
  EXPECT_EQ(f.count(PolicyCounter::kNotices), 1u);
  EXPECT_EQ(f.handler->parked(), 0u);

  f.forward_query("api.example.com", 0x1235);
  Frame covered = frame(true, answer("api.example.com", 2, 0x1235));
  EXPECT_EQ(f.decide(covered).kind, VerdictKind::kForward);
  EXPECT_EQ(f.count(PolicyCounter::kReleasedPlumbed), 2u);
  EXPECT_TRUE(f.notices().empty());
}

TEST(PolicyHandlerTest, AtTheMaxDelayAParkedResponseIsReleasedOrServfail) {
  for (bool servfail : {false, true}) {
    SCOPED_TRACE(servfail ? "servfail" : "release");
    Fixture f(PolicyHandlerConfig{.max_delay = 100ms, .servfail_at_max_delay = servfail});
    f.forward_query("www.example.com");
    Frame r = frame(true, answer("www.example.com", 1));
    ASSERT_EQ(f.decide(r).kind, VerdictKind::kPark);
    EXPECT_TRUE(f.release(kNow + 99'000'000).empty());
    const auto released = f.release(kNow + 100'000'000);
    ASSERT_EQ(released.size(), 1u);
    EXPECT_EQ(released[0].verdict.kind, VerdictKind::kForward);
    if (servfail) {
      ASSERT_GT(released[0].verdict.length, 0u);
      r.length = released[0].verdict.length;
      auto message = dns::parse_response(r.dns());
      ASSERT_TRUE(message.has_value());
      EXPECT_EQ(message->rcode(), static_cast<uint16_t>(dns::Rcode::kServFail));
      EXPECT_EQ(f.count(PolicyCounter::kServfailAtMaxDelay), 1u);
    } else {
      EXPECT_EQ(released[0].verdict.length, 0u);
      EXPECT_EQ(f.count(PolicyCounter::kReleasedAtMaxDelay), 1u);
    }
    EXPECT_EQ(f.handler->parked(), 0u);
  }
}

// dns_steer found the route but no neighbour entry for its next hop (DNS_STEER_FIB_NO_NEIGH).
void without_neighbour(Frame& f) {
  dns_steer_meta meta = load_steer_meta(f.bytes().data());
  meta.fib_status = DNS_STEER_FIB_NO_NEIGH;
  std::memset(meta.next_hop_mac, 0, sizeof meta.next_hop_mac);
  std::memset(meta.egress_mac, 0, sizeof meta.egress_mac);
  std::memcpy(f.buffer.data(), &meta, sizeof(meta));
}

// A query or response whose next hop has no neighbour entry yet is decided like any other; what
// the policy lets through goes to the node's stack (which resolves the neighbour) instead of an
// egress port, and a parked response is released there too.
TEST(PolicyHandlerTest, WithoutANeighbourWhatThePolicyLetsThroughGoesToTheKernel) {
  Fixture f(PolicyHandlerConfig{.max_delay = 100ms});
  Frame q = frame(false, query("www.example.org"));
  without_neighbour(q);
  const auto allowed = f.decide(q);
  EXPECT_EQ(allowed.kind, VerdictKind::kToKernel);
  EXPECT_EQ(allowed.l3_offset, 14u);
  EXPECT_EQ(f.count(PolicyCounter::kAllowed), 1u);
  EXPECT_EQ(std::to_integer<int>(q.bytes()[14 + 8]), 63) << "TTL decremented as when forwarded";

  Frame denied = frame(false, query("www.example.net"));
  without_neighbour(denied);
  EXPECT_EQ(f.decide(denied).kind, VerdictKind::kReply) << "a denial goes back out of ingress";
  EXPECT_EQ(f.count(PolicyCounter::kDeniedNameNotAllowed), 1u);

  Frame response = frame(true, answer("www.example.org", 1));  // answers the query above
  without_neighbour(response);
  EXPECT_EQ(f.decide(response).kind, VerdictKind::kToKernel);
  EXPECT_EQ(f.count(PolicyCounter::kReleasedNoSelector), 1u);
  Frame unsolicited = frame(true, answer("www.example.org", 2, 0x4321));
  without_neighbour(unsolicited);
  EXPECT_EQ(f.decide(unsolicited).drop, PolicyDrop::kUnmatched) << "still never unchecked";

  // Parked until the ACK, then to the kernel.
  f.forward_query("a.example.com", 1);
  Frame acked = frame(true, answer("a.example.com", 1, 1));
  without_neighbour(acked);
  ASSERT_EQ(f.decide(acked).kind, VerdictKind::kPark);
  const auto notices = f.notices();
  ASSERT_EQ(notices.size(), 1u);
  ASSERT_TRUE(f.channel->acks.push({notices[0].ticket}));
  auto released = f.release(kNow + 1'000'000);
  ASSERT_EQ(released.size(), 1u);
  EXPECT_EQ(released[0].verdict.kind, VerdictKind::kToKernel);
  EXPECT_EQ(released[0].verdict.l3_offset, 14u);

  // Parked past the max delay: released to the kernel as well.
  f.forward_query("b.example.com", 2);
  Frame timed_out = frame(true, answer("b.example.com", 2, 2));
  without_neighbour(timed_out);
  ASSERT_EQ(f.decide(timed_out).kind, VerdictKind::kPark);
  released = f.release(kNow + 200'000'000);
  ASSERT_EQ(released.size(), 1u);
  EXPECT_EQ(released[0].verdict.kind, VerdictKind::kToKernel);
  EXPECT_EQ(f.count(PolicyCounter::kReleasedAtMaxDelay), 1u);
}

TEST(PolicyHandlerTest, WithoutANeighbourAServfailAtTheMaxDelayGoesToTheKernelResized) {
  Fixture f(PolicyHandlerConfig{.max_delay = 100ms, .servfail_at_max_delay = true});
  f.forward_query("www.example.com");
  Frame r = frame(true, answer("www.example.com", 1));
  without_neighbour(r);
  ASSERT_EQ(f.decide(r).kind, VerdictKind::kPark);
  const auto released = f.release(kNow + 100'000'000);
  ASSERT_EQ(released.size(), 1u);
  EXPECT_EQ(released[0].verdict.kind, VerdictKind::kToKernel);
  // The node's stack sends the IP packet's own length: the SERVFAIL's.
  const auto b = r.bytes();
  const size_t ip_length =
      std::to_integer<size_t>(b[14 + 2]) << 8 | std::to_integer<size_t>(b[14 + 3]);
  ASSERT_LT(14 + ip_length, r.length);
  r.length = 14 + ip_length;
  auto message = dns::parse_response(r.dns());
  ASSERT_TRUE(message.has_value());
  EXPECT_EQ(message->rcode(), static_cast<uint16_t>(dns::Rcode::kServFail));
  EXPECT_EQ(f.count(PolicyCounter::kServfailAtMaxDelay), 1u);
}

TEST(PolicyHandlerTest, AtTheParkedLimitTheResponseIsDroppedButStillPlumbed) {
  Fixture f(PolicyHandlerConfig{.max_parked = 1});
  f.forward_query("a.example.com", 1);
  f.forward_query("b.example.com", 2);
  Frame first = frame(true, answer("a.example.com", 1, 1));
  ASSERT_EQ(f.decide(first).kind, VerdictKind::kPark);
  Frame second = frame(true, answer("b.example.com", 2, 2));
  const auto v = f.decide(second);
  EXPECT_EQ(v.kind, VerdictKind::kDrop);
  EXPECT_EQ(v.drop, PolicyDrop::kParkedFull);
  const auto notices = f.notices();
  ASSERT_EQ(notices.size(), 2u);
  EXPECT_EQ(notices[1].flags, MappingNotice::kNoTicket | MappingNotice::kLastOfTicket);
  EXPECT_EQ(f.handler->parked(), 1u);
}

TEST(PolicyHandlerTest, AFullNoticeRingDropsTheResponse) {
  Fixture f;  // notice ring of 16
  for (uint16_t i = 0; i < 17; ++i) {
    const std::string name = "n" + std::to_string(i) + ".example.com";
    f.forward_query(name, i);
    Frame r = frame(true, answer(name, static_cast<uint8_t>(i), i));
    const auto v = f.decide(r);
    if (i < 16) {
      EXPECT_EQ(v.kind, VerdictKind::kPark);
    } else {
      EXPECT_EQ(v.drop, PolicyDrop::kNoticeRingFull);
    }
  }
}

TEST(PolicyHandlerTest, ReleaseBeforePlumbReleasesAtOnceAndStillNotifies) {
  Fixture f(PolicyHandlerConfig{.release_before_plumb = true});
  f.forward_query("www.example.com");
  Frame r = frame(true, answer("www.example.com", 1));
  EXPECT_EQ(f.decide(r).kind, VerdictKind::kForward);
  EXPECT_EQ(f.count(PolicyCounter::kReleasedBeforePlumb), 1u);
  const auto notices = f.notices();
  ASSERT_EQ(notices.size(), 1u);
  EXPECT_NE(notices[0].flags & MappingNotice::kNoTicket, 0);
}

}  // namespace
}  // namespace dnsproxy::datapath::pipeline
