#include "policy/qsbr.h"

namespace dnsproxy::policy {

QsbrDomain::Reader::~Reader() {
  if (domain_ != nullptr) domain_->slots_[slot_].seen.store(kUnused, std::memory_order_release);
}

Result<QsbrDomain::Reader> QsbrDomain::register_reader() {
  for (size_t i = 0; i < kMaxReaders; ++i) {
    uint64_t expected = kUnused;
    if (slots_[i].seen.compare_exchange_strong(expected, kOffline, std::memory_order_acq_rel)) {
      Reader reader(this, i);
      reader.online();
      return reader;
    }
  }
  return fail("more than ", std::to_string(kMaxReaders), " snapshot readers registered");
}

bool QsbrDomain::passed(uint64_t epoch) const noexcept {
  for (const Slot& slot : slots_) {
    const uint64_t seen = slot.seen.load(std::memory_order_seq_cst);
    if (seen == kUnused || seen == kOffline) continue;
    if (seen < epoch) return false;
  }
  return true;
}

}  // namespace dnsproxy::policy
