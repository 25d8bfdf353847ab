// Why the codec rejected a packet: one enumerator per reason, so the worker can keep one counter
// per reason. ParseError and counter_names(ParseError) form a counter set in the sense of
// common/counters.h (the policy handler counts queries' and responses' rejections by it).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace dnsproxy::dns {

enum class ParseError : uint8_t {
  // Header and message shape.
  kShorterThanHeader,  // fewer than 12 bytes
  kLongerThanMaximum,  // more than 65535 bytes (no DNS transport carries that)
  kQdcountNotOne,      // QDCOUNT 0 or > 1: no single name to apply policy to
  kOpcodeNotQuery,     // IQUERY, STATUS, NOTIFY, UPDATE, ...: not name lookups
  kNotAQuery,          // parse_query got QR=1
  kNotAResponse,       // parse_response got QR=0
  kTrailingBytes,      // bytes left after the last record the counts announce
  // Names (question, owners, CNAME targets).
  kNameTruncated,      // the name runs past the end of the packet
  kBadLabelLength,     // length byte 64..191: over 63, or an extended/obsolete label type
  kNameTooLong,        // more than 255 bytes uncompressed
  kPointerIntoHeader,  // compression pointer to an offset < 12
  kForwardPointer,     // compression pointer to its own offset or later
  kPointerLoop,        // pointer back into the name part it was reached from
  kTooManyPointers,    // more than kMaxCompressionHops pointers in one name
  // Question and records.
  kQuestionTruncated,  // QTYPE/QCLASS missing
  kRecordTruncated,    // a record the counts announce is missing, or ends past the end
  kBadAddressLength,   // A RDLENGTH != 4 or AAAA RDLENGTH != 16 (class IN)
  kBadCnameRdata,      // CNAME RDATA is not exactly one name (empty, cut short, bytes after)
  // EDNS0 (RFC 6891 6.1.1).
  kOptNotInAdditional,  // OPT in the answer or authority section
  kOptOwnerNotRoot,     // OPT owner name other than "."
  kDuplicateOpt,        // more than one OPT record
  kCount
};

inline constexpr size_t kParseErrorCount = static_cast<size_t>(ParseError::kCount);

// Stable snake_case names, one per reason in enum order, for counters, logs and
// `dnsproxyctl dns decode`: the only place they are spelled.
constexpr std::array<std::string_view, kParseErrorCount> counter_names(ParseError) {
  return {"shorter_than_header",   "longer_than_maximum", "qdcount_not_one",
          "opcode_not_query",      "not_a_query",         "not_a_response",
          "trailing_bytes",        "name_truncated",      "bad_label_length",
          "name_too_long",         "pointer_into_header", "forward_pointer",
          "pointer_loop",          "too_many_pointers",   "question_truncated",
          "record_truncated",      "bad_address_length",  "bad_cname_rdata",
          "opt_not_in_additional", "opt_owner_not_root",  "duplicate_opt"};
}

// The reason's name from counter_names, or "unknown" for a value past the last reason.
[[nodiscard]] std::string_view to_string(ParseError error) noexcept;

}  // namespace dnsproxy::dns
