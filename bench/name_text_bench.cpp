// Cold-path reference point: parsing a name typed by a user (policy files, CLI).
#include <benchmark/benchmark.h>

#include <array>

#include "dns/name_text.h"

namespace {

void BM_NameFromText(benchmark::State& state) {
  std::array<uint8_t, dnsproxy::dns::kMaxNameWireLength> wire{};
  for (auto _ : state) {
    auto written = dnsproxy::dns::name_from_text("api.payments.example.com.", wire);
    benchmark::DoNotOptimize(written);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_NameFromText);

}  // namespace
