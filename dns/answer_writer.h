// In-place writers: turn a parsed query into an error answer inside the same buffer.
//
// The answer is the query's header and question with the response flags and rcode set, the
// other sections dropped and, if the query carried EDNS0, a fresh OPT record of our own. It is
// never longer than the query (the query's OPT is at least as long as ours), so it always fits
// in the frame the query arrived in.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "dns/message.h"

namespace dnsproxy::dns {

// The rcodes the proxy answers with itself.
enum class ErrorAnswer : uint8_t {
  kServFail = static_cast<uint8_t>(Rcode::kServFail),
  kNxDomain = static_cast<uint8_t>(Rcode::kNxDomain),
  kRefused = static_cast<uint8_t>(Rcode::kRefused),
};

struct AnswerConfig {
  bool recursion_available = true;        // RA: the proxy stands in for a recursive resolver
  uint16_t edns_udp_payload_size = 1232;  // advertised in our OPT (DNS flag day 2020 default)
};

// Rewrites `query` (parsed from exactly these bytes, QR = 0) into an answer with `rcode`:
// QR set, ID, opcode, RD and CD copied, AA/TC/AD/Z cleared, RA per `config`, QDCOUNT 1,
// AN/NS 0, the message cut after the question. If the query had an OPT record, the answer
// carries one OPT (root owner, our payload size, version 0, extended rcode 0, the query's DO bit,
// no options) and ARCOUNT 1; otherwise ARCOUNT 0. A query with EDNS version > 0 gets BADVERS
// instead of `rcode` (RFC 6891 6.1.3: the proxy implements version 0 only).
// Returns the new payload length (<= query.wire.size()) for fixing the IP/UDP lengths.
[[nodiscard]] size_t write_error_answer(std::span<uint8_t> payload, const Message& query,
                                        ErrorAnswer rcode, const AnswerConfig& config) noexcept;

}  // namespace dnsproxy::dns
