#include "dns/answer_writer.h"

#include <cassert>

namespace dnsproxy::dns {
namespace {

constexpr size_t kOptRecordSize = 11;      // root owner, TYPE, CLASS, TTL, RDLENGTH
constexpr uint8_t kOptDnssecOkBit = 0x80;  // high bit of the TTL's third byte

// Writes our OPT record at `out`: OWNER "." TYPE OPT CLASS <payload size> TTL <ext-rcode,
// version 0, DO, Z 0> RDLENGTH 0.
void write_opt(uint8_t* out, uint16_t udp_payload_size, uint8_t extended_rcode_high,
               bool dnssec_ok) noexcept {
  out[0] = 0;
  store_u16(&out[1], static_cast<uint16_t>(RecordType::kOpt));
  store_u16(&out[3], udp_payload_size);
  out[5] = extended_rcode_high;
  out[6] = 0;
  out[7] = dnssec_ok ? kOptDnssecOkBit : 0;
  out[8] = 0;
  store_u16(&out[9], 0);
}

}  // namespace

size_t write_error_answer(std::span<uint8_t> payload, const Message& query, ErrorAnswer rcode,
                          const AnswerConfig& config) noexcept {
  assert(payload.data() == query.wire.data() && payload.size() == query.wire.size());
  // Read everything we keep from the query before overwriting the bytes that hold it.
  const bool has_opt = query.edns.present;
  const bool dnssec_ok = query.edns.dnssec_ok;
  // We speak EDNS version 0 only; RFC 6891 6.1.3: a higher version MUST get BADVERS.
  const uint16_t full_rcode = has_opt && query.edns.version != 0
                                  ? static_cast<uint16_t>(Rcode::kBadVers)
                                  : static_cast<uint16_t>(rcode);

  const HeaderBytes h = header_of(payload);
  using namespace header;
  h[kFlags1Offset] = static_cast<uint8_t>(kQrMask | (h[kFlags1Offset] & (kOpcodeMask | kRdMask)));
  h[kFlags2Offset] = static_cast<uint8_t>((config.recursion_available ? kRaMask : 0) |
                                          (h[kFlags2Offset] & kCdMask) | (full_rcode & kRcodeMask));
  set_counts(h, 1, 0, 0, has_opt ? 1 : 0);

  size_t length = query.question_end;
  if (has_opt) {
    // The query's OPT lies after the question and is >= 11 bytes, so ours fits.
    write_opt(&payload[length], config.edns_udp_payload_size, static_cast<uint8_t>(full_rcode >> 4),
              dnssec_ok);
    length += kOptRecordSize;
  }
  return length;
}

}  // namespace dnsproxy::dns
