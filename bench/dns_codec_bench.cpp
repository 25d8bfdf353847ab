// The DNS codec on the worker's two per-packet jobs, against ldns parsing the same packets in
// the same binary (bench/RESULTS.md has the figures and the command).
//
// - Query: parse + validate the whole message, copy the lowercased question name out (what
//   the policy matcher consumes).
// - Response: parse + validate, then walk the answers (2-CNAME chain, 2 A + 2 AAAA) collecting
//   each address with its chain TTL (what the worker learns).
// ldns does the equivalent with its own API: ldns_wire2pkt, then the question owner made
// canonical (lowercase) / the answer list read, then ldns_pkt_free.
#include <benchmark/benchmark.h>
#include <ldns/ldns.h>

#include <array>
#include <vector>

#include "dns/message.h"
#include "test/dns/packet_builder.h"

namespace {

using namespace dnsproxy::dns;

void BM_CodecQuery(benchmark::State& state) {
  const std::vector<uint8_t> packet = testing::typical_query();
  std::array<uint8_t, kMaxNameWireLength> qname{};
  for (auto _ : state) {
    const auto message = parse_query(packet);
    if (!message) state.SkipWithError("query rejected");
    benchmark::DoNotOptimize(copy_question_name(*message, qname));
    benchmark::DoNotOptimize(qname.data());
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_CodecQuery);

void BM_LdnsQuery(benchmark::State& state) {
  const std::vector<uint8_t> packet = testing::typical_query();
  for (auto _ : state) {
    ldns_pkt* parsed = nullptr;
    if (ldns_wire2pkt(&parsed, packet.data(), packet.size()) != LDNS_STATUS_OK)
      state.SkipWithError("ldns rejected the query");
    ldns_rdf* owner = ldns_rr_owner(ldns_rr_list_rr(ldns_pkt_question(parsed), 0));
    ldns_dname2canonical(owner);
    benchmark::DoNotOptimize(ldns_rdf_data(owner));
    ldns_pkt_free(parsed);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_LdnsQuery);

void BM_CodecResponse(benchmark::State& state) {
  const std::vector<uint8_t> packet = testing::chain_response();
  for (auto _ : state) {
    const auto message = parse_response(packet);
    if (!message) state.SkipWithError("response rejected");
    AnswerWalk walk(*message);
    AnswerRecord record;
    uint32_t learned = 0;
    while (walk.next(record)) {
      if (record.on_chain && record.type != RecordType::kCname) {
        benchmark::DoNotOptimize(record.rdata.data());
        learned += record.chain_ttl;
      }
    }
    benchmark::DoNotOptimize(learned);
    benchmark::DoNotOptimize(message->rcode());
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_CodecResponse);

void BM_LdnsResponse(benchmark::State& state) {
  const std::vector<uint8_t> packet = testing::chain_response();
  for (auto _ : state) {
    ldns_pkt* parsed = nullptr;
    if (ldns_wire2pkt(&parsed, packet.data(), packet.size()) != LDNS_STATUS_OK)
      state.SkipWithError("ldns rejected the response");
    const ldns_rr_list* answers = ldns_pkt_answer(parsed);
    uint32_t ttls = 0;
    for (size_t i = 0; i < ldns_rr_list_rr_count(answers); ++i) {
      const ldns_rr* rr = ldns_rr_list_rr(answers, i);
      ttls += ldns_rr_ttl(rr);
      benchmark::DoNotOptimize(ldns_rdf_data(ldns_rr_rdf(rr, 0)));
    }
    benchmark::DoNotOptimize(ttls);
    benchmark::DoNotOptimize(ldns_pkt_get_rcode(parsed));
    ldns_pkt_free(parsed);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_LdnsResponse);

}  // namespace
