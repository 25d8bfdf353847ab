// The immutable view of policy a worker decides against, and the control-thread side that
// builds and publishes it.
//
// A Snapshot is a small root pointing at four immutable parts (rules, endpoint table, ipcache,
// plumbed set). Each part changes at its own pace (policy file reload, BPF map mirror, agent
// ACKs), so a new root shares the parts that did not change: republishing after an ACK copies
// the plumbed set, not a million-prefix ipcache. Workers load the root with one acquire load per
// batch (SnapshotStore::acquire) and follow plain pointers; the parts are freed through QSBR when
// the last root referencing them is (shared_ptr counts are only touched by the control thread).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string_view>

#include "policy/fqdn_cache.h"
#include "policy/ip_address.h"
#include "policy/qsbr.h"
#include "policy/rules.h"
#include "policy/tables.h"

namespace dnsproxy::policy {

// Why a query was refused. Workers keep one counter per reason.
enum class DenyReason : uint8_t {
  kUnknownSource,      // client IP is not a known endpoint (and the default refuses)
  kNoRuleForPort,      // the endpoint has no DNS rule for this port/protocol (default refuses)
  kServerNotSelected,  // rules exist for the port, none selects this DNS server's identity
  kNameNotAllowed,     // a rule selects the server, no pattern matches the name
};
inline constexpr size_t kDenyReasonCount = 4;
[[nodiscard]] std::string_view to_string(DenyReason reason) noexcept;

struct Decision {
  bool allowed = false;
  DenyReason reason = DenyReason::kUnknownSource;  // meaningful when !allowed
  uint32_t endpoint_id = 0;                        // the client's endpoint, 0 if unknown
};

struct Snapshot {
  uint64_t version = 0;
  std::shared_ptr<const RuleSet> rules = std::make_shared<RuleSet>();
  std::shared_ptr<const EndpointTable> endpoints = std::make_shared<EndpointTable>();
  std::shared_ptr<const IpCache> ipcache = std::make_shared<IpCache>();
  std::shared_ptr<const PlumbedSet> plumbed = std::make_shared<PlumbedSet>();

  // May `client` ask `server` on (port, protocol) for `qname` (lowercased, uncompressed wire
  // form ending with the root byte)?
  [[nodiscard]] Decision decide(const IpAddress& client, const IpAddress& server, uint16_t port,
                                Protocol protocol, std::span<const uint8_t> qname) const noexcept;

  [[nodiscard]] bool is_plumbed(uint32_t endpoint_id, const IpAddress& ip,
                                Clock::time_point now) const noexcept {
    return plumbed->is_plumbed(endpoint_id, ip, now);
  }
  [[nodiscard]] Clock::time_point plumbed_until(uint32_t endpoint_id,
                                                const IpAddress& ip) const noexcept {
    return plumbed->plumbed_until(endpoint_id, ip);
  }
};

// Control thread: holds the current parts, publishes a new root whenever one is replaced.
class SnapshotStore {
 public:
  explicit SnapshotStore(QsbrDomain& domain);

  // Workers: once per batch, then QsbrDomain::Reader::quiescent() when done with it.
  [[nodiscard]] const Snapshot* acquire() const noexcept { return publisher_.acquire(); }

  // Control thread only: publishes one new root in which the non-null parts replace the
  // current ones (so a policy reload swaps rules and tables together, in one store).
  struct Parts {
    std::shared_ptr<const RuleSet> rules;
    std::shared_ptr<const EndpointTable> endpoints;
    std::shared_ptr<const IpCache> ipcache;
    std::shared_ptr<const PlumbedSet> plumbed;
  };
  void replace(Parts parts);
  // Frees the roots (and parts) every reader has moved past; returns how many still wait.
  size_t reclaim() { return publisher_.reclaim(); }
  [[nodiscard]] const Snapshot& current() const noexcept {
    return *publisher_.current_for_control();
  }

 private:
  Publisher<Snapshot> publisher_;
};

}  // namespace dnsproxy::policy
