#include "dns/message.h"

namespace dnsproxy::dns {
namespace {

constexpr size_t kQuestionFixedSize = 4;
constexpr uint16_t kOptDnssecOkMask = 0x8000;

enum class Section : uint8_t { kAnswer, kAuthority, kAdditional };

// Whether the labels starting at `start`, up to and including the root byte or pointer that
// ends them, run past `end` (only called once the name failed to scan, to tell why).
bool labels_run_past(std::span<const uint8_t> wire, size_t start, size_t end) noexcept {
  const size_t at = wire_detail::skip_labels(wire.data(), start, end);
  return at >= end || (wire_detail::is_pointer(wire[at]) && at + 2 > end);
}

// Checks the RDATA of the types the codec exposes; the rest stays opaque.
ParseError check_rdata(std::span<const uint8_t> wire, const message_detail::RecordFields& record,
                       KnownNames& known) noexcept {
  if (record.type == static_cast<uint16_t>(RecordType::kCname)) {
    // The target's own bytes (its labels and the root byte or pointer ending them) must fill
    // the RDATA exactly; running past it is a bad CNAME, not a truncated packet. Where its
    // pointer leads is checked in the whole message, like any name's: a name pointed at may
    // lie anywhere before it, and KnownNames holds names checked that way.
    const size_t rdata_end = record.rdata_offset + record.rdata_length;
    const NameScan target = scan_name(wire, record.rdata_offset, &known);
    if (target.ok())
      return target.end == rdata_end ? ParseError::kCount : ParseError::kBadCnameRdata;
    return target.error == ParseError::kNameTruncated ||
                   labels_run_past(wire, record.rdata_offset, rdata_end)
               ? ParseError::kBadCnameRdata
               : target.error;
  }
  if (message_detail::is_address(record.type, record.rclass)) {
    const size_t expected = record.type == static_cast<uint16_t>(RecordType::kA) ? 4 : 16;
    if (record.rdata_length != expected) return ParseError::kBadAddressLength;
  }
  return ParseError::kCount;
}

ParseError read_opt(const NameScan& owner, const message_detail::RecordFields& record,
                    Section section, Edns& edns) noexcept {
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
  const NameScan owner = wire[at] == 0 ? NameScan{at + 1, 1} : scan_name(wire, at, &known);
  if (!owner.ok()) return owner.error;
  if (owner.end + message_detail::kRecordFixedSize > wire.size())
    return ParseError::kRecordTruncated;
  const message_detail::RecordFields record = message_detail::read_fields(wire.data(), owner.end);
  if (record.rdata_offset + record.rdata_length > wire.size()) return ParseError::kRecordTruncated;
  at = record.rdata_offset + record.rdata_length;
  if (record.type == static_cast<uint16_t>(RecordType::kOpt))
    return read_opt(owner, record, section, edns);
  return check_rdata(wire, record, known);
}

enum class Direction : uint8_t { kEither, kQuery, kResponse };

// The one parser behind the three entry points. It fills `message` in place: the entry points
// hand it the storage of their return value, so the result is never copied (a 40-byte copy
// was a quarter of a response's parse time).
ParseError parse_into(std::span<const uint8_t> wire, Direction direction,
                      Message& message) noexcept {
  if (wire.size() < kHeaderSize) return ParseError::kShorterThanHeader;
  if (wire.size() > kMaxMessageSize) return ParseError::kLongerThanMaximum;
  const ConstHeaderBytes h = header_of(wire);
  if (direction == Direction::kQuery && qr(h)) return ParseError::kNotAQuery;
  if (direction == Direction::kResponse && !qr(h)) return ParseError::kNotAResponse;
  if (opcode(h) != static_cast<uint8_t>(Opcode::kQuery)) return ParseError::kOpcodeNotQuery;
  if (qdcount(h) != 1) return ParseError::kQdcountNotOne;

  KnownNames known;
  const NameScan qname = scan_name(wire, kHeaderSize, &known);
  if (!qname.ok()) return qname.error;
  if (qname.end + kQuestionFixedSize > wire.size()) return ParseError::kQuestionTruncated;
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
      if (error != ParseError::kCount) return error;
    }
  }
  return at == wire.size() ? ParseError::kCount : ParseError::kTrailingBytes;
}

tl::expected<Message, ParseError> parse(std::span<const uint8_t> wire,
                                        Direction direction) noexcept {
  tl::expected<Message, ParseError> result;
  if (const ParseError error = parse_into(wire, direction, *result); error != ParseError::kCount)
    result = tl::unexpected(error);
  return result;
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

}  // namespace dnsproxy::dns
