// The control-side coordinator as data: notices in, batches out, batch ACKs in, ticket ACKs and a
// republished PlumbedSet out.
#include "datapath/pipeline/coordinator.h"

#include <gtest/gtest.h>

#include <cstring>
#include <string_view>
#include <vector>

namespace dnsproxy::datapath::pipeline {
namespace {

using namespace std::chrono_literals;

const Clock::time_point kT0 = Clock::time_point(100s);

policy::IpAddress ip(std::string_view text) {
  return policy::IpAddress::parse(text).value();
}

MappingNotice notice(uint32_t ticket, std::string_view name_wire, std::string_view address,
                     uint8_t flags = MappingNotice::kLastOfTicket, uint32_t endpoint = 101,
                     uint32_t ttl = 60) {
  MappingNotice n;
  n.ticket = ticket;
  n.endpoint_id = endpoint;
  n.ttl = ttl;
  n.ip = ip(address);
  n.flags = flags;
  n.name_length = static_cast<uint8_t>(name_wire.size());
  std::memcpy(n.name.data(), name_wire.data(), name_wire.size());
  return n;
}

constexpr std::string_view kApi{"\3api\7example\3com\0", 17};
constexpr std::string_view kCdn{"\3cdn\7example\3net\0", 17};

struct Fixture {
  policy::QsbrDomain domain;
  policy::SnapshotStore store{domain};
  Coordinator coordinator{CoordinatorConfig{.batch_max = 4, .batch_delay = 200us}, store, 2};

