#include "policy/name_matcher.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cstring>
#include <map>
#include <string>

#include "dns/name_text.h"

namespace dnsproxy::policy {
namespace {

constexpr size_t kMaxLabels = dns::kMaxNameWireLength / 2;  // 1-byte labels + root

// A hash over the labels of a wire name, right to left, so the running value after label i is
// the hash of the suffix starting at label i. Words of 8 bytes, the tail masked, so `label` must
// point into a buffer padded by 8 bytes (Labels::bytes). The build side and the hot path both use
// it.
constexpr uint64_t kHashSeed = 0xcbf29ce484222325ull;
constexpr uint64_t kHashMultiplier = 0x9e3779b97f4a7c15ull;

inline uint64_t hash_label(uint64_t h, const uint8_t* label) noexcept {
  size_t remaining = size_t{label[0]} + 1;  // the length byte is hashed too
  for (;; label += 8, remaining -= 8) {
    uint64_t word;
    std::memcpy(&word, label, 8);
    if (remaining <= 8) {
      word &= ~uint64_t{0} >> (64 - 8 * remaining);
      return (std::rotl(h, 29) ^ word) * kHashMultiplier;
    }
    h = (std::rotl(h, 29) ^ word) * kHashMultiplier;
  }
}

inline size_t slot_of(uint64_t hash, size_t mask) noexcept {
  return static_cast<size_t>((hash * 0x9e3779b97f4a7c15ull) >> 32) & mask;
}

constexpr std::array<bool, 256> make_label_char_table() {
  std::array<bool, 256> table{};
  for (int c = 0; c < 256; ++c) table[c] = is_pattern_label_char(static_cast<uint8_t>(c));
  return table;
}
constexpr std::array<bool, 256> kLabelChar = make_label_char_table();

}  // namespace

// The labels of a wire name: where each starts, and how many leading labels consist only of
// pattern characters (what "**." and "*" may cover).
struct NameMatcher::Labels {
  uint8_t bytes[dns::kMaxNameWireLength + 8];  // the name, then zero padding for word loads
  uint8_t offsets[kMaxLabels];
  size_t count = 0;
  size_t leading_plain = 0;  // labels 0..leading_plain-1 are all [-a-zA-Z0-9_]
  size_t name_length = 0;    // wire bytes including the root
};

// False for anything that is not a well-formed uncompressed name (the codec guarantees one; a
// bad input simply matches nothing).
namespace {

using Labels = NameMatcher::Labels;

bool split_labels(std::span<const uint8_t> wire, Labels& out) noexcept {
  if (wire.empty() || wire.size() > dns::kMaxNameWireLength + 1) return false;
  size_t at = 0;
  bool plain_so_far = true;
  while (true) {
    if (at >= wire.size()) return false;
    const size_t length = wire[at];
    if (length == 0) break;
    if (length > dns::kMaxLabelLength || at + 1 + length >= wire.size()) return false;
    if (out.count == kMaxLabels) return false;
    out.offsets[out.count++] = static_cast<uint8_t>(at);
    if (plain_so_far) {
      for (size_t k = at + 1; k <= at + length; ++k) plain_so_far &= kLabelChar[wire[k]];
      if (plain_so_far) out.leading_plain = out.count;
    }
    at += 1 + length;
  }
  out.name_length = at + 1;
  if (out.name_length > dns::kMaxNameWireLength) return false;
  std::memcpy(out.bytes, wire.data(), out.name_length);
  std::memset(out.bytes + out.name_length, 0, 8);
  return true;
}

// ---- Wildcard NFA, one token per position, determinized at build time. ----
enum class Token : uint8_t {
  kLiteral,     // one byte (its class)
  kStar,        // zero or more pattern characters within the label
  kSeparator,   // end of a label
  kLabelFirst,  // "**.": first byte of a covered label
  kLabelRest,   // "**.": further bytes, or the end of the covered label
  kAccept,      // whole name consumed
  kAcceptMore,  // "**.": whole name consumed, or another covered label may follow
};
struct NfaPosition {
  Token token;
  uint8_t byte_class;
};

constexpr uint8_t kDeadClass = 0;        // bytes no pattern character can match
constexpr uint8_t kSeparatorClass = 1;   // virtual: fed between labels
constexpr uint8_t kOtherPlainClass = 2;  // pattern characters no wildcard pattern names literally

bool is_plain_class(uint8_t c) {
  return c >= kOtherPlainClass;
}

}  // namespace

NameMatcher NameMatcher::match_everything() {
  NameMatcher matcher;
  matcher.match_every_name_ = true;
  return matcher;
}

namespace {

bool has_star(const uint8_t* label) {
  return std::memchr(label + 1, '*', label[0]) != nullptr;
}

bool has_bit(const std::array<uint64_t, 2>& counts, size_t n) {
  return counts[n / 64] >> (n % 64) & 1;
}

}  // namespace

Result<NameMatcher> NameMatcher::build(std::span<const NamePattern> patterns) {
  if (patterns.empty()) return match_everything();
  NameMatcher matcher;
  // Wildcard buckets: literal right-hand suffix -> (pattern, labels left of that suffix).
  std::map<std::string, std::vector<std::pair<const NamePattern*, size_t>>> buckets;
  std::vector<const NamePattern*> wildcards;
  size_t literals = 0;
  for (const NamePattern& p : patterns) {
    if (p.match_all) {
      matcher.match_all_ = true;
    } else if (p.has_wildcard()) {
      Labels labels;
      [[maybe_unused]] const bool ok = split_labels(p.wire, labels);  // validated by the parser
      size_t left = labels.count;
      while (!has_star(labels.bytes + labels.offsets[left - 1])) --left;
      const size_t suffix_at = left < labels.count ? labels.offsets[left] : labels.name_length - 1;
      buckets[std::string(p.wire.begin() + suffix_at, p.wire.end())].push_back({&p, left});
      wildcards.push_back(&p);
    } else {
      ++literals;
    }
  }
  matcher.suffix_slots_.resize(std::bit_ceil(std::max<size_t>(8, (literals + buckets.size()) * 2)));
  for (const NamePattern& p : patterns) {
    if (!p.match_all && !p.has_wildcard())
      matcher.add_suffix(p.wire, p.any_subdomain ? kSubdomainSuffix : kExactName, 0);
  }
  if (!buckets.empty()) {
    matcher.assign_byte_classes(wildcards);
    for (const auto& [suffix, bucket] : buckets) {
      auto start = matcher.determinize(bucket);
      if (!start) return tl::unexpected(start.error());
      const std::span<const uint8_t> suffix_wire(reinterpret_cast<const uint8_t*>(suffix.data()),
                                                 suffix.size());
      matcher.add_suffix(suffix_wire, kWildcardSuffix, *start);
    }
  }
  return matcher;
}

void NameMatcher::add_suffix(std::span<const uint8_t> wire, uint8_t kind, uint32_t wildcard_start) {
  Labels labels;
  [[maybe_unused]] const bool ok = split_labels(wire, labels);
  uint64_t hash = kHashSeed;
  for (size_t i = labels.count; i-- > 0;) hash = hash_label(hash, labels.bytes + labels.offsets[i]);
  LabelCounts& counts = kind == kExactName         ? exact_label_counts_
                        : kind == kSubdomainSuffix ? subdomain_label_counts_
                                                   : wildcard_label_counts_;
  counts[labels.count / 64] |= uint64_t{1} << (labels.count % 64);
  const size_t mask = suffix_slots_.size() - 1;
  for (size_t slot = slot_of(hash, mask);; slot = (slot + 1) & mask) {
    SuffixSlot& s = suffix_slots_[slot];
    if (s.kinds == 0) {
      s = {hash, static_cast<uint32_t>(suffix_bytes_.size()), 0, static_cast<uint8_t>(wire.size()),
           0};
      suffix_bytes_.insert(suffix_bytes_.end(), wire.begin(), wire.end());
    } else if (s.hash != hash || s.length != wire.size() ||
               std::memcmp(suffix_bytes_.data() + s.offset, wire.data(), wire.size()) != 0) {
      continue;
    }
    s.kinds |= kind;
    if (kind == kWildcardSuffix) s.wildcard_start = wildcard_start;
    return;
  }
}

const NameMatcher::SuffixSlot* NameMatcher::find_suffix(uint64_t hash, const uint8_t* wire,
                                                        size_t length) const noexcept {
  const size_t mask = suffix_slots_.size() - 1;
  for (size_t slot = slot_of(hash, mask);; slot = (slot + 1) & mask) {
    const SuffixSlot& s = suffix_slots_[slot];
    if (s.kinds == 0) return nullptr;
    if (s.hash == hash && s.length == length &&
        std::memcmp(suffix_bytes_.data() + s.offset, wire, length) == 0)
      return &s;
  }
}

// Byte classes: every byte a wildcard pattern names literally gets its own class; other pattern
// characters share one; everything else is dead. Uppercase maps like lowercase.
void NameMatcher::assign_byte_classes(std::span<const NamePattern* const> wildcards) {
  uint8_t next_class = kOtherPlainClass + 1;
  for (int c = 0; c < 256; ++c) byte_class_[c] = kLabelChar[c] ? kOtherPlainClass : kDeadClass;
  for (const NamePattern* p : wildcards) {
    for (uint8_t c : p->wire) {
      if (c == '*' || !kLabelChar[c] || byte_class_[c] != kOtherPlainClass) continue;
      byte_class_[c] = next_class;
      if (c >= 'a' && c <= 'z') byte_class_[c - 'a' + 'A'] = next_class;
      ++next_class;
    }
  }
  class_count_ = next_class;
  transitions_.assign(class_count_, 0);  // state 0: dead
  accepting_.assign(1, 0);
}

// Subset construction for one bucket: the labels left of the bucket's suffix, right to left,
// then acceptance. Appends the bucket's states to the shared table; returns its start state.
Result<uint32_t> NameMatcher::determinize(
    std::span<const std::pair<const NamePattern*, size_t>> bucket) {
  std::vector<NfaPosition> nfa;
  std::vector<uint32_t> starts;
  for (const auto& [p, left_labels] : bucket) {
    starts.push_back(static_cast<uint32_t>(nfa.size()));
    Labels labels;
    [[maybe_unused]] const bool ok = split_labels(p->wire, labels);
    for (size_t i = left_labels; i-- > 0;) {
      const uint8_t* label = p->wire.data() + labels.offsets[i];
      for (size_t k = 1; k <= label[0]; ++k) {
        if (label[k] == '*')
          nfa.push_back({Token::kStar, 0});
        else
          nfa.push_back({Token::kLiteral, byte_class_[label[k]]});
      }
      nfa.push_back({Token::kSeparator, kSeparatorClass});
    }
    if (p->any_subdomain) {
      nfa.push_back({Token::kLabelFirst, 0});
      nfa.push_back({Token::kLabelRest, 0});
      nfa.push_back({Token::kAcceptMore, 0});
    } else {
      nfa.push_back({Token::kAccept, 0});
    }
  }

  using PositionSet = std::vector<uint32_t>;
  auto close = [&](PositionSet& set) {
    for (size_t i = 0; i < set.size(); ++i)  // a star may match nothing
      if (nfa[set[i]].token == Token::kStar) set.push_back(set[i] + 1);
    std::sort(set.begin(), set.end());
    set.erase(std::unique(set.begin(), set.end()), set.end());
  };
  auto step = [&](const PositionSet& from, uint8_t cls) {
    PositionSet to;
    for (uint32_t p : from) {
      const NfaPosition& n = nfa[p];
      switch (n.token) {
        case Token::kLiteral:
          if (cls == n.byte_class) to.push_back(p + 1);
          break;
        case Token::kStar:
          if (is_plain_class(cls)) to.push_back(p);
          break;
        case Token::kSeparator:
          if (cls == kSeparatorClass) to.push_back(p + 1);
          break;
        case Token::kLabelFirst:
          if (is_plain_class(cls)) to.push_back(p + 1);
          break;
        case Token::kLabelRest:
          if (is_plain_class(cls))
            to.push_back(p);
          else if (cls == kSeparatorClass)
            to.push_back(p + 1);
          break;
        case Token::kAccept:
          break;
        case Token::kAcceptMore:
          if (is_plain_class(cls)) to.push_back(p - 1);
          break;
      }
    }
    close(to);
    return to;
  };
  auto accepts = [&](const PositionSet& set) {
    return std::any_of(set.begin(), set.end(), [&](uint32_t p) {
      return nfa[p].token == Token::kAccept || nfa[p].token == Token::kAcceptMore;
    });
  };

  std::map<PositionSet, uint32_t> ids;
  std::vector<std::pair<PositionSet, uint32_t>> pending;
  auto intern = [&](PositionSet set) -> Result<uint32_t> {
    if (set.empty()) return 0;
    auto [it, inserted] = ids.try_emplace(set, 0);
    if (inserted) {
      if (ids.size() > kMaxStatesPerSuffix) {
        return fail("the wildcard patterns sharing one literal suffix need more than ",
                    std::to_string(kMaxStatesPerSuffix),
                    " automaton states; use fewer '*' per name or more specific suffixes");
      }
      it->second = static_cast<uint32_t>(accepting_.size());
      accepting_.push_back(accepts(set) ? 1 : 0);
      transitions_.resize(transitions_.size() + class_count_, 0);
      pending.emplace_back(std::move(set), it->second);
    }
    return it->second;
  };
  PositionSet start_set = starts;
  close(start_set);
  auto start = intern(std::move(start_set));
  if (!start) return start;
  while (!pending.empty()) {
    auto [set, state] = std::move(pending.back());
    pending.pop_back();
    for (uint8_t cls = 0; cls < class_count_; ++cls) {
      auto next = intern(step(set, cls));
      if (!next) return next;
      transitions_[size_t{state} * class_count_ + cls] = *next;
    }
  }
  return start;
}

bool NameMatcher::wildcard_bucket_matches(uint32_t start, const Labels& labels,
                                          size_t left_labels) const noexcept {
  uint32_t state = start;
  for (size_t i = left_labels; i-- > 0;) {
    const uint8_t* label = labels.bytes + labels.offsets[i];
    for (size_t k = 1; k <= label[0]; ++k) {
      state = transitions_[size_t{state} * class_count_ + byte_class_[label[k]]];
      if (state == 0) return false;
    }
    state = transitions_[size_t{state} * class_count_ + kSeparatorClass];
    if (state == 0) return false;
  }
  return accepting_[state] != 0;
}

bool NameMatcher::matches(std::span<const uint8_t> wire) const noexcept {
  Labels labels;
  if (!split_labels(wire, labels)) return false;
  if (match_every_name_) return true;
  if (match_all_ && labels.leading_plain == labels.count) return true;
  if (suffix_slots_.empty()) return false;
  uint64_t hash = kHashSeed;
  // Suffixes from the root (i == count) to the whole name (i == 0).
  for (size_t i = labels.count + 1; i-- > 0;) {
    const size_t at = i < labels.count ? labels.offsets[i] : labels.name_length - 1;
    if (i < labels.count) hash = hash_label(hash, labels.bytes + at);
    // Probe only where an entry with this many labels exists. A "**." suffix also needs at
    // least one label in front of it, all of pattern characters; a wildcard bucket needs the
    // labels its DFA consumes.
    const size_t n = labels.count - i;
    uint8_t wanted = 0;
    if (i == 0 && has_bit(exact_label_counts_, n)) wanted |= kExactName;
    if (i > 0 && labels.leading_plain >= i && has_bit(subdomain_label_counts_, n))
      wanted |= kSubdomainSuffix;
    if (i > 0 && has_bit(wildcard_label_counts_, n)) wanted |= kWildcardSuffix;
    if (wanted == 0) continue;
    const SuffixSlot* slot = find_suffix(hash, labels.bytes + at, labels.name_length - at);
    if (slot == nullptr) continue;
    if (slot->kinds & wanted & (kExactName | kSubdomainSuffix)) return true;
    if ((slot->kinds & wanted & kWildcardSuffix) &&
        wildcard_bucket_matches(slot->wildcard_start, labels, i))
      return true;
  }
  return false;
}

size_t NameMatcher::memory_bytes() const noexcept {
  return sizeof(*this) + suffix_slots_.capacity() * sizeof(SuffixSlot) + suffix_bytes_.capacity() +
         transitions_.capacity() * sizeof(uint32_t) + accepting_.capacity();
}

}  // namespace dnsproxy::policy
