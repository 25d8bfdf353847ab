// The policy file the e2e suites and the demo give dnsproxyd --policy, on the test topology: the
// client (192.0.2.10, 2001:db8:c::10) is endpoint 101 with label app=frontend; knotd
// (198.51.100.53, 2001:db8:5::53) has the kube-dns identity 20001. The endpoint may ask knotd,
// on port 53, for the names `dns` selects, and connect to what `to_fqdns` selects (both YAML flow
// lists of selectors, e.g. R"([{matchPattern: "host*.example.test"}])"; an empty `to_fqdns`
// leaves the rule out).
#pragma once

#include <string>
#include <string_view>

namespace dnsproxy::test {

// The two building blocks, one YAML list item each, for suites that write policies of their own.
inline constexpr std::string_view kKubeDnsIdentity =
    "  - {id: 20001, labels: {k8s-app: kube-dns}, cidrs: [198.51.100.53/32, "
    "\"2001:db8:5::53/128\"]}\n";
inline constexpr std::string_view kFrontendEndpoint =
    "  - {id: 101, identity: 10001, labels: {app: frontend}, ips: [192.0.2.10, "
    "\"2001:db8:c::10\"]}\n";

std::string frontend_policy(std::string_view dns, std::string_view to_fqdns);

}  // namespace dnsproxy::test
