// A DNS message parsed in place: a view over the caller's buffer (the UMEM frame), never a copy.
//
// parse_message() checks the whole message once (header, question, every record's name, fixed
// fields and RDATA bounds, A/AAAA/CNAME RDATA, the OPT record) and returns offsets into the
// caller's bytes. Everything after it (AnswerWalk, copy_question_name, the writers) relies on
// that check and does no bounds checks of its own. The caller keeps the bytes alive and
// unchanged while it uses the Message.
//
// Decisions (README "DNS codec"):
// - QDCOUNT must be 1 (kQdcountNotOne): policy decides on one name, and no resolver sends more.
// - OPCODE must be QUERY (kOpcodeNotQuery): NOTIFY, UPDATE, IQUERY and STATUS are not lookups
//   the policy can judge.
// - Trailing bytes after the last record the counts announce are rejected (kTrailingBytes): the
//   proxy and the server must not read different messages from the same bytes.
// The worker drops and counts every rejected packet (it never forwards what it cannot judge).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>

#include <tl/expected.hpp>

#include "dns/header.h"
#include "dns/name_text.h"
#include "dns/parse_error.h"
#include "dns/wire_name.h"

namespace dnsproxy::dns {

enum class RecordType : uint16_t {
  kA = 1,
  kNs = 2,
  kCname = 5,
  kSoa = 6,
  kPtr = 12,
  kMx = 15,
  kTxt = 16,
  kAaaa = 28,
  kSrv = 33,
  kOpt = 41,
  kHttps = 65,
};

inline constexpr uint16_t kClassIn = 1;
inline constexpr size_t kMaxMessageSize = 65535;  // offsets are 16-bit, like the wire's own

struct Question {
  uint16_t name_offset = kHeaderSize;
  uint8_t name_wire_length = 0;  // uncompressed, root byte included
  uint16_t qtype = 0;
  uint16_t qclass = 0;
};

// The EDNS0 OPT record (RFC 6891 6.1), if the message carries one.
struct Edns {
  bool present = false;
  bool dnssec_ok = false;  // the DO bit (RFC 3225)
  uint8_t version = 0;
  uint8_t extended_rcode_high = 0;  // bits 4..11 of the rcode
  uint16_t udp_payload_size = 0;    // as sent (RFC 6891 says a receiver treats < 512 as 512)
};

struct Message {
  std::span<const uint8_t> wire;  // exactly the parsed bytes, owned by the caller
  Question question;
  uint16_t question_end = 0;  // offset of the first answer record
  uint16_t answer_count = 0;
  Edns edns;

  [[nodiscard]] ConstHeaderBytes header() const noexcept { return header_of(wire); }
  [[nodiscard]] uint16_t id() const noexcept { return dns::id(header()); }
  [[nodiscard]] bool is_response() const noexcept { return qr(header()); }
  // The full 12-bit rcode: the header's 4 bits plus the OPT record's 8 (RFC 6891 6.1.3).
  [[nodiscard]] uint16_t rcode() const noexcept {
    return static_cast<uint16_t>(edns.extended_rcode_high << 4 | header_rcode(header()));
  }
};

// Any QUERY message, query or response.
[[nodiscard]] tl::expected<Message, ParseError> parse_message(
    std::span<const uint8_t> wire) noexcept;
// As parse_message, and QR must be 0 (kNotAQuery) / 1 (kNotAResponse).
[[nodiscard]] tl::expected<Message, ParseError> parse_query(std::span<const uint8_t> wire) noexcept;
[[nodiscard]] tl::expected<Message, ParseError> parse_response(
    std::span<const uint8_t> wire) noexcept;

// The question name, uncompressed and lowercased, ending with the root byte: what the policy
// matcher consumes. Returns the bytes written (message.question.name_wire_length).
[[nodiscard]] size_t copy_question_name(const Message& message,
                                        std::span<uint8_t, kMaxNameWireLength> out) noexcept;

// One A, AAAA or CNAME record of the answer section.
struct AnswerRecord {
  RecordType type = RecordType::kA;
  uint16_t owner_offset = 0;       // a scanned name in message.wire
  uint32_t ttl = 0;                // as on the wire
  std::span<const uint8_t> rdata;  // A: 4 bytes, AAAA: 16, CNAME: a (compressed) name
  uint16_t rdata_offset = 0;       // for CNAME, where the target name starts
  // The owner is the question name or a name the CNAME chain from it reached (in answer order).
  bool on_chain = false;
  // When on_chain: the minimum TTL of this record and every CNAME leading to it from the
  // question name, with TTLs above 2^31 - 1 counted as 0 (RFC 2181 8). The TTL to cache an
  // address under.
  uint32_t chain_ttl = 0;
};

// Walks the answer section of a parsed message, yielding its A and AAAA (class IN) and CNAME
// records in order and following the CNAME chain from the question name. The chain is followed
// in answer order, the order every server writes it (RFC 1034 4.3.2); a record that comes
// before the CNAME leading to it is reported off the chain, so the caller learns fewer
// mappings, never a wrong one. Other record types are skipped.
class AnswerWalk {
 public:
  inline explicit AnswerWalk(const Message& message) noexcept;

