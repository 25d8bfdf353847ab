// A set of name patterns compiled into one matcher whose cost per name does not grow with the
// number of patterns (hot path).
//
// Layout, chosen for what policies actually contain:
//  - literal patterns ("api.example.com", "**.example.com") live in one open-addressing hash set
//    of wire names. One backward pass over the query's labels hashes every suffix of it; the
//    full name is looked up as an exact name, each proper suffix as a "**." suffix. Cost: one
//    probe per label.
//  - patterns with an in-label `*` are compiled into one DFA over byte classes, fed the labels
//    right to left (so literal right-hand labels prune early) with a separator symbol between
//    labels. Cost: one table load per byte. Subset construction is capped (kMaxWildcardStates);
//    a pattern set that needs more is rejected at build time rather than slowed down.
//  - an all-star pattern, or an empty pattern list, is a flag.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "common/result.h"
#include "policy/name_pattern.h"

namespace dnsproxy::policy {

class NameMatcher {
 public:
  static constexpr uint32_t kMaxWildcardStates = 1u << 16;

  // An empty pattern list allows every name (Cilium: a DNS rule without patterns).
  [[nodiscard]] static Result<NameMatcher> build(std::span<const NamePattern> patterns);
  [[nodiscard]] static NameMatcher match_everything();

  // `wire`: an uncompressed, lowercased wire name ending with the root byte, as the DNS codec
  // copies it out of a packet. A malformed name (bad length bytes, no root) never matches.
  [[nodiscard]] bool matches(std::span<const uint8_t> wire) const noexcept;

  [[nodiscard]] size_t memory_bytes() const noexcept;

 private:
  struct LiteralSlot {
    uint64_t hash = 0;
    uint32_t offset = 0;  // into literal_bytes_
    uint8_t length = 0;   // wire bytes, root included
    uint8_t kinds = 0;    // kExactName | kSubdomainSuffix; 0 marks an empty slot
  };
  static constexpr uint8_t kExactName = 1;
  static constexpr uint8_t kSubdomainSuffix = 2;

  void add_literal(std::span<const uint8_t> wire, uint8_t kind);
  [[nodiscard]] uint8_t find_literal(uint64_t hash, const uint8_t* wire, size_t length) const noexcept;
  Result<void> build_wildcards(std::span<const NamePattern* const> patterns);
  [[nodiscard]] bool wildcards_match(const uint8_t* wire, const uint8_t* label_offsets,
                                     size_t labels) const noexcept;

  bool match_every_name_ = false;  // no patterns at all: even names with odd bytes pass
  bool match_all_ = false;         // an all-star pattern: names of pattern characters pass
  std::vector<LiteralSlot> literal_slots_;  // power-of-two size, load <= 1/2
  std::vector<uint8_t> literal_bytes_;
  size_t literal_count_ = 0;

  // Wildcard DFA: state 0 is dead, state 1 the start. transitions_[state * class_count_ + cls].
  std::vector<uint32_t> transitions_;
  std::vector<uint8_t> accepting_;
  uint8_t byte_class_[256] = {};
  uint32_t class_count_ = 0;
};

}  // namespace dnsproxy::policy
