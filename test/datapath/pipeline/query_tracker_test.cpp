// The forwarded-query tracker: each outcome as data, then workers racing on one table (also run
// under TSan by tools/run test).
#include "datapath/pipeline/query_tracker.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <memory>
#include <thread>
#include <vector>

namespace dnsproxy::datapath::pipeline {
namespace {

constexpr uint64_t kSeed = 0x5eed;
constexpr uint8_t kName[] = {3, 'w', 'w', 'w', 7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 0};
constexpr uint8_t kOtherName[] = {3, 'w', 'w', 'x', 7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 0};

policy::IpAddress v4(uint8_t a, uint8_t b, uint8_t c, uint8_t d) {
  const std::array<uint8_t, 4> bytes{a, b, c, d};
  return policy::IpAddress::v4(bytes);
}

std::unique_ptr<QueryTracker> make(size_t slots = 1024, uint32_t lifetime_ms = 1000) {
  auto tracker = QueryTracker::create({slots, lifetime_ms}, kSeed);
  EXPECT_TRUE(tracker.has_value()) << tracker.error().message;
  return std::move(*tracker);
}

QueryKey key_for(const QueryTracker& tracker, uint16_t client_port = 40000, uint16_t id = 0x1234,
                 std::span<const uint8_t> name = kName, uint16_t qtype = 1) {
  return QueryKey{v4(192, 0, 2, 10),
                  v4(198, 51, 100, 53),
                  client_port,
                  53,
                  id,
                  tracker.question_digest(name, qtype, 1)};
}

TEST(QueryTrackerTest, AForwardedQueryIsAnsweredOnceThenDuplicate) {
  auto tracker = make();
  const QueryKey key = key_for(*tracker);
  ASSERT_EQ(tracker->insert(key, 100), TrackOutcome::kInserted);
  EXPECT_EQ(tracker->claim(key, 150), TrackOutcome::kClaimed);
  EXPECT_EQ(tracker->claim(key, 160), TrackOutcome::kDuplicate);
}

TEST(QueryTrackerTest, EveryPartOfTheKeyMustMatch) {
  auto tracker = make();
  const QueryKey key = key_for(*tracker);
  ASSERT_EQ(tracker->insert(key, 100), TrackOutcome::kInserted);
  QueryKey other = key;
  other.server = v4(198, 51, 100, 54);  // another server answering
  EXPECT_EQ(tracker->claim(other, 110), TrackOutcome::kUnmatched);
  other = key;
  other.client = v4(192, 0, 2, 11);
  EXPECT_EQ(tracker->claim(other, 110), TrackOutcome::kUnmatched);
  other = key;
  other.client_port = 40001;
  EXPECT_EQ(tracker->claim(other, 110), TrackOutcome::kUnmatched);
  other = key;
  other.server_port = 5353;
  EXPECT_EQ(tracker->claim(other, 110), TrackOutcome::kUnmatched);
  other = key;
  other.id = 0x1235;
  EXPECT_EQ(tracker->claim(other, 110), TrackOutcome::kUnmatched);
  other = key;
  other.client.family = policy::Family::kV6;
  EXPECT_EQ(tracker->claim(other, 110), TrackOutcome::kUnmatched);
  // Right addresses, ports and ID, another question: told apart, and the entry stays claimable.
  EXPECT_EQ(tracker->claim(key_for(*tracker, 40000, 0x1234, kOtherName), 110),
            TrackOutcome::kQuestionMismatch);
  EXPECT_EQ(tracker->claim(key_for(*tracker, 40000, 0x1234, kName, 28), 110),
            TrackOutcome::kQuestionMismatch);
  EXPECT_EQ(tracker->claim(key, 120), TrackOutcome::kClaimed);
}

TEST(QueryTrackerTest, TheDigestCoversNameTypeAndClass) {
  auto tracker = make();
  const uint64_t d = tracker->question_digest(kName, 1, 1);
  EXPECT_EQ(d, tracker->question_digest(kName, 1, 1));
  EXPECT_NE(d, tracker->question_digest(kOtherName, 1, 1));
  EXPECT_NE(d, tracker->question_digest(kName, 28, 1));
  EXPECT_NE(d, tracker->question_digest(kName, 1, 3));
  EXPECT_NE(d, tracker->question_digest(std::span(kName).first(12), 1, 1));
  auto other_seed = QueryTracker::create({1024, 1000}, kSeed + 1);
  ASSERT_TRUE(other_seed.has_value());
  EXPECT_NE(d, (*other_seed)->question_digest(kName, 1, 1));
}

TEST(QueryTrackerTest, AnAnswerAfterTheLifetimeIsLateAndTheSlotIsFreeAgain) {
  auto tracker = make(8, 1000);  // one probe window: every key competes for the same 8 slots
  std::vector<QueryKey> keys;
  for (uint16_t i = 0; i < 8; ++i) {
    keys.push_back(key_for(*tracker, static_cast<uint16_t>(40000 + i)));
    ASSERT_EQ(tracker->insert(keys.back(), 100), TrackOutcome::kInserted);
  }
  EXPECT_EQ(tracker->claim(keys[0], 1100), TrackOutcome::kLate);  // expiry 1100 is exclusive
  EXPECT_EQ(tracker->claim(keys[1], 1099), TrackOutcome::kClaimed);
  const QueryKey fresh = key_for(*tracker, 50000);
  EXPECT_EQ(tracker->insert(fresh, 1100), TrackOutcome::kInserted);
  EXPECT_EQ(tracker->claim(fresh, 1200), TrackOutcome::kClaimed);
}

TEST(QueryTrackerTest, AFullWindowRefusesThenClaimedSlotsAreReused) {
  auto tracker = make(8, 1000);
  std::vector<QueryKey> keys;
  for (uint16_t i = 0; i < 8; ++i) {
    keys.push_back(key_for(*tracker, static_cast<uint16_t>(40000 + i)));
    ASSERT_EQ(tracker->insert(keys.back(), 100), TrackOutcome::kInserted);
  }
  const QueryKey ninth = key_for(*tracker, 41000);
  EXPECT_EQ(tracker->insert(ninth, 200), TrackOutcome::kFull);
  EXPECT_EQ(tracker->claim(ninth, 200), TrackOutcome::kUnmatched);
  ASSERT_EQ(tracker->claim(keys[3], 200), TrackOutcome::kClaimed);
  // The claimed slot serves duplicate detection until an insert needs it.
  EXPECT_EQ(tracker->claim(keys[3], 210), TrackOutcome::kDuplicate);
  EXPECT_EQ(tracker->insert(ninth, 220), TrackOutcome::kInserted);
  EXPECT_EQ(tracker->claim(keys[3], 230), TrackOutcome::kUnmatched);
  EXPECT_EQ(tracker->claim(ninth, 230), TrackOutcome::kClaimed);
  for (uint16_t i = 0; i < 8; ++i)
    if (i != 3) {
      EXPECT_EQ(tracker->claim(keys[i], 240), TrackOutcome::kClaimed);
    }
}

// A client retransmitting the same query: each copy is recorded, so each answer is let through
// once, and a third answer is a duplicate.
TEST(QueryTrackerTest, ARetransmittedQueryIsAnsweredOncePerCopy) {
  auto tracker = make();
  const QueryKey key = key_for(*tracker);
  ASSERT_EQ(tracker->insert(key, 100), TrackOutcome::kInserted);
  ASSERT_EQ(tracker->insert(key, 300), TrackOutcome::kInserted);
  EXPECT_EQ(tracker->claim(key, 400), TrackOutcome::kClaimed);
  EXPECT_EQ(tracker->claim(key, 400), TrackOutcome::kClaimed);
  EXPECT_EQ(tracker->claim(key, 400), TrackOutcome::kDuplicate);
}

TEST(QueryTrackerTest, BadConfigurationIsRefused) {
  EXPECT_FALSE(QueryTracker::create({1000, 1000}, kSeed).has_value());  // not a power of two
  EXPECT_FALSE(QueryTracker::create({4, 1000}, kSeed).has_value());     // below the window
  auto zero = QueryTracker::create({1024, 0}, kSeed);
  ASSERT_FALSE(zero.has_value());
  EXPECT_NE(zero.error().message.find("lifetime"), std::string::npos);
}

// Workers forwarding on their own queues while two other workers receive every answer twice (a
// duplicated response racing on two queues): each query is claimed exactly once.
TEST(QueryTrackerTest, ConcurrentWorkersClaimEachQueryExactlyOnce) {
  constexpr int kProducers = 2;
  constexpr int kClaimers = 2;
  constexpr uint16_t kPerProducer = 20000;
  auto tracker = make(size_t{1} << 17, 60000);
  std::vector<QueryKey> keys;
  for (int p = 0; p < kProducers; ++p)
    for (uint16_t i = 0; i < kPerProducer; ++i)
      keys.push_back(key_for(*tracker, static_cast<uint16_t>(1024 + i), static_cast<uint16_t>(p)));
  std::vector<std::atomic<uint32_t>> published(kProducers);
  std::vector<std::atomic<int>> claims(keys.size());
  std::atomic<int> full{0};
  std::atomic<int> duplicates{0};
  std::vector<std::thread> threads;
  for (int p = 0; p < kProducers; ++p)
    threads.emplace_back([&, p] {
      for (uint16_t i = 0; i < kPerProducer; ++i) {
        if (tracker->insert(keys[size_t(p) * kPerProducer + i], 1) != TrackOutcome::kInserted)
          full.fetch_add(1);
        published[size_t(p)].store(i + 1u, std::memory_order_release);
      }
    });
  for (int c = 0; c < kClaimers; ++c)
    threads.emplace_back([&] {
      for (int p = 0; p < kProducers; ++p)
        for (uint32_t i = 0; i < kPerProducer; ++i) {
          while (published[size_t(p)].load(std::memory_order_acquire) <= i)
            std::this_thread::yield();
          const size_t k = size_t(p) * kPerProducer + i;
          switch (tracker->claim(keys[k], 2)) {
            case TrackOutcome::kClaimed:
              claims[k].fetch_add(1);
              break;
            case TrackOutcome::kDuplicate:
              duplicates.fetch_add(1);
              break;
            default:
              break;
          }
        }
    });
  for (auto& t : threads) t.join();
  ASSERT_EQ(full.load(), 0);
  for (size_t k = 0; k < keys.size(); ++k) ASSERT_EQ(claims[k].load(), 1) << "key " << k;
  EXPECT_EQ(duplicates.load(), static_cast<int>(keys.size()) * (kClaimers - 1));
}

// A tiny table with a short lifetime, so slots are reused while other workers read them: a key
// read while its slot is rewritten must never let the same query be claimed twice, nor another
// query's answer through.
TEST(QueryTrackerTest, SlotReuseUnderRacesNeverClaimsTwice) {
  constexpr uint16_t kKeys = 30000;
  auto tracker = make(64, 3);
  std::vector<QueryKey> keys;
  for (uint16_t i = 0; i < kKeys; ++i)
    keys.push_back(key_for(*tracker, static_cast<uint16_t>(i + 1), static_cast<uint16_t>(i)));
  std::vector<std::atomic<int>> claims(kKeys);
  std::atomic<uint32_t> inserted{0};
  std::atomic<int> total_claims{0};
  std::array<std::atomic<uint32_t>, 2> progress{};
  std::thread producer([&] {
    for (uint16_t i = 0; i < kKeys; ++i) {
      // Stay at most 16 queries ahead of both claimers (an entry lives for ~24 inserts).
      while (std::min(progress[0].load(), progress[1].load()) + 16 < i) std::this_thread::yield();
      (void)tracker->insert(keys[i], i / 8u);  // time moves: a slot is free again after 3 ms
      inserted.store(i + 1u, std::memory_order_release);
    }
  });
  auto claimer = [&](size_t me) {
    for (uint32_t i = 0; i < kKeys; ++i) {
      while (inserted.load(std::memory_order_acquire) <= i) std::this_thread::yield();
      if (tracker->claim(keys[i], i / 8u) == TrackOutcome::kClaimed) {
        claims[i].fetch_add(1);
        total_claims.fetch_add(1);
      }
      progress[me].store(i + 1);
    }
  };
  std::thread a(claimer, 0);
  std::thread b(claimer, 1);
  producer.join();
  a.join();
  b.join();
  for (uint16_t i = 0; i < kKeys; ++i) ASSERT_LE(claims[i].load(), 1) << "key " << i;
  EXPECT_GT(total_claims.load(), kKeys / 10);  // not vacuous: answers got through
}

}  // namespace
}  // namespace dnsproxy::datapath::pipeline
