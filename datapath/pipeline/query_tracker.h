// The forwarded-query tracker: which queries this proxy forwarded and has not seen answered, so a
// response is accepted only when it answers one of them (DESIGN.md 6). Nobody can then plumb
// addresses for an endpoint by sending it responses to queries it never made.
//
// One table for the whole process, shared by every worker: a response may arrive on another
// queue, so on another worker, than its query. A fixed-size open-addressing table of one cache
// line per slot; each slot's state word (kind, generation, expiry) is the only thing a thread
// changes with a compare-and-swap, so insert and claim are lock-free and allocation-free:
//   insert (the forwarding worker): take a free, claimed or expired slot in the probe window
//     (CAS to busy), write the key, publish it live with its expiry (release store);
//   claim (the worker the response reached): find the live slot whose key matches and CAS it to
//     claimed; of two workers claiming the same entry (a duplicated response) exactly one wins.
// Readers validate a slot's key like a seqlock: state, key words, state again; a key read while a
// writer reuses the slot is discarded because the generation moved. (Key words are stored with
// release and loaded with acquire, instead of fences, which TSan cannot check: a reader that saw
// a new key word then sees the writer's busy state.)
//
// Entries age out: a live entry expires `lifetime` after its insert (a response later than that
// is kLate), and its slot is free again. A claimed entry keeps its key until a later insert
// reuses the slot (free slots and expired ones first), so a duplicated response is told apart
// from an unmatched one while the table has room. When every slot of the probe window is live,
// insert refuses (kFull): the caller drops the query and counts it, since its response could
// never be accepted.
//
// The question (name, type, class) is kept as a 64-bit digest keyed with a per-process random
// seed; the addresses, ports and DNS ID are kept in full.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

#include "common/result.h"
#include "policy/ip_address.h"

namespace dnsproxy::datapath::pipeline {

// What identifies a forwarded query, in the direction of the query.
struct QueryKey {
  policy::IpAddress client;
  policy::IpAddress server;  // same family as client
  uint16_t client_port = 0;
  uint16_t server_port = 0;
  uint16_t id = 0;
  uint64_t question = 0;  // QueryTracker::question_digest
};

enum class TrackOutcome : uint8_t {
  kInserted,          // insert: recorded
  kFull,              // insert: no free slot in the probe window
  kClaimed,           // claim: answers a forwarded query, first answer
  kDuplicate,         // claim: that query was answered already
  kLate,              // claim: that query's entry expired before the answer came
  kQuestionMismatch,  // claim: addresses, ports and ID match a query, the question does not
  kUnmatched,         // claim: no query with these addresses, ports and ID
};

struct QueryTrackerConfig {
  size_t slots = size_t{1} << 17;  // a power of two, >= kProbeWindow
  uint32_t lifetime_ms = 5000;     // how long a forwarded query waits for its answer
};

class QueryTracker {
 public:
  static constexpr size_t kProbeWindow = 8;

  // Cold path: allocates the table. Fails when slots is not a power of two >= kProbeWindow or
  // lifetime_ms is 0. `seed` keys the hashes (random in the daemon, fixed in tests).
  [[nodiscard]] static Result<std::unique_ptr<QueryTracker>> create(QueryTrackerConfig config,
                                                                    uint64_t seed);

  // The question's digest: `qname` lowercased, uncompressed wire form (dns::copy_question_name).
  [[nodiscard]] uint64_t question_digest(std::span<const uint8_t> qname, uint16_t qtype,
                                         uint16_t qclass) const noexcept;

  // Any worker. `now_ms`: steady-clock milliseconds (the same clock for every caller).
  [[nodiscard]] TrackOutcome insert(const QueryKey& key, uint64_t now_ms) noexcept;
  [[nodiscard]] TrackOutcome claim(const QueryKey& key, uint64_t now_ms) noexcept;

  [[nodiscard]] size_t slot_count() const noexcept { return mask_ + 1; }
  [[nodiscard]] uint32_t lifetime_ms() const noexcept { return lifetime_ms_; }

 private:
  static constexpr size_t kKeyWords = 6;
  struct alignas(64) Slot {
    std::atomic<uint64_t> state{0};
    std::atomic<uint64_t> key[kKeyWords];
  };
  using KeyWords = std::array<uint64_t, kKeyWords>;

  QueryTracker(QueryTrackerConfig config, uint64_t seed);
  [[nodiscard]] static KeyWords words_of(const QueryKey& key) noexcept;
  [[nodiscard]] size_t home_of(const KeyWords& words) const noexcept;

  std::unique_ptr<Slot[]> slots_;
  size_t mask_;
  uint32_t lifetime_ms_;
  uint64_t seed_;
};

}  // namespace dnsproxy::datapath::pipeline
