// Readers decide against snapshots while a writer churns them: run under TSan (tools/run test
// builds build/tsan for this) to show the publication protocol has no data race, and under ASan
// to show no reader ever touches a freed snapshot.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "policy/snapshot.h"
#include "test/policy/test_names.h"

namespace dnsproxy::policy {
namespace {

TEST(QsbrStressTest, ReadersNeverSeeAFreedSnapshot) {
  QsbrDomain domain;
  SnapshotStore store(domain);
  const IpAddress client = *IpAddress::parse("192.0.2.10");
  const IpAddress server = *IpAddress::parse("198.51.100.53");
  const std::vector<uint8_t> name = test::wire("api.example.com");

  std::atomic<bool> stop{false};
  std::atomic<uint64_t> decisions{0};
  std::vector<std::thread> readers;
  for (int r = 0; r < 3; ++r) {
    readers.emplace_back([&] {
      auto reader = domain.register_reader();
      ASSERT_TRUE(reader);
      uint64_t last_version = 0;
      for (uint64_t batch = 0; !stop.load(std::memory_order_relaxed); ++batch) {
        const Snapshot* s = store.acquire();
        EXPECT_GE(s->version, last_version);  // versions never go backwards for a reader
        last_version = s->version;
        for (int q = 0; q < 32; ++q) {
          const Decision d = s->decide(client, server, 53, Protocol::kUdp, name);
          // Every published snapshot maps the client to endpoint version % 7 + 1.
          if (s->endpoints->size() != 0) {
            EXPECT_EQ(d.endpoint_id, s->version % 7 + 1);
          }
        }
        decisions.fetch_add(32, std::memory_order_relaxed);
        reader->quiescent();
        if (batch % 64 == 0) {  // an idle period now and then
          reader->offline();
          std::this_thread::yield();
          reader->online();
        }
      }
    });
  }
  for (uint32_t i = 0; i < 20000; ++i) {
    const uint64_t next_version = store.current().version + 1;
    const std::vector<EndpointEntry> endpoints = {
        {client, {static_cast<uint32_t>(next_version % 7 + 1), 10000}}};
    store.replace({.endpoints = std::make_shared<EndpointTable>(endpoints)});
  }
  while (decisions.load() < 1000) std::this_thread::yield();
  stop = true;
  for (std::thread& t : readers) t.join();
  EXPECT_EQ(store.reclaim(), 0u);  // readers gone: everything retired is freed
}

}  // namespace
}  // namespace dnsproxy::policy
