#include "dns/message.h"

#include <algorithm>

#include "dns/wire_name.h"

namespace dnsproxy::dns {
namespace {

// TYPE, CLASS, TTL, RDLENGTH after a record's owner name.
constexpr size_t kRecordFixedSize = 10;
constexpr size_t kQuestionFixedSize = 4;
constexpr uint16_t kOptDnssecOkMask = 0x8000;
constexpr uint32_t kMaxTtl = 0x7fffffff;

enum class Section : uint8_t { kAnswer, kAuthority, kAdditional };

struct RecordFields {
  uint16_t type;
  uint16_t rclass;
  uint32_t ttl;
  size_t rdata_offset;
  uint16_t rdata_length;
};

// Reads TYPE..RDLENGTH at `at` (bounds already checked).
RecordFields read_fields(const uint8_t* wire, size_t at) noexcept {
  return RecordFields{load_u16(&wire[at]), load_u16(&wire[at + 2]), load_u32(&wire[at + 4]),
                      at + kRecordFixedSize, load_u16(&wire[at + 8])};
}

[[nodiscard]] bool is_address(uint16_t type, uint16_t rclass) noexcept {
  return rclass == kClassIn &&
         (type == static_cast<uint16_t>(RecordType::kA) ||
          type == static_cast<uint16_t>(RecordType::kAaaa));
}

// Checks the RDATA of the types the codec exposes; the rest stays opaque.
ParseError check_rdata(std::span<const uint8_t> wire, const RecordFields& record,
                       KnownNames& known) noexcept {
  if (record.type == static_cast<uint16_t>(RecordType::kCname)) {
    // The target name must fill the RDATA exactly; running past it is a bad CNAME, not a
    // truncated packet.
    const size_t rdata_end = record.rdata_offset + record.rdata_length;
    const NameScan target = scan_name(wire.first(rdata_end), record.rdata_offset, &known);
    if (target.error == ParseError::kNameTruncated) return ParseError::kBadCnameRdata;
    if (!target.ok()) return target.error;
    if (target.end != rdata_end) return ParseError::kBadCnameRdata;
  } else if (is_address(record.type, record.rclass)) {
    const size_t expected = record.type == static_cast<uint16_t>(RecordType::kA) ? 4 : 16;
    if (record.rdata_length != expected) return ParseError::kBadAddressLength;
  }
  return ParseError::kCount;
}

ParseError read_opt(const NameScan& owner, const RecordFields& record, Section section,
                    Edns& edns) noexcept {
  if (section != Section::kAdditional) return ParseError::kOptNotInAdditional;
  if (owner.wire_length != 1) return ParseError::kOptOwnerNotRoot;
  if (edns.present) return ParseError::kDuplicateOpt;
  // The TTL field carries EXTENDED-RCODE(8) VERSION(8) DO(1) Z(15); CLASS the payload size.
  edns.present = true;
  edns.udp_payload_size = record.rclass;
  edns.extended_rcode_high = static_cast<uint8_t>(record.ttl >> 24);
  edns.version = static_cast<uint8_t>(record.ttl >> 16);
  edns.dnssec_ok = record.ttl & kOptDnssecOkMask;
  return ParseError::kCount;
}

// Checks the record at `at` and moves `at` past it.
ParseError read_record(std::span<const uint8_t> wire, size_t& at, Section section, Edns& edns,
                       KnownNames& known) noexcept {
  if (at == wire.size()) return ParseError::kRecordTruncated;  // the counts announce more
  // The root owner (every OPT record) needs no walk.
  const NameScan owner = wire[at] == 0 ? NameScan{static_cast<uint16_t>(at + 1), 1}
                                       : scan_name(wire, at, &known);
  if (!owner.ok()) return owner.error;
  if (owner.end + kRecordFixedSize > wire.size()) return ParseError::kRecordTruncated;
  const RecordFields record = read_fields(wire.data(), owner.end);
  if (record.rdata_offset + record.rdata_length > wire.size())
    return ParseError::kRecordTruncated;
  at = record.rdata_offset + record.rdata_length;
  if (record.type == static_cast<uint16_t>(RecordType::kOpt))
    return read_opt(owner, record, section, edns);
  return check_rdata(wire, record, known);
}

}  // namespace

namespace {

enum class Direction : uint8_t { kEither, kQuery, kResponse };

// The one parser behind the three entry points; each returns its result directly (no copy).
tl::expected<Message, ParseError> parse(std::span<const uint8_t> wire,
                                        Direction direction) noexcept {
  if (wire.size() < kHeaderSize) return tl::unexpected(ParseError::kShorterThanHeader);
  if (wire.size() > kMaxMessageSize) return tl::unexpected(ParseError::kLongerThanMaximum);
  const ConstHeaderBytes h = header_of(wire);
  if (direction == Direction::kQuery && qr(h)) return tl::unexpected(ParseError::kNotAQuery);
  if (direction == Direction::kResponse && !qr(h))
    return tl::unexpected(ParseError::kNotAResponse);
  if (opcode(h) != static_cast<uint8_t>(Opcode::kQuery))
    return tl::unexpected(ParseError::kOpcodeNotQuery);
  if (qdcount(h) != 1) return tl::unexpected(ParseError::kQdcountNotOne);

  KnownNames known;
  const NameScan qname = scan_name(wire, kHeaderSize, &known);
  if (!qname.ok()) return tl::unexpected(qname.error);
  if (qname.end + kQuestionFixedSize > wire.size())
    return tl::unexpected(ParseError::kQuestionTruncated);
  Message message;
  message.wire = wire;
  message.question.name_wire_length = qname.wire_length;
  message.question.qtype = load_u16(&wire[qname.end]);
  message.question.qclass = load_u16(&wire[qname.end + 2]);
  message.question_end = static_cast<uint16_t>(qname.end + kQuestionFixedSize);
  message.answer_count = ancount(h);

  size_t at = message.question_end;
  const uint16_t counts[] = {ancount(h), nscount(h), arcount(h)};
  for (uint8_t section = 0; section < 3; ++section) {
    for (uint16_t i = 0; i < counts[section]; ++i) {
      const ParseError error =
          read_record(wire, at, static_cast<Section>(section), message.edns, known);
      if (error != ParseError::kCount) return tl::unexpected(error);
    }
  }
  if (at != wire.size()) return tl::unexpected(ParseError::kTrailingBytes);
  return message;
}

}  // namespace

tl::expected<Message, ParseError> parse_message(std::span<const uint8_t> wire) noexcept {
  return parse(wire, Direction::kEither);
}

tl::expected<Message, ParseError> parse_query(std::span<const uint8_t> wire) noexcept {
  return parse(wire, Direction::kQuery);
}

tl::expected<Message, ParseError> parse_response(std::span<const uint8_t> wire) noexcept {
  return parse(wire, Direction::kResponse);
}

size_t copy_question_name(const Message& message,
                          std::span<uint8_t, kMaxNameWireLength> out) noexcept {
  // The question name is never compressed: it is the first name, and a pointer may only point
  // before the name it is in, which for the question is the header (scan_name rejects both).
  const size_t length = message.question.name_wire_length;
  copy_lowercase_ascii(message.wire.subspan(message.question.name_offset, length), out);
  return length;
}

AnswerWalk::AnswerWalk(const Message& message) noexcept
    : wire_(message.wire),
      at_(message.question_end),
      remaining_(message.answer_count),
      chain_name_(message.question.name_offset),
      chain_ttl_(kMaxTtl) {}

bool AnswerWalk::next(AnswerRecord& record) noexcept {
  while (remaining_ > 0) {
    --remaining_;
    const size_t owner = at_;
    const RecordFields fields = read_fields(wire_.data(), skip_name(wire_, owner));
    at_ = fields.rdata_offset + fields.rdata_length;
    const bool is_cname = fields.type == static_cast<uint16_t>(RecordType::kCname);
    if (!is_cname && !is_address(fields.type, fields.rclass)) continue;

    record.type = static_cast<RecordType>(fields.type);
    record.owner_offset = static_cast<uint16_t>(owner);
    record.ttl = fields.ttl;
    record.rdata_offset = static_cast<uint16_t>(fields.rdata_offset);
    record.rdata = wire_.subspan(fields.rdata_offset, fields.rdata_length);
    record.on_chain = names_equal(wire_, owner, chain_name_);
    record.chain_ttl = 0;
    if (record.on_chain) {
      const uint32_t ttl = fields.ttl > kMaxTtl ? 0 : fields.ttl;
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
