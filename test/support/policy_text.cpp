#include "test/support/policy_text.h"

namespace dnsproxy::test {

std::string frontend_policy(std::string_view dns, std::string_view to_fqdns) {
  std::string text = R"(identities:
  - {id: 20001, labels: {k8s-app: kube-dns}, cidrs: [198.51.100.53/32, "2001:db8:5::53/128"]}
endpoints:
  - {id: 101, identity: 10001, labels: {app: frontend}, ips: [192.0.2.10, "2001:db8:c::10"]}
policies:
  - name: frontend
    endpointSelector: {matchLabels: {app: frontend}}
    egress:
      - toEndpoints: [{matchLabels: {k8s-app: kube-dns}}]
        toPorts:
          - ports: [{port: "53", protocol: ANY}]
            rules:
              dns: )";
  text.append(dns).append("\n");
  if (!to_fqdns.empty()) text.append("      - toFQDNs: ").append(to_fqdns).append("\n");
  return text;
}

}  // namespace dnsproxy::test
