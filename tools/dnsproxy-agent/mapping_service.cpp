#include "tools/dnsproxy-agent/mapping_service.h"

#include <thread>

#include <spdlog/spdlog.h>

#include "datapath/agent/grpc_codec.h"
#include "tools/dnsproxy-agent/policy_streams.h"

namespace dnsproxy::agent_tool {

grpc::Status MappingService::Mappings(
    grpc::ServerContext*, grpc::ServerReaderWriter<v1::BatchAck, v1::MappingBatch>* stream) {
  count(LinkCounter::kStreams);
  stream->SendInitialMetadata();  // the proxy reports the link up on it
  v1::MappingBatch batch;
  uint64_t answered = 0;
  while (stream->Read(&batch)) {
    if (faults_.stop_answering) {
      count(LinkCounter::kBatchesUnanswered);
      continue;
    }
    const v1::BatchAck ack = plumb(batch);
    if (faults_.ack_delay.count() > 0) std::this_thread::sleep_for(faults_.ack_delay);
    if (!stream->Write(ack)) break;
    count(LinkCounter::kBatchesAnswered);
    if (++answered == faults_.drop_stream_after) {
      count(LinkCounter::kStreamsDropped);
      spdlog::info("--drop-stream-after {}: ending the stream", answered);
      return grpc::Status(grpc::StatusCode::UNAVAILABLE,
                          "dropped by --drop-stream-after (fault injection)");
    }
  }
  spdlog::info("proxy stream ended after {} answered batch(es)", answered);
  return grpc::Status::OK;
}

grpc::Status MappingService::Policy(
    grpc::ServerContext* context,
    grpc::ServerReaderWriter<v1::PolicyResponse, v1::PolicyRequest>* stream) {
  return policy_.serve(context, stream);
}

// The map writes first, the ACK after: the ACK is what releases the proxy's parked responses.
v1::BatchAck MappingService::plumb(const v1::MappingBatch& batch) {
  v1::BatchAck ack;
  ack.set_batch_id(batch.batch_id());
  const auto now = datapath::pipeline::Clock::now();
  bool plumbed = true;
  std::lock_guard lock(mutex_);
  for (const v1::Mapping& mapping : batch.mappings()) {
    v1::MappingResult& result = *ack.add_results();
    auto addresses = datapath::agent::decode_addresses(mapping, now);
    if (!addresses) {
      result.set_status(v1::MAPPING_STATUS_INVALID);
      result.set_error(addresses.error().message);
      plumbed = false;
      continue;
    }
    if (auto written = maps_.plumb_name(mapping.endpoint_id(), *addresses); !written) {
      result.set_status(v1::MAPPING_STATUS_FAILED);
      result.set_error(written.error().message);
      plumbed = false;
      continue;
    }
    result.set_status(v1::MAPPING_STATUS_PLUMBED);
  }
  maps_.count_batch(plumbed);
  if (!plumbed)
    spdlog::warn("batch {}: not every mapping was plumbed (see the ACK)", batch.batch_id());
  return ack;
}

void MappingService::count(LinkCounter counter) {
  std::lock_guard lock(mutex_);
  counters_.add(counter);
}

}  // namespace dnsproxy::agent_tool
