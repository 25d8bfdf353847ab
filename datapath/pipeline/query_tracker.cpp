#include "datapath/pipeline/query_tracker.h"

#include <bit>
#include <cstring>
#include <string>

namespace dnsproxy::datapath::pipeline {
namespace {

// State word: kind (2 bits) | generation (22 bits) | expiry in steady-clock ms (40 bits, 34
// years). The generation moves on every reuse of the slot, so a reader that saw the old key
// cannot complete a claim against the new one (no ABA short of 4M reuses within one probe).
enum Kind : uint64_t { kEmpty = 0, kBusy = 1, kLive = 2, kClaimedKind = 3 };
constexpr unsigned kKindShift = 62;
constexpr unsigned kGenerationShift = 40;
constexpr uint64_t kGenerationMask = (uint64_t{1} << 22) - 1;
constexpr uint64_t kExpiryMask = (uint64_t{1} << 40) - 1;

constexpr uint64_t make_state(uint64_t kind, uint64_t generation, uint64_t expiry) noexcept {
  return kind << kKindShift | (generation & kGenerationMask) << kGenerationShift |
         (expiry & kExpiryMask);
}
constexpr uint64_t kind_of(uint64_t state) noexcept {
  return state >> kKindShift;
}
constexpr uint64_t generation_of(uint64_t state) noexcept {
  return state >> kGenerationShift & kGenerationMask;
}
constexpr uint64_t expiry_of(uint64_t state) noexcept {
  return state & kExpiryMask;
}

// 64x64 -> 128 multiply folded to 64 bits: the mixing step of wyhash-style hashes.
uint64_t mum(uint64_t a, uint64_t b) noexcept {
  const unsigned __int128 product = static_cast<unsigned __int128>(a) * b;
  return static_cast<uint64_t>(product) ^ static_cast<uint64_t>(product >> 64);
}
constexpr uint64_t kMix0 = 0xa0761d6478bd642full;
constexpr uint64_t kMix1 = 0xe7037ed1a0b428dbull;

uint64_t load_u64(const uint8_t* p) noexcept {
  uint64_t v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

}  // namespace

Result<std::unique_ptr<QueryTracker>> QueryTracker::create(QueryTrackerConfig config,
                                                           uint64_t seed) {
  if (config.slots < kProbeWindow || !std::has_single_bit(config.slots))
    return fail("query tracker: ", std::to_string(config.slots),
                " slots is not a power of two >= ", std::to_string(kProbeWindow));
  if (config.lifetime_ms == 0) return fail("query tracker: the query lifetime must be > 0 ms");
  return std::unique_ptr<QueryTracker>(new QueryTracker(config, seed));
}

QueryTracker::QueryTracker(QueryTrackerConfig config, uint64_t seed)
    : slots_(new Slot[config.slots]),
      mask_(config.slots - 1),
      lifetime_ms_(config.lifetime_ms),
      seed_(seed) {}

uint64_t QueryTracker::question_digest(std::span<const uint8_t> qname, uint16_t qtype,
                                       uint16_t qclass) const noexcept {
  uint64_t h = seed_ ^ mum(qname.size() ^ kMix0, (uint64_t{qtype} << 16 | qclass) ^ kMix1);
  size_t i = 0;
  for (; i + 8 <= qname.size(); i += 8) h = mum(h ^ load_u64(&qname[i]), kMix1 ^ seed_);
  uint64_t tail = 0;
  if (i < qname.size()) std::memcpy(&tail, qname.data() + i, qname.size() - i);
  return mum(h ^ tail ^ kMix0, kMix1 ^ seed_);
}

QueryTracker::KeyWords QueryTracker::words_of(const QueryKey& key) noexcept {
  KeyWords w{};
  std::memcpy(&w[0], key.client.bytes.data(), 16);
  std::memcpy(&w[2], key.server.bytes.data(), 16);
  w[4] = uint64_t{key.client_port} << 48 | uint64_t{key.server_port} << 32 |
         uint64_t{key.id} << 16 | static_cast<uint64_t>(key.client.family);
  w[5] = key.question;
  return w;
}

size_t QueryTracker::home_of(const KeyWords& w) const noexcept {
  // The question stays out of the hash: a response with the right addresses, ports and ID but
  // another question probes the same window, which is how kQuestionMismatch is told apart.
  const uint64_t h =
      mum(mum(w[0] ^ seed_, w[1] ^ kMix0) ^ mum(w[2] ^ kMix1, w[3] ^ seed_), w[4] ^ kMix0);
  return static_cast<size_t>(h) & mask_;
}

TrackOutcome QueryTracker::insert(const QueryKey& key, uint64_t now_ms) noexcept {
  const KeyWords words = words_of(key);
  const size_t home = home_of(words);
  const uint64_t expiry = now_ms + lifetime_ms_;
  // Empty and expired slots first; a claimed one (which only serves duplicate detection) when
  // the window has neither.
  Slot* claimed = nullptr;
  uint64_t claimed_state = 0;
  for (size_t i = 0; i < kProbeWindow; ++i) {
    Slot& slot = slots_[(home + i) & mask_];
    uint64_t state = slot.state.load(std::memory_order_relaxed);
    const uint64_t kind = kind_of(state);
    const bool free = kind == kEmpty || (kind != kBusy && expiry_of(state) <= now_ms);
    if (!free) {
      if (kind == kClaimedKind && claimed == nullptr) {
        claimed = &slot;
        claimed_state = state;
      }
      continue;
    }
    if (!slot.state.compare_exchange_strong(state, make_state(kBusy, generation_of(state) + 1, 0),
                                            std::memory_order_acquire, std::memory_order_relaxed))
      continue;
    for (size_t w = 0; w < kKeyWords; ++w) slot.key[w].store(words[w], std::memory_order_release);
    slot.state.store(make_state(kLive, generation_of(state) + 1, expiry),
                     std::memory_order_release);
    return TrackOutcome::kInserted;
  }
  if (claimed != nullptr &&
      claimed->state.compare_exchange_strong(
          claimed_state, make_state(kBusy, generation_of(claimed_state) + 1, 0),
          std::memory_order_acquire, std::memory_order_relaxed)) {
    for (size_t w = 0; w < kKeyWords; ++w)
      claimed->key[w].store(words[w], std::memory_order_release);
    claimed->state.store(make_state(kLive, generation_of(claimed_state) + 1, expiry),
                         std::memory_order_release);
    return TrackOutcome::kInserted;
  }
  return TrackOutcome::kFull;
}

TrackOutcome QueryTracker::claim(const QueryKey& key, uint64_t now_ms) noexcept {
  const KeyWords words = words_of(key);
  const size_t home = home_of(words);
  // The most telling outcome seen so far: kUnmatched < kQuestionMismatch < kLate < kDuplicate.
  TrackOutcome best = TrackOutcome::kUnmatched;
  auto note = [&best](TrackOutcome outcome) {
    if (static_cast<uint8_t>(outcome) < static_cast<uint8_t>(best)) best = outcome;
  };
  for (size_t i = 0; i < kProbeWindow; ++i) {
    Slot& slot = slots_[(home + i) & mask_];
    // A slot whose state moves while it is read (another worker claiming the same entry, or a
    // reuse) is read again, a few times, so a racing duplicate is still told apart.
    uint64_t state = slot.state.load(std::memory_order_acquire);
    for (int attempt = 0; attempt < 4; ++attempt) {
      const uint64_t kind = kind_of(state);
      if (kind != kLive && kind != kClaimedKind) break;
      KeyWords seen;
      for (size_t w = 0; w < kKeyWords; ++w) seen[w] = slot.key[w].load(std::memory_order_acquire);
      if (const uint64_t now_state = slot.state.load(std::memory_order_acquire);
          now_state != state) {
        state = now_state;  // changed under us: read it again
        continue;
      }
      if (std::memcmp(seen.data(), words.data(), sizeof(uint64_t) * 5) != 0) break;
      if (seen[5] != words[5]) {
        note(TrackOutcome::kQuestionMismatch);
        break;
      }
      if (expiry_of(state) <= now_ms) {
        note(TrackOutcome::kLate);
        break;
      }
      if (kind == kClaimedKind) {
        note(TrackOutcome::kDuplicate);
        break;
      }
      const uint64_t claimed = make_state(kClaimedKind, generation_of(state), expiry_of(state));
      if (slot.state.compare_exchange_strong(state, claimed, std::memory_order_acq_rel,
                                             std::memory_order_acquire))
        return TrackOutcome::kClaimed;
      // Lost the race: `state` now holds what won (another worker's claim of this very entry, a
      // duplicated answer, or a reuse); judge that.
    }
  }
  return best;
}

}  // namespace dnsproxy::datapath::pipeline