  // Fills `record` with the next A/AAAA/CNAME record; false after the last one.
  [[nodiscard]] inline bool next(AnswerRecord& record) noexcept;

 private:
  std::span<const uint8_t> wire_;
  size_t at_;
  uint16_t remaining_;
  uint16_t chain_name_;  // the name the chain has reached so far
  uint32_t chain_ttl_;   // min TTL of the CNAMEs followed so far
};

// ---- Definitions: the walk is inline, the worker calls next() once per answer record ---------

namespace message_detail {

// TYPE, CLASS, TTL, RDLENGTH after a record's owner name.
inline constexpr size_t kRecordFixedSize = 10;
inline constexpr uint32_t kMaxTtl = 0x7fffffff;

struct RecordFields {
  uint16_t type;
  uint16_t rclass;
  uint32_t ttl;
  size_t rdata_offset;
  uint16_t rdata_length;
};

// Reads TYPE..RDLENGTH at `at` (bounds already checked).
[[nodiscard]] inline RecordFields read_fields(const uint8_t* wire, size_t at) noexcept {
  return RecordFields{load_u16(&wire[at]), load_u16(&wire[at + 2]), load_u32(&wire[at + 4]),
                      at + kRecordFixedSize, load_u16(&wire[at + 8])};
}

[[nodiscard]] constexpr bool is_address(uint16_t type, uint16_t rclass) noexcept {
  return rclass == kClassIn && (type == static_cast<uint16_t>(RecordType::kA) ||
                                type == static_cast<uint16_t>(RecordType::kAaaa));
}

}  // namespace message_detail

inline AnswerWalk::AnswerWalk(const Message& message) noexcept
    : wire_(message.wire),
      at_(message.question_end),
      remaining_(message.answer_count),
      chain_name_(message.question.name_offset),
      chain_ttl_(message_detail::kMaxTtl) {}

inline bool AnswerWalk::next(AnswerRecord& record) noexcept {
  while (remaining_ > 0) {
    --remaining_;
    const size_t owner = at_;
    // Most owners are one compression pointer, to the question name or the CNAME target just
    // before them: one byte tells where the fixed fields start, and the pointer's target
    // settles the chain test below without a name walk. (A scanned owner is followed by the
    // 10 fixed bytes, so its first two bytes are always inside the record.)
    const bool owner_is_pointer = wire_detail::is_pointer(wire_[owner]);
    const size_t owner_end = owner_is_pointer ? owner + 2 : skip_name(wire_, owner);
    const message_detail::RecordFields fields =
        message_detail::read_fields(wire_.data(), owner_end);
    at_ = fields.rdata_offset + fields.rdata_length;
    const bool is_cname = fields.type == static_cast<uint16_t>(RecordType::kCname);
    if (!is_cname && !message_detail::is_address(fields.type, fields.rclass)) continue;

    record.type = static_cast<RecordType>(fields.type);
    record.owner_offset = static_cast<uint16_t>(owner);
    record.ttl = fields.ttl;
    record.rdata_offset = static_cast<uint16_t>(fields.rdata_offset);
    record.rdata = wire_.subspan(fields.rdata_offset, fields.rdata_length);
    // A pointer straight at the chain name is that name; anything else is compared in full.
    record.on_chain = wire_detail::points_to(&wire_[owner], chain_name_) ||
                      names_equal(wire_, owner, chain_name_);
    record.chain_ttl = 0;
    if (record.on_chain) {
      const uint32_t ttl = fields.ttl > message_detail::kMaxTtl ? 0 : fields.ttl;
      record.chain_ttl = std::min(chain_ttl_, ttl);
      if (is_cname) {
        chain_ttl_ = record.chain_ttl;
        chain_name_ = record.rdata_offset;
      }
    }
    return true;
  }
  return false;
}

}  // namespace dnsproxy::dns
