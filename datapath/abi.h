// C++ view of the BPF ABI: includes the shared C header and pins every layout that crosses the
// kernel/user boundary, so a change on one side that the other did not follow fails to compile.
#pragma once

#include <cstring>

#include "datapath/bpf/dnsproxy_abi.h"
#include "policy/ip_address.h"

static_assert(sizeof(dns_steer_meta) == 24 && sizeof(dns_steer_meta) % 4 == 0);
static_assert(sizeof(dns_steer_config) == 20 && sizeof(dns_steer_iface) == 4);
static_assert(DNS_STEER_XSK_SLOTS == DNS_STEER_MAX_QUEUES * DNS_STEER_MAX_IFACES);
static_assert(sizeof(endpoint_key) == 20 && sizeof(endpoint_value) == 8);
static_assert(sizeof(ipcache_key) == 24 && sizeof(ipcache_value) == 8);
static_assert(sizeof(policed_source) == 8);
static_assert(sizeof(fqdn_allow_key) == 24 && sizeof(fqdn_allow_value) == 8);

namespace dnsproxy::datapath {

// An address as the endpoint-keyed maps (endpoints, dns_steer_sources) store it.
[[nodiscard]] inline endpoint_key to_endpoint_key(const policy::IpAddress& address) noexcept {
  endpoint_key key{};
  std::memcpy(key.addr, address.bytes.data(), sizeof key.addr);
  key.family = static_cast<__u8>(address.family);
  return key;
}

}  // namespace dnsproxy::datapath
