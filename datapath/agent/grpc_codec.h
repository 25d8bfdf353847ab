// The agent link's messages (proto/dnsproxy/v1/agent.proto) to and from the pipeline's types, for
// both ends: the proxy's GrpcAgent encodes batches and reads ACKs; the reference agent
// (tools/dnsproxy-agent/) decodes batches and encodes ACKs. Control plane only.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "common/result.h"
#include "datapath/agent/agent.h"
#include "datapath/pipeline/coordinator.h"
#include "dnsproxy/v1/agent.pb.h"

namespace dnsproxy::datapath::agent {

// The identity of an endpoint (its source identity in a Mapping); 0 when unknown.
using IdentityOf = std::function<uint32_t(uint32_t endpoint_id)>;

// One Mapping per name of `batch`. Each TTL is the longest time left at `now` among the name's
// addresses, rounded up to a second (the agent adds its grace period on top).
[[nodiscard]] v1::MappingBatch encode_batch(const pipeline::PlumbBatch& batch,
                                            pipeline::Clock::time_point now,
                                            const IdentityOf& identity_of);

// A Mapping's addresses, each valid until `now` + its TTL; an error when an IP is neither 4 nor
// 16 bytes.
[[nodiscard]] Result<std::vector<pipeline::PlumbAddress>> decode_addresses(
    const v1::Mapping& mapping, pipeline::Clock::time_point now);

// An ACK as the proxy's pipeline takes it: plumbed when the agent reported every mapping of
// `batch` (as encode_batch sent it: one Mapping per name, in order) plumbed; otherwise the first
// failure, named by its endpoint and name.
[[nodiscard]] BatchResult decode_ack(const v1::BatchAck& ack, const pipeline::PlumbBatch& batch);

}  // namespace dnsproxy::datapath::agent
