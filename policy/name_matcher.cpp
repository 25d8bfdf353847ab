#include "policy/name_matcher.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cstring>
#include <map>

#include "dns/name_text.h"

namespace dnsproxy::policy {
namespace {

constexpr size_t kMaxLabels = dns::kMaxNameWireLength / 2;  // 1-byte labels + root

// FNV-1a over the labels of a wire name, right to left, so the running value after label i is
// the hash of the suffix starting at label i. The build side and the hot path both use it.
constexpr uint64_t kHashSeed = 0xcbf29ce484222325ull;
constexpr uint64_t kHashPrime = 0x100000001b3ull;

inline uint64_t hash_label(uint64_t h, const uint8_t* label) noexcept {
  const size_t length = size_t{label[0]} + 1;  // the length byte is hashed too
  for (size_t k = 0; k < length; ++k) h = (h ^ label[k]) * kHashPrime;
  return h;
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

// The labels of a wire name: where each starts, and how many leading labels consist only of
// pattern characters (what "**." and "*" may cover).
struct Labels {
  uint8_t offsets[kMaxLabels];
  size_t count = 0;
  size_t leading_plain = 0;  // labels 0..leading_plain-1 are all [-a-zA-Z0-9_]
  size_t name_length = 0;    // wire bytes including the root
};

// False for anything that is not a well-formed uncompressed name (the codec guarantees one; a
// bad input simply matches nothing).
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
  return out.name_length <= dns::kMaxNameWireLength;
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

constexpr uint8_t kDeadClass = 0;       // bytes no pattern character can match
constexpr uint8_t kSeparatorClass = 1;  // virtual: fed between labels
constexpr uint8_t kOtherPlainClass = 2; // pattern characters no wildcard pattern names literally

bool is_plain_class(uint8_t c) { return c >= kOtherPlainClass; }

}  // namespace

NameMatcher NameMatcher::match_everything() {
  NameMatcher matcher;
  matcher.match_every_name_ = true;
  return matcher;
}

Result<NameMatcher> NameMatcher::build(std::span<const NamePattern> patterns) {
  NameMatcher matcher;
  if (patterns.empty()) return match_everything();
  std::vector<const NamePattern*> wildcards;
  size_t literals = 0;
  for (const NamePattern& p : patterns) {
    if (p.match_all) matcher.match_all_ = true;
    else if (p.has_wildcard()) wildcards.push_back(&p);
    else ++literals;
  }
  if (literals > 0) {
    matcher.literal_slots_.resize(std::bit_ceil(literals * 2));
    for (const NamePattern& p : patterns) {
      if (!p.match_all && !p.has_wildcard())
        matcher.add_literal(p.wire, p.any_subdomain ? kSubdomainSuffix : kExactName);
    }
  }
  if (!wildcards.empty()) {
    auto built = matcher.build_wildcards(wildcards);
    if (!built) return tl::unexpected(built.error());
  }
  return matcher;
}

void NameMatcher::add_literal(std::span<const uint8_t> wire, uint8_t kind) {
  Labels labels;
  [[maybe_unused]] const bool ok = split_labels(wire, labels);  // validated by the parser
  uint64_t hash = kHashSeed;
  for (size_t i = labels.count; i-- > 0;) hash = hash_label(hash, wire.data() + labels.offsets[i]);
  const size_t mask = literal_slots_.size() - 1;
  for (size_t slot = slot_of(hash, mask);; slot = (slot + 1) & mask) {
    LiteralSlot& s = literal_slots_[slot];
    if (s.kinds == 0) {
      s = {hash, static_cast<uint32_t>(literal_bytes_.size()), static_cast<uint8_t>(wire.size()),
           kind};
      literal_bytes_.insert(literal_bytes_.end(), wire.begin(), wire.end());
      ++literal_count_;
      return;
    }
    if (s.hash == hash && s.length == wire.size() &&
        std::memcmp(literal_bytes_.data() + s.offset, wire.data(), wire.size()) == 0) {
      s.kinds |= kind;
      return;
    }
  }
}

uint8_t NameMatcher::find_literal(uint64_t hash, const uint8_t* wire, size_t length) const noexcept {
  const size_t mask = literal_slots_.size() - 1;
  for (size_t slot = slot_of(hash, mask);; slot = (slot + 1) & mask) {
    const LiteralSlot& s = literal_slots_[slot];
    if (s.kinds == 0) return 0;
    if (s.hash == hash && s.length == length &&
        std::memcmp(literal_bytes_.data() + s.offset, wire, length) == 0)
      return s.kinds;
  }
}

Result<void> NameMatcher::build_wildcards(std::span<const NamePattern* const> patterns) {
  // Byte classes: every byte a pattern names literally gets its own class; other pattern
  // characters share one; everything else is dead. Uppercase maps like lowercase.
  uint8_t next_class = kOtherPlainClass + 1;
  for (int c = 0; c < 256; ++c)
    byte_class_[c] = kLabelChar[c] ? kOtherPlainClass : kDeadClass;
  for (const NamePattern* p : patterns) {
    for (uint8_t c : p->wire) {
      if (c == '*' || !kLabelChar[c] || byte_class_[c] != kOtherPlainClass) continue;
      byte_class_[c] = next_class;
      if (c >= 'a' && c <= 'z') byte_class_[c - 'a' + 'A'] = next_class;
      ++next_class;
    }
  }
  class_count_ = next_class;

  // The NFA: each pattern's labels right to left, then its acceptance.
  std::vector<NfaPosition> nfa;
  std::vector<uint32_t> starts;
  for (const NamePattern* p : patterns) {
    starts.push_back(static_cast<uint32_t>(nfa.size()));
    Labels labels;
    [[maybe_unused]] const bool ok = split_labels(p->wire, labels);
    for (size_t i = labels.count; i-- > 0;) {
      const uint8_t* label = p->wire.data() + labels.offsets[i];
      for (size_t k = 1; k <= label[0]; ++k) {
        if (label[k] == '*') nfa.push_back({Token::kStar, 0});
        else nfa.push_back({Token::kLiteral, byte_class_[label[k]]});
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
        case Token::kLiteral: if (cls == n.byte_class) to.push_back(p + 1); break;
        case Token::kStar: if (is_plain_class(cls)) to.push_back(p); break;
        case Token::kSeparator: if (cls == kSeparatorClass) to.push_back(p + 1); break;
        case Token::kLabelFirst: if (is_plain_class(cls)) to.push_back(p + 1); break;
        case Token::kLabelRest:
          if (is_plain_class(cls)) to.push_back(p);
          else if (cls == kSeparatorClass) to.push_back(p + 1);
          break;
        case Token::kAccept: break;
        case Token::kAcceptMore: if (is_plain_class(cls)) to.push_back(p - 1); break;
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
  std::vector<PositionSet> sets;
  auto intern = [&](PositionSet set) -> Result<uint32_t> {
    auto [it, inserted] = ids.try_emplace(set, static_cast<uint32_t>(sets.size()));
    if (inserted) {
      if (sets.size() >= kMaxWildcardStates) {
        return fail("the wildcard patterns of one rule need more than ",
                    std::to_string(kMaxWildcardStates),
                    " automaton states; split them over several rules or use fewer '*'");
      }
      sets.push_back(std::move(set));
    }
    return it->second;
  };
  (void)*intern({});  // state 0: dead
  PositionSet start = starts;
  close(start);
  (void)*intern(std::move(start));  // state 1: start
  for (uint32_t state = 0; state < sets.size(); ++state) {
    transitions_.resize(size_t{sets.size()} * class_count_);
    for (uint8_t cls = 0; cls < class_count_; ++cls) {
      auto next = intern(step(sets[state], cls));
      if (!next) return tl::unexpected(next.error());
      transitions_.resize(size_t{sets.size()} * class_count_);
      transitions_[size_t{state} * class_count_ + cls] = *next;
    }
    accepting_.push_back(accepts(sets[state]) ? 1 : 0);
  }
  return {};
}

bool NameMatcher::wildcards_match(const uint8_t* wire, const uint8_t* label_offsets,
                                  size_t labels) const noexcept {
  uint32_t state = 1;
  for (size_t i = labels; i-- > 0;) {
    const uint8_t* label = wire + label_offsets[i];
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
  if (literal_count_ > 0) {
    uint64_t hash = kHashSeed;
    for (size_t i = labels.count; i-- > 0;) {
      const uint8_t* suffix = wire.data() + labels.offsets[i];
      hash = hash_label(hash, suffix);
      // A "**." suffix needs at least one label in front, all of pattern characters.
      const uint8_t wanted = i == 0 ? kExactName : (labels.leading_plain >= i ? kSubdomainSuffix : 0);
      if (wanted == 0) continue;
      if (find_literal(hash, suffix, labels.name_length - labels.offsets[i]) & wanted) return true;
    }
  }
  return class_count_ > 0 && wildcards_match(wire.data(), labels.offsets, labels.count);
}

size_t NameMatcher::memory_bytes() const noexcept {
  return sizeof(*this) + literal_slots_.capacity() * sizeof(LiteralSlot) +
         literal_bytes_.capacity() + transitions_.capacity() * sizeof(uint32_t) +
         accepting_.capacity();
}

}  // namespace dnsproxy::policy