  std::vector<uint32_t> acks(size_t worker) {
    std::vector<uint32_t> out;
    coordinator.deliver_acks(worker, [&](TicketAck a) {
      out.push_back(a.ticket);
      return true;
    });
    return out;
  }
};

TEST(CoordinatorTest, ATicketIsAckedWhenItsBatchIsAckedAndThePlumbingIsPublished) {
  Fixture f;
  f.coordinator.on_notice(0, notice(7, kApi, "203.0.113.1"), kT0);
  EXPECT_FALSE(f.coordinator.cut(kT0 + 100us).has_value());  // not due yet
  ASSERT_EQ(f.coordinator.next_deadline(), kT0 + 200us);
  auto batch = f.coordinator.cut(kT0 + 200us);
  ASSERT_TRUE(batch.has_value());
  ASSERT_EQ(batch->names.size(), 1u);
  EXPECT_EQ(batch->names[0].endpoint_id, 101u);
  EXPECT_EQ(batch->names[0].name, std::string(kApi));
  ASSERT_EQ(batch->names[0].addresses.size(), 1u);
  EXPECT_EQ(batch->names[0].addresses[0].ip, ip("203.0.113.1"));
  EXPECT_EQ(batch->names[0].addresses[0].expires, kT0 + 60s);
  EXPECT_TRUE(f.acks(0).empty());
  EXPECT_FALSE(f.store.current().is_plumbed(101, ip("203.0.113.1"), kT0 + 1ms));

  f.coordinator.on_batch_acked(batch->id, kT0 + 1ms);
  EXPECT_EQ(f.acks(0), std::vector<uint32_t>{7});
  EXPECT_TRUE(f.acks(1).empty());
  EXPECT_TRUE(f.store.current().is_plumbed(101, ip("203.0.113.1"), kT0 + 1ms));
  EXPECT_FALSE(f.store.current().is_plumbed(102, ip("203.0.113.1"), kT0 + 1ms));
  EXPECT_EQ(f.coordinator.tickets_waiting(), 0u);
  EXPECT_EQ(f.coordinator.counters().get(CoordinatorCounter::kRepublished), 1u);
}

TEST(CoordinatorTest, NoticesCoalescePerEndpointAndName) {
  Fixture f;
  f.coordinator.on_notice(0, notice(1, kCdn, "203.0.113.1", 0), kT0);
  f.coordinator.on_notice(0, notice(1, kCdn, "203.0.113.2"), kT0);
  f.coordinator.on_notice(1, notice(1, kCdn, "203.0.113.2", MappingNotice::kLastOfTicket, 101, 300),
                          kT0);
  f.coordinator.on_notice(1, notice(2, kCdn, "203.0.113.2", MappingNotice::kLastOfTicket, 102),
                          kT0);
  auto batch = f.coordinator.cut(kT0, true);
  ASSERT_TRUE(batch.has_value());
  ASSERT_EQ(batch->names.size(), 2u);  // (101, cdn) and (102, cdn)
  EXPECT_EQ(batch->names[0].addresses.size(), 2u);
  EXPECT_EQ(batch->names[0].addresses[1].expires, kT0 + 300s);  // the later expiry kept
  EXPECT_EQ(batch->address_count(), 3u);
  f.coordinator.on_batch_acked(batch->id, kT0 + 1ms);
  EXPECT_EQ(f.acks(0), std::vector<uint32_t>{1});
  EXPECT_EQ(f.acks(1), (std::vector<uint32_t>{1, 2}));
}

TEST(CoordinatorTest, AnAddressInFlightIsNotWaitedForTwice) {
  Fixture f;
  f.coordinator.on_notice(0, notice(1, kApi, "203.0.113.1"), kT0);
  auto first = f.coordinator.cut(kT0, true);
  ASSERT_TRUE(first.has_value());
  f.coordinator.on_notice(0, notice(2, kApi, "203.0.113.1"), kT0 + 10us);  // same pair, in flight
  auto second = f.coordinator.cut(kT0 + 10us, true);
  ASSERT_TRUE(second.has_value());
  f.coordinator.on_batch_acked(second->id, kT0 + 20us);
  EXPECT_TRUE(f.acks(0).empty()) << "ticket 2 waits for the batch that plumbs the address";
  f.coordinator.on_batch_acked(first->id, kT0 + 30us);
  EXPECT_EQ(f.acks(0), (std::vector<uint32_t>{1, 2}));
}

TEST(CoordinatorTest, AnAlreadyPlumbedAddressIsAckedAtOnceAndStillRefreshed) {
  Fixture f;
  f.coordinator.on_notice(0, notice(1, kApi, "203.0.113.1"), kT0);
  f.coordinator.on_batch_acked(f.coordinator.cut(kT0, true)->id, kT0);
  ASSERT_EQ(f.acks(0), std::vector<uint32_t>{1});
  f.coordinator.on_notice(0, notice(2, kApi, "203.0.113.1"), kT0 + 1s);  // a stale worker view
  EXPECT_EQ(f.acks(0), std::vector<uint32_t>{2});
  EXPECT_EQ(f.coordinator.counters().get(CoordinatorCounter::kNoticesPlumbed), 1u);
  auto refresh = f.coordinator.cut(kT0 + 1s, true);
  ASSERT_TRUE(refresh.has_value());
  EXPECT_EQ(refresh->names[0].addresses[0].expires, kT0 + 61s);
}

TEST(CoordinatorTest, ATicketWaitsForAllItsNoticesAndNoTicketNoticesAreNeverAcked) {
  Fixture f;
  f.coordinator.on_notice(0, notice(3, kApi, "203.0.113.1", 0), kT0);  // more to come
  f.coordinator.on_notice(
      0, notice(0, kCdn, "203.0.113.9", MappingNotice::kNoTicket | MappingNotice::kLastOfTicket),
      kT0);
  auto batch = f.coordinator.cut(kT0, true);
  f.coordinator.on_batch_acked(batch->id, kT0);
  EXPECT_TRUE(f.acks(0).empty()) << "ticket 3 has not sent its last notice";
  f.coordinator.on_notice(0, notice(3, kApi, "203.0.113.1"), kT0);
  EXPECT_EQ(f.acks(0), std::vector<uint32_t>{3});
}

TEST(CoordinatorTest, AFullBatchIsCutBeforeItsDeadline) {
  Fixture f;  // batch_max 4
  for (int i = 1; i <= 4; ++i)
    f.coordinator.on_notice(
        0, notice(static_cast<uint32_t>(i), kApi, "203.0.113." + std::to_string(i)), kT0);
  auto batch = f.coordinator.cut(kT0);
  ASSERT_TRUE(batch.has_value());
  EXPECT_EQ(batch->address_count(), 4u);
  EXPECT_FALSE(f.coordinator.next_deadline().has_value());
}

TEST(CoordinatorTest, UnknownAcksFailuresAndStaleTicketsAreCounted) {
  Fixture f;
  f.coordinator.on_batch_acked(99, kT0);
  EXPECT_EQ(f.coordinator.counters().get(CoordinatorCounter::kUnknownBatchAck), 1u);
  f.coordinator.on_notice(0, notice(1, kApi, "203.0.113.1"), kT0);
  auto batch = f.coordinator.cut(kT0, true);
  f.coordinator.on_batch_failed(batch->id);
  EXPECT_EQ(f.coordinator.counters().get(CoordinatorCounter::kBatchesFailed), 1u);
  EXPECT_EQ(f.coordinator.tickets_waiting(), 1u);
  f.coordinator.expire(kT0 + 6s);  // stale_after 5 s; the 60 s mapping stays
  EXPECT_EQ(f.coordinator.tickets_waiting(), 0u);
  EXPECT_EQ(f.coordinator.counters().get(CoordinatorCounter::kTicketsStale), 1u);
  EXPECT_EQ(f.coordinator.batches_in_flight(), 0u);
  EXPECT_TRUE(f.acks(0).empty());
}

TEST(CoordinatorTest, ExpiredMappingsLeaveThePublishedPlumbedSet) {
  Fixture f;
  f.coordinator.on_notice(0, notice(1, kApi, "203.0.113.1", MappingNotice::kLastOfTicket, 101, 5),
                          kT0);
  f.coordinator.on_batch_acked(f.coordinator.cut(kT0, true)->id, kT0);
  EXPECT_TRUE(f.store.current().is_plumbed(101, ip("203.0.113.1"), kT0 + 1s));
  f.coordinator.expire(kT0 + 5s);
  EXPECT_EQ(f.coordinator.cache().mapping_count(), 0u);
  EXPECT_FALSE(f.store.current().is_plumbed(101, ip("203.0.113.1"), kT0 + 1s));
}

// A restarted proxy takes over what the agent's allow map says is plumbed: published at once,
// released at once (a notice for it waits for nothing), gone at its time; expired ones not taken.
TEST(CoordinatorTest, InheritedPlumbingIsPublishedAndReleasedAtOnceUntilItsTime) {
  Fixture f;
  const std::vector<policy::PlumbedSet::Change> pairs = {{101, ip("203.0.113.1"), kT0 + 30s},
                                                         {101, ip("203.0.113.2"), kT0 - 1s}};
  EXPECT_EQ(f.coordinator.inherit_plumbed(pairs, kT0), 1u);
  EXPECT_EQ(f.coordinator.counters().get(CoordinatorCounter::kInheritedPlumbed), 1u);
  EXPECT_TRUE(f.store.current().is_plumbed(101, ip("203.0.113.1"), kT0 + 29s));
  EXPECT_FALSE(f.store.current().is_plumbed(101, ip("203.0.113.2"), kT0 - 2s)) << "expired";
  EXPECT_FALSE(f.store.current().is_plumbed(102, ip("203.0.113.1"), kT0)) << "another endpoint";
  f.coordinator.expire(kT0 + 30s);
  EXPECT_FALSE(f.store.current().is_plumbed(101, ip("203.0.113.1"), kT0));
}

TEST(CoordinatorTest, TheMappingGaugeFollowsTheCacheWithoutAnAgent) {
  Fixture f;
  const auto gauge = [&] {
    return f.coordinator.counters().get(CoordinatorCounter::kFqdnMappings);
  };
  EXPECT_EQ(gauge(), 0u);
  f.coordinator.on_notice(0, notice(1, kApi, "203.0.113.1", 0, 101, 2), kT0);
  f.coordinator.on_notice(0, notice(1, kCdn, "203.0.113.1", MappingNotice::kLastOfTicket, 101, 9),
                          kT0);
  EXPECT_EQ(gauge(), 2u);
  f.coordinator.on_notice(0, notice(2, kApi, "203.0.113.1", MappingNotice::kLastOfTicket, 101, 2),
                          kT0 + 1s);  // the same mapping again: refreshed, not added
  EXPECT_EQ(gauge(), 2u);
  f.coordinator.expire(kT0 + 2s);
  EXPECT_EQ(gauge(), 2u);
  f.coordinator.expire(kT0 + 3s);
  EXPECT_EQ(gauge(), 1u);
  f.coordinator.expire(kT0 + 9s);
  EXPECT_EQ(gauge(), 0u);
  EXPECT_EQ(gauge(), f.coordinator.cache().mapping_count());
}

TEST(CoordinatorTest, AFullAckRingKeepsTheRestForLater) {
  Fixture f;
  f.coordinator.on_notice(0, notice(1, kApi, "203.0.113.1"), kT0);
  f.coordinator.on_notice(0, notice(2, kApi, "203.0.113.2"), kT0);
  f.coordinator.on_batch_acked(f.coordinator.cut(kT0, true)->id, kT0);
  int room = 1;
  EXPECT_EQ(f.coordinator.deliver_acks(0, [&](TicketAck) { return room-- > 0; }), 1u);
  EXPECT_EQ(f.coordinator.pending_acks(0), 1u);
  EXPECT_EQ(f.coordinator.counters().get(CoordinatorCounter::kAckRingFull), 1u);
  EXPECT_EQ(f.acks(0), std::vector<uint32_t>{2});
}

TEST(CoordinatorTest, DrainTakesEveryNoticeOfARing) {
  Fixture f;
  SpscRing<MappingNotice> ring(8);
  ASSERT_TRUE(ring.push(notice(1, kApi, "203.0.113.1", 0)));
  ASSERT_TRUE(ring.push(notice(1, kApi, "2001:db8:e::1")));
  EXPECT_EQ(f.coordinator.drain(1, ring, kT0), 2u);
  MappingNotice left;
  EXPECT_FALSE(ring.pop(left));
  EXPECT_EQ(f.coordinator.cut(kT0, true)->address_count(), 2u);
}

}  // namespace
}  // namespace dnsproxy::datapath::pipeline
