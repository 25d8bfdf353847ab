#include "tools/dnsproxy-agent/policy_streams.h"

#include <chrono>
#include <thread>

#include <spdlog/spdlog.h>

namespace dnsproxy::agent_tool {

using datapath::agent::PolicyResources;
using datapath::agent::ResourceVersions;

// What one stream's two threads share, under `mutex`.
struct PolicyStreams::Stream {
  std::mutex mutex;
  std::condition_variable answered;
  ResourceVersions held;             // what the proxy holds: its initial versions, then each ACK's
  std::string outstanding;           // the nonce of the update not answered yet ("": none)
  ResourceVersions if_acked;         // what the proxy holds once it ACKs that update
  std::atomic<bool> closed = false;  // the proxy ended the stream (or it broke)
};

PolicyStreams::PolicyStreams(PolicyResources resources, CounterSet<LinkCounter>& counters,
                             std::mutex& counters_mutex, bool nack_next_update)
    : counters_(counters),
      counters_mutex_(counters_mutex),
      nack_next_update_(nack_next_update),
      resources_(std::make_shared<const PolicyResources>(std::move(resources))) {}

void PolicyStreams::update(PolicyResources resources) {
  {
    std::lock_guard lock(mutex_);
    resources_ = std::make_shared<const PolicyResources>(std::move(resources));
    ++generation_;
  }
  changed_.notify_all();
}

namespace {

// `held` after a proxy applied `update`.
ResourceVersions after(ResourceVersions held, const v1::PolicyResponse& update) {
  for (const v1::PolicyResource& resource : update.resources())
    held[resource.name()] = resource.version();
  for (const std::string& name : update.removed_resources()) held.erase(name);
  return held;
}

}  // namespace

grpc::Status PolicyStreams::serve(
    grpc::ServerContext* context,
    grpc::ServerReaderWriter<v1::PolicyResponse, v1::PolicyRequest>* rpc) {
  count(LinkCounter::kPolicyStreams);
  v1::PolicyRequest first;
  if (!rpc->Read(&first)) return grpc::Status::OK;
  Stream stream;
  stream.held.insert(first.initial_resource_versions().begin(),
                     first.initial_resource_versions().end());
  std::thread reader([&] { read_answers(stream, *rpc); });
  uint64_t sent_generation = 0;
  for (bool first_update = true;; first_update = false) {
    std::shared_ptr<const PolicyResources> resources;
    {
      // The policy changes rarely: a wait with a timeout also sees the server shut down.
      std::unique_lock lock(mutex_);
      while (generation_ == sent_generation && !context->IsCancelled() && !stream.closed)
        changed_.wait_for(lock, std::chrono::milliseconds(200));
      sent_generation = generation_;
      resources = resources_;
    }
    std::unique_lock lock(stream.mutex);
    stream.answered.wait(lock, [&] { return stream.closed || stream.outstanding.empty(); });
    if (stream.closed || context->IsCancelled()) break;
    v1::PolicyResponse update = datapath::agent::policy_delta(stream.held, *resources);
    if (!first_update && nack_next_update_.exchange(false)) spoil(update, *resources);
    update.set_nonce(std::to_string(next_nonce_++));
    stream.outstanding = update.nonce();
    stream.if_acked = after(stream.held, update);
    lock.unlock();
    count(LinkCounter::kPolicyUpdatesSent);
    count(LinkCounter::kPolicyResourcesSent, static_cast<uint64_t>(update.resources_size()));
    spdlog::info("policy update {} (version {}): {} resource(s), {} removal(s)", update.nonce(),
                 update.system_version_info(), update.resources_size(),
                 update.removed_resources_size());
    if (!rpc->Write(update)) break;
  }
  context->TryCancel();  // ends the reader's Read
  reader.join();
  spdlog::info("proxy policy stream ended");
  return grpc::Status::OK;
}

void PolicyStreams::read_answers(
    Stream& stream, grpc::ServerReaderWriter<v1::PolicyResponse, v1::PolicyRequest>& rpc) {
  v1::PolicyRequest answer;
  while (rpc.Read(&answer)) {
    std::lock_guard lock(stream.mutex);
    if (answer.response_nonce() != stream.outstanding) {
      spdlog::warn("policy: an answer for nonce \"{}\", not the outstanding \"{}\": ignored",
                   answer.response_nonce(), stream.outstanding);
      continue;
    }
    if (answer.has_error_detail()) {
      count(LinkCounter::kPolicyNacks);
      spdlog::warn("proxy NACKed policy update {} (code {}): {}; it keeps what it held",
                   answer.response_nonce(), answer.error_detail().code(),
                   answer.error_detail().message());
    } else {
      count(LinkCounter::kPolicyAcks);
      stream.held = std::move(stream.if_acked);
    }
    stream.outstanding.clear();
    stream.answered.notify_all();
  }
  std::lock_guard lock(stream.mutex);
  stream.closed = true;
  stream.answered.notify_all();
}

// --nack-next-update: a rule on a port that does not exist in one dns/ resource of the update
// (one is taken from the policy when the update has none), which any proxy must refuse.
void PolicyStreams::spoil(v1::PolicyResponse& update, const PolicyResources& resources) {
  v1::PolicyResource* target = nullptr;
  for (v1::PolicyResource& resource : *update.mutable_resources())
    if (resource.has_dns()) target = &resource;
  for (const auto& [name, resource] : resources)
    if (resource.has_dns() && !target) target = &(*update.add_resources() = resource);
  if (!target) return;
  target->mutable_dns()->add_rules()->set_port(70000);
  target->set_version("nack-next-update");
  spdlog::warn("--nack-next-update: policy update carries an invalid {} (a rule on port 70000)",
               target->name());
}

void PolicyStreams::count(LinkCounter counter, uint64_t n) {
  std::lock_guard lock(counters_mutex_);
  counters_.add(counter, n);
}

}  // namespace dnsproxy::agent_tool
