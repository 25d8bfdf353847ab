#include "dns/message_text.h"

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <optional>

#include "dns/wire_name.h"

namespace dnsproxy::dns {
namespace {

std::string name_text(const Message& message, size_t offset) {
  std::array<uint8_t, kMaxNameWireLength> wire{};
  const size_t length = copy_name(message.wire, offset, wire);
  std::string text;
  append_name_text(std::span(wire).first(length), text);
  return text;
}

void append_json_string(std::string_view text, std::string& out) {
  out += '"';
  for (const char c : text) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char escaped[8];
      std::snprintf(escaped, sizeof escaped, "\\u%04x", c);
      out += escaped;
    } else {
      out += c;
    }
  }
  out += '"';
}

std::string rdata_text(const Message& message, const AnswerRecord& record) {
  if (record.type == RecordType::kCname) return name_text(message, record.rdata_offset);
  char text[INET6_ADDRSTRLEN];
  const int family = record.type == RecordType::kA ? AF_INET : AF_INET6;
  return inet_ntop(family, record.rdata.data(), text, sizeof text);
}

}  // namespace

std::string type_to_text(uint16_t type) {
  switch (static_cast<RecordType>(type)) {
    case RecordType::kA:
      return "A";
    case RecordType::kNs:
      return "NS";
    case RecordType::kCname:
      return "CNAME";
    case RecordType::kSoa:
      return "SOA";
    case RecordType::kPtr:
      return "PTR";
    case RecordType::kMx:
      return "MX";
    case RecordType::kTxt:
      return "TXT";
    case RecordType::kAaaa:
      return "AAAA";
    case RecordType::kSrv:
      return "SRV";
    case RecordType::kOpt:
      return "OPT";
    case RecordType::kHttps:
      return "HTTPS";
  }
  return "TYPE" + std::to_string(type);
}

std::string rcode_to_text(uint16_t rcode) {
  switch (static_cast<Rcode>(rcode)) {
    case Rcode::kNoError:
      return "NOERROR";
    case Rcode::kFormErr:
      return "FORMERR";
    case Rcode::kServFail:
      return "SERVFAIL";
    case Rcode::kNxDomain:
      return "NXDOMAIN";
    case Rcode::kNotImp:
      return "NOTIMP";
    case Rcode::kRefused:
      return "REFUSED";
    case Rcode::kBadVers:
      return "BADVERS";
  }
  return "RCODE" + std::to_string(rcode);
}

std::string opcode_to_text(uint8_t opcode) {
  switch (static_cast<Opcode>(opcode)) {
    case Opcode::kQuery:
      return "QUERY";
    case Opcode::kIQuery:
      return "IQUERY";
    case Opcode::kStatus:
      return "STATUS";
    case Opcode::kNotify:
      return "NOTIFY";
    case Opcode::kUpdate:
      return "UPDATE";
  }
  return "OPCODE" + std::to_string(opcode);
}

std::string message_to_json(const Message& message) {
  std::string out = "{\"id\":" + std::to_string(message.id());
  out += ",\"qr\":";
  out += message.is_response() ? "true" : "false";
  out += ",\"opcode\":";
  append_json_string(opcode_to_text(opcode(message.header())), out);
  out += ",\"rcode\":";
  append_json_string(rcode_to_text(message.rcode()), out);
  out += ",\"qname\":";
  append_json_string(name_text(message, message.question.name_offset), out);
  out += ",\"qtype\":";
  append_json_string(type_to_text(message.question.qtype), out);
  out += ",\"answers\":[";
  std::optional<uint32_t> min_ttl;
  AnswerWalk walk(message);
  AnswerRecord record;
  for (bool first = true; walk.next(record); first = false) {
    if (!first) out += ',';
    out += "{\"name\":";
    append_json_string(name_text(message, record.owner_offset), out);
    out += ",\"type\":";
    append_json_string(type_to_text(static_cast<uint16_t>(record.type)), out);
    out += ",\"ttl\":" + std::to_string(record.ttl) + ",\"data\":";
    append_json_string(rdata_text(message, record), out);
    out += '}';
    if (record.on_chain && record.type != RecordType::kCname)
      min_ttl = std::min(min_ttl.value_or(record.chain_ttl), record.chain_ttl);
  }
  out += "],\"min_ttl\":";
  out += min_ttl ? std::to_string(*min_ttl) : "null";
  out += '}';
  return out;
}

Result<std::vector<uint8_t>> bytes_from_hex(std::string_view hex) {
  std::vector<uint8_t> bytes;
  int high = -1;
  for (const char c : hex) {
    if (c == ' ' || c == '\n' || c == '\t' || c == '\r') continue;
    int digit;
    if (c >= '0' && c <= '9')
      digit = c - '0';
    else if (c >= 'a' && c <= 'f')
      digit = c - 'a' + 10;
    else if (c >= 'A' && c <= 'F')
      digit = c - 'A' + 10;
    else
      return fail("not a hex digit: '", std::string(1, c), "'");
    if (high < 0) {
      high = digit;
    } else {
      bytes.push_back(static_cast<uint8_t>(high << 4 | digit));
      high = -1;
    }
  }
  if (high >= 0) return fail("odd number of hex digits");
  return bytes;
}

}  // namespace dnsproxy::dns
