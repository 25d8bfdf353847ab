#include "test/support/policy_text.h"

namespace dnsproxy::test {

std::string frontend_policy(std::string_view dns, std::string_view to_fqdns) {
  std::string text = "identities:\n";
  text.append(kKubeDnsIdentity).append("endpoints:\n").append(kFrontendEndpoint);
  text.append(R"(policies:
  - name: frontend
    endpointSelector: {matchLabels: {app: frontend}}
    egress:
      - toEndpoints: [{matchLabels: {k8s-app: kube-dns}}]
        toPorts:
          - ports: [{port: "53", protocol: ANY}]
            rules:
              dns: )");
  text.append(dns).append("\n");
  if (!to_fqdns.empty()) text.append("      - toFQDNs: ").append(to_fqdns).append("\n");
  return text;
}

}  // namespace dnsproxy::test
