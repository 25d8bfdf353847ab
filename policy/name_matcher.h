// A set of name patterns compiled into one matcher whose cost per name does not grow with the
// number of patterns (hot path).
//
// Layout, chosen for what policies actually contain:
//  - one open-addressing hash table of wire-name suffixes. One backward pass over the query's
//    labels hashes every suffix of it (root included) and probes the table where a pattern with
//    that many labels exists: the full name as an exact name (matchName, a literal
//    matchPattern), each proper suffix as a "**." suffix, and each suffix as the literal
//    right-hand part of wildcard patterns.
//  - patterns with an in-label `*` are split at their rightmost wildcard label: the literal labels
//    right of it are the hash key of a bucket, and the labels left of it (where the stars are)
//    are compiled, per bucket, into a small DFA over byte classes, fed right to left with a
//    separator symbol between labels. "api-*.region1.example.org" costs one probe for
//    "region1.example.org" and a 5-byte DFA walk. Subset construction is capped per bucket
//    (kMaxStatesPerSuffix): only patterns sharing a suffix can blow up together, and a set that
//    needs more is rejected at build time rather than slowing the control thread or the match.
//  - an all-star pattern, or an empty pattern list, is a flag.
// So a decision costs one probe per label plus one short DFA walk per wildcard bucket that
// matched, whatever the number of patterns.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <vector>

#include "common/result.h"
#include "policy/name_pattern.h"

namespace dnsproxy::policy {

class NameMatcher {
 public:
  static constexpr uint32_t kMaxStatesPerSuffix = 4096;

  // An empty pattern list allows every name (Cilium: a DNS rule without patterns).
  [[nodiscard]] static Result<NameMatcher> build(std::span<const NamePattern> patterns);
  [[nodiscard]] static NameMatcher match_everything();

  // `wire`: an uncompressed, lowercased wire name ending with the root byte, as the DNS codec
  // copies it out of a packet. A malformed name (bad length bytes, no root) never matches.
  [[nodiscard]] bool matches(std::span<const uint8_t> wire) const noexcept;

  [[nodiscard]] size_t memory_bytes() const noexcept;

  // A wire name split into labels (defined in name_matcher.cpp; public only so the file's
  // helpers can name it).
  struct Labels;

 private:
  struct SuffixSlot {
    uint64_t hash = 0;
    uint32_t offset = 0;          // into suffix_bytes_
    uint32_t wildcard_start = 0;  // DFA start state of the bucket (kWildcardSuffix)
    uint8_t length = 0;           // wire bytes, root included
    uint8_t kinds = 0;            // kExactName | kSubdomainSuffix | kWildcardSuffix; 0: empty
  };
  static constexpr uint8_t kExactName = 1;
  static constexpr uint8_t kSubdomainSuffix = 2;
  static constexpr uint8_t kWildcardSuffix = 4;
  using LabelCounts = std::array<uint64_t, 2>;  // bit n: some entry of this kind has n labels

  void add_suffix(std::span<const uint8_t> wire, uint8_t kind, uint32_t wildcard_start);
  [[nodiscard]] const SuffixSlot* find_suffix(uint64_t hash, const uint8_t* wire,
                                              size_t length) const noexcept;
  void assign_byte_classes(std::span<const NamePattern* const> wildcards);
  Result<uint32_t> determinize(std::span<const std::pair<const NamePattern*, size_t>> bucket);
  [[nodiscard]] bool wildcard_bucket_matches(uint32_t start, const Labels& labels,
                                             size_t left_labels) const noexcept;

  bool match_every_name_ = false;         // no patterns at all: even names with odd bytes pass
  bool match_all_ = false;                // an all-star pattern: names of pattern characters pass
  std::vector<SuffixSlot> suffix_slots_;  // power-of-two size, load <= 1/2
  std::vector<uint8_t> suffix_bytes_;
  LabelCounts exact_label_counts_{};
  LabelCounts subdomain_label_counts_{};
  LabelCounts wildcard_label_counts_{};

  // Wildcard DFAs, all buckets in one table: state 0 is dead;
  // transitions_[state * class_count_ + class].
  std::vector<uint32_t> transitions_;
  std::vector<uint8_t> accepting_;
  uint8_t byte_class_[256] = {};
  uint32_t class_count_ = 0;
};

}  // namespace dnsproxy::policy
