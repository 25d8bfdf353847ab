// Messages as text for people (`dnsproxyctl dns decode`, logs): cold path, allocates freely.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "dns/message.h"

namespace dnsproxy::dns {

// Mnemonics the way dig prints them: "A", "AAAA", "TYPE65280"; "NOERROR", "RCODE23"; "QUERY".
[[nodiscard]] std::string type_to_text(uint16_t type);
[[nodiscard]] std::string rcode_to_text(uint16_t rcode);
[[nodiscard]] std::string opcode_to_text(uint8_t opcode);

// One line of JSON: id, qr, opcode, rcode (EDNS-extended), qname, qtype, answers (the A, AAAA
// and CNAME records of the answer section: name, type, ttl, data) and min_ttl (the smallest
// chain TTL of the addresses reached from the question name, null if none).
[[nodiscard]] std::string message_to_json(const Message& message);

// Hex digits to bytes; whitespace is ignored, anything else (or an odd digit count) is an error.
[[nodiscard]] Result<std::vector<uint8_t>> bytes_from_hex(std::string_view hex);

}  // namespace dnsproxy::dns
