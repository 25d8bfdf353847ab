#include "datapath/agent/grpc_codec.h"

#include <algorithm>
#include <span>

#include "dns/name_text.h"

namespace dnsproxy::datapath::agent {
namespace {

// A name of a PlumbName (lowercased wire form) in presentation form, appended to `out`.
void append_name(const std::string& wire, std::string& out) {
  dns::append_name_text(std::span(reinterpret_cast<const uint8_t*>(wire.data()), wire.size()), out);
}

}  // namespace

v1::MappingBatch encode_batch(const pipeline::PlumbBatch& batch, pipeline::Clock::time_point now,
                              const IdentityOf& identity_of) {
  v1::MappingBatch message;
  message.set_batch_id(batch.id);
  for (const pipeline::PlumbName& name : batch.names) {
    v1::Mapping& mapping = *message.add_mappings();
    mapping.set_endpoint_id(name.endpoint_id);
    std::string text;
    append_name(name.name, text);
    mapping.set_name(std::move(text));
    pipeline::Clock::duration longest{0};
    for (const pipeline::PlumbAddress& address : name.addresses) {
      const size_t length = address.ip.family == policy::Family::kV4 ? 4 : 16;
      mapping.add_ips(reinterpret_cast<const char*>(address.ip.bytes.data()), length);
      longest = std::max(longest, address.expires - now);
    }
    const auto seconds =
        std::chrono::ceil<std::chrono::seconds>(longest).count();  // never below the proxy's view
    mapping.set_ttl_seconds(static_cast<uint32_t>(std::clamp<int64_t>(seconds, 0, UINT32_MAX)));
    mapping.set_source_identity(identity_of ? identity_of(name.endpoint_id) : 0);
    mapping.set_rcode(0);  // only NOERROR answers carry addresses
  }
  return message;
}

Result<std::vector<pipeline::PlumbAddress>> decode_addresses(const v1::Mapping& mapping,
                                                             pipeline::Clock::time_point now) {
  std::vector<pipeline::PlumbAddress> addresses;
  const auto expires = now + std::chrono::seconds(mapping.ttl_seconds());
  for (const std::string& ip : mapping.ips()) {
    const auto* bytes = reinterpret_cast<const uint8_t*>(ip.data());
    if (ip.size() == 4)
      addresses.push_back({policy::IpAddress::v4(std::span<const uint8_t, 4>(bytes, 4)), expires});
    else if (ip.size() == 16)
      addresses.push_back(
          {policy::IpAddress::v6(std::span<const uint8_t, 16>(bytes, 16)), expires});
    else
      return fail("an IP of ", std::to_string(ip.size()), " bytes (want 4 or 16)");
  }
  return addresses;
}

BatchResult decode_ack(const v1::BatchAck& ack, const pipeline::PlumbBatch& batch) {
  BatchResult result{.batch_id = ack.batch_id(), .plumbed = true, .error = {}};
  if (static_cast<size_t>(ack.results_size()) != batch.names.size()) {
    result.plumbed = false;
    result.error = "the agent answered " + std::to_string(ack.results_size()) +
                   " mapping result(s) for " + std::to_string(batch.names.size()) + " mapping(s)";
    return result;
  }
  for (int i = 0; i < ack.results_size(); ++i) {
    const v1::MappingResult& mapping = ack.results(i);
    if (mapping.status() == v1::MAPPING_STATUS_PLUMBED) continue;
    const pipeline::PlumbName& name = batch.names[static_cast<size_t>(i)];
    result.plumbed = false;
    result.error = "endpoint " + std::to_string(name.endpoint_id) + " ";
    append_name(name.name, result.error);
    result.error += ": " + v1::MappingStatus_Name(mapping.status()) +
                    (mapping.error().empty() ? "" : ": " + mapping.error());
    break;
  }
  return result;
}

}  // namespace dnsproxy::datapath::agent
