#include "policy/snapshot.h"

namespace dnsproxy::policy {

std::string_view to_string(DenyReason reason) noexcept {
  switch (reason) {
    case DenyReason::kUnknownSource:
      return "unknown_source";
    case DenyReason::kNoRuleForPort:
      return "no_rule_for_port";
    case DenyReason::kServerNotSelected:
      return "server_not_selected";
    case DenyReason::kNameNotAllowed:
      return "name_not_allowed";
  }
  return "unknown";
}

Decision Snapshot::decide(const IpAddress& client, const IpAddress& server, uint16_t port,
                          Protocol protocol, std::span<const uint8_t> qname) const noexcept {
  const PolicyDefaults& defaults = rules->defaults();
  const EndpointInfo* source = endpoints->find(client);
  if (source == nullptr) {
    return {defaults.unknown_source == DefaultAction::kAllow, DenyReason::kUnknownSource, 0};
  }
  const uint32_t endpoint_id = source->endpoint_id;
  const EndpointRules* endpoint = rules->find(endpoint_id);
  bool port_has_rules = false;
  bool server_selected = false;
  if (endpoint != nullptr) {
    uint32_t server_identity = 0;
    bool identity_known = false;
    for (const PortRule& port_rule : endpoint->ports) {
      if (!port_rule.applies_to(port, protocol)) continue;
      port_has_rules = true;
      for (const SelectorRule& selector : port_rule.selectors) {
        if (!selector.any_server) {
          if (!identity_known) {  // the ipcache probe only when a rule needs it
            server_identity = ipcache->lookup(server);
            identity_known = true;
          }
          if (!selector.selects(server_identity)) continue;
        }
        server_selected = true;
        if (selector.names.matches(qname)) return {true, DenyReason::kNameNotAllowed, endpoint_id};
      }
    }
  }
  if (!port_has_rules) {
    return {defaults.port_without_rules == DefaultAction::kAllow, DenyReason::kNoRuleForPort,
            endpoint_id};
  }
  return {false, server_selected ? DenyReason::kNameNotAllowed : DenyReason::kServerNotSelected,
          endpoint_id};
}

SnapshotStore::SnapshotStore(QsbrDomain& domain) : publisher_(domain) {
  publisher_.publish(std::make_unique<Snapshot>());
}

void SnapshotStore::replace(Parts parts) {
  auto next = std::make_unique<Snapshot>(current());
  next->version = current().version + 1;
  if (parts.rules) next->rules = std::move(parts.rules);
  if (parts.endpoints) next->endpoints = std::move(parts.endpoints);
  if (parts.ipcache) next->ipcache = std::move(parts.ipcache);
  if (parts.plumbed) next->plumbed = std::move(parts.plumbed);
  publisher_.publish(std::move(next));
}

}  // namespace dnsproxy::policy
