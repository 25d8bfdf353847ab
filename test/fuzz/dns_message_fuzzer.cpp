// libFuzzer target for the DNS codec: any bytes in, never a crash, an out-of-bounds read or
// undefined behaviour, and the codec's promises hold on whatever it accepts.
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <vector>

#include "dns/answer_writer.h"
#include "dns/message.h"
#include "dns/message_text.h"
#include "dns/wire_name.h"

namespace {

using namespace dnsproxy::dns;

// abort() so both libFuzzer and the ctest replay report the input.
void require(bool promise) {
  if (!promise) std::abort();
}

void check_accepted(const Message& message) {
  std::array<uint8_t, kMaxNameWireLength> qname{};
  const size_t length = copy_question_name(message, qname);
  require(length == message.question.name_wire_length && qname[length - 1] == 0);

  AnswerWalk walk(message);
  AnswerRecord record;
  unsigned records = 0;
  while (walk.next(record)) {
    require(++records <= message.answer_count);
    require(!record.on_chain || record.chain_ttl <= record.ttl);
    require(record.type != RecordType::kA || record.rdata.size() == 4);
    require(record.type != RecordType::kAaaa || record.rdata.size() == 16);
    // What the parser accepted through its known-name shortcut holds up to a full walk.
    require(scan_name(message.wire, record.owner_offset).ok());
    if (record.type == RecordType::kCname) {
      const size_t rdata_end = record.rdata_offset + record.rdata.size();
      const NameScan target = scan_name(message.wire, record.rdata_offset);
      require(target.ok() && target.end == rdata_end);
    }
  }
  require(!message_to_json(message).empty());
}

// An accepted query turned into an error answer must parse back as a response.
void check_error_answer(std::span<const uint8_t> data) {
  std::vector<uint8_t> packet(data.begin(), data.end());
  const auto query = parse_query(packet);
  if (!query) return;
  const size_t length = write_error_answer(packet, *query, ErrorAnswer::kRefused, AnswerConfig{});
  require(length <= packet.size());
  const auto answer = parse_response(std::span(packet).first(length));
  const Rcode expected =
      query->edns.present && query->edns.version != 0 ? Rcode::kBadVers : Rcode::kRefused;
  require(answer && answer->rcode() == static_cast<uint16_t>(expected));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::span<const uint8_t> input(data, size);
  const auto message = parse_message(input);
  if (message) check_accepted(*message);
  check_error_answer(input);
  return 0;
}
