// Why the codec rejected a packet: one enumerator per reason, so the worker can keep one counter
// per reason (an array of ParseError::kCount counters indexed by the enum).
#pragma once

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

// A stable snake_case name, for counters, logs and `dnsproxyctl dns decode`.
[[nodiscard]] std::string_view to_string(ParseError error) noexcept;

}  // namespace dnsproxy::dns
