#include "datapath/agent/grpc_agent.h"

#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>

#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>

#include <grpcpp/grpcpp.h>
#include <spdlog/spdlog.h>

#include "dnsproxy/v1/agent.grpc.pb.h"

namespace dnsproxy::datapath::agent {

Result<std::string> unix_socket_path(std::string_view target) {
  constexpr std::string_view kScheme = "unix:";
  if (!target.starts_with(kScheme) || target.size() == kScheme.size())
    return fail("--agent: \"", std::string(target), "\" is not unix:PATH");
  return std::string(target.substr(kScheme.size()));
}

// Everything gRPC's threads touch. The stream's reactor: one read always pending (the next ACK),
// at most one write in flight (gRPC allows one), the rest of the batches queued behind it.
// Reactions only move data under `mutex_` and ring the eventfd; decisions are the control
// thread's, in GrpcAgent::poll().
class GrpcAgent::Link final : public grpc::ClientBidiReactor<v1::MappingBatch, v1::BatchAck> {
 public:
  Link(const std::string& target, pipeline::EventFd& wake)
      : channel_(grpc::CreateChannel(target, grpc::InsecureChannelCredentials())),
        stub_(v1::AgentLink::NewStub(channel_)),
        wake_(wake) {
    stub_->async()->Mappings(&context_, this);
    StartRead(&incoming_);
    StartCall();
  }

  // Control thread. A stream that ended drops the batch: poll() fails it with the others.
  void send(v1::MappingBatch batch) {
    const v1::MappingBatch* next = nullptr;
    {
      std::lock_guard lock(mutex_);
      if (done_) return;
      outgoing_.push_back(std::move(batch));
      if (!writing_) {
        writing_ = true;
        next = &outgoing_.front();  // deque: stays put while others are pushed behind it
      }
    }
    if (next) StartWrite(next);
  }

  struct Events {
    bool up = false;
    bool done = false;
    std::string error;
    std::vector<v1::BatchAck> acks;
  };
  // Control thread: what the reactions left since the last call.
  void take(Events& events) {
    std::lock_guard lock(mutex_);
    events.up = up_;
    events.done = done_;
    events.error = error_;
    events.acks.swap(acks_);
  }

  // Ends the stream (if it has not ended) and waits for its last reaction.
  void cancel_and_wait() {
    context_.TryCancel();
    std::unique_lock lock(mutex_);
    finished_.wait(lock, [this] { return done_; });
  }

  void OnReadInitialMetadataDone(bool ok) override {
    if (!ok) return;  // the stream failed; OnDone says why
    {
      std::lock_guard lock(mutex_);
      up_ = true;
    }
    wake_.signal();
  }

  void OnReadDone(bool ok) override {
    if (!ok) return;  // no more ACKs: OnDone follows
    {
      std::lock_guard lock(mutex_);
      acks_.push_back(std::move(incoming_));
    }
    wake_.signal();
    incoming_.Clear();
    StartRead(&incoming_);
  }

  void OnWriteDone(bool ok) override {
    const v1::MappingBatch* next = nullptr;
    {
      std::lock_guard lock(mutex_);
      outgoing_.pop_front();
      if (ok && !outgoing_.empty())
        next = &outgoing_.front();
      else
        writing_ = false;  // drained, or the stream broke (OnDone follows)
    }
    if (next) StartWrite(next);
  }

  // The last reaction. The eventfd is rung under the lock: once cancel_and_wait() sees done_,
  // nothing here touches the agent again.
  void OnDone(const grpc::Status& status) override {
    std::lock_guard lock(mutex_);
    done_ = true;
    error_ = status.ok() ? "the agent closed the stream"
                         : fmt::format("{} ({})", status.error_message(),
                                       static_cast<int>(status.error_code()));
    wake_.signal();
    finished_.notify_all();
  }

 private:
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::AgentLink::Stub> stub_;
  grpc::ClientContext context_;
  pipeline::EventFd& wake_;
  v1::BatchAck incoming_;  // the pending read's target (gRPC's threads only)

  std::mutex mutex_;
  std::condition_variable finished_;
  std::deque<v1::MappingBatch> outgoing_;  // front: the write in flight while writing_
  bool writing_ = false;
  bool up_ = false;
  bool done_ = false;
  std::string error_;
  std::vector<v1::BatchAck> acks_;
};

GrpcAgent::GrpcAgent(GrpcAgentConfig config, pipeline::EventFd wake)
    : config_(std::move(config)), wake_(std::move(wake)) {}

GrpcAgent::~GrpcAgent() {
  if (link_) link_->cancel_and_wait();
}

Result<std::unique_ptr<GrpcAgent>> GrpcAgent::create(GrpcAgentConfig config) {
  auto path = unix_socket_path(config.target);
  if (!path) return tl::unexpected(path.error());
  struct stat st {};
  if (stat(path->c_str(), &st) != 0)
    return fail("--agent ", config.target, ": ", std::strerror(errno),
                " (is dnsproxy-agent running with --listen ", config.target, "?)");
  if (!S_ISSOCK(st.st_mode))
    return fail("--agent ", config.target, ": ", *path, " is not a socket");
  auto wake = pipeline::EventFd::create();
  if (!wake) return tl::unexpected(wake.error());
  auto agent = std::unique_ptr<GrpcAgent>(new GrpcAgent(std::move(config), std::move(*wake)));
  // gRPC starts its threads here; they inherit this thread's signal mask. With every signal
  // blocked they never take the process's signals (SIGTERM's default action would kill the
  // daemon before its signalfd saw it); the caller's mask is restored after.
  sigset_t all;
  sigset_t previous;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &previous);
  agent->link_ = std::make_unique<Link>(agent->config_.target, agent->wake_);
  pthread_sigmask(SIG_SETMASK, &previous, nullptr);
  return agent;
}

void GrpcAgent::submit(pipeline::PlumbBatch batch) {
  if (state_ == LinkState::kDown) {
    counters_.add(GrpcAgentCounter::kBatchesRefused);
    refused_.push_back(
        {.batch_id = batch.id, .plumbed = false, .error = "agent link down: " + down_reason_});
    wake_.signal();
    return;
  }
  v1::MappingBatch message = encode_batch(batch, pipeline::Clock::now(), config_.identity_of);
  std::vector<std::string> names;
  names.reserve(message.mappings_size());
  for (const v1::Mapping& mapping : message.mappings())
    names.push_back("endpoint " + std::to_string(mapping.endpoint_id()) + " " + mapping.name());
  in_flight_.emplace(batch.id, std::move(names));
  counters_.add(GrpcAgentCounter::kBatchesSent);
  counters_.add(GrpcAgentCounter::kMappingsSent, static_cast<uint64_t>(message.mappings_size()));
  link_->send(std::move(message));
}

void GrpcAgent::poll(pipeline::Clock::time_point, std::vector<BatchResult>& results) {
  wake_.drain();
  Link::Events events;
  link_->take(events);
  if (events.up && state_ == LinkState::kConnecting) {
    state_ = LinkState::kUp;
    counters_.add(GrpcAgentCounter::kLinkUp);
    spdlog::info("agent link {}: up", config_.target);
  }
  for (const v1::BatchAck& ack : events.acks) {
    auto sent = in_flight_.find(ack.batch_id());
    if (sent == in_flight_.end()) {
      counters_.add(GrpcAgentCounter::kUnknownAcks);
      continue;
    }
    BatchResult result = decode_ack(ack, sent->second);
    counters_.add(result.plumbed ? GrpcAgentCounter::kBatchesAcked
                                 : GrpcAgentCounter::kBatchesNacked);
    in_flight_.erase(sent);
    results.push_back(std::move(result));
  }
  if (events.done && state_ != LinkState::kDown) {
    state_ = LinkState::kDown;
    down_reason_ = events.error;
    counters_.add(GrpcAgentCounter::kLinkDown);
    spdlog::warn(
        "agent link {}: down: {}; names plumbed before are still released at once, new ones "
        "wait for --max-delay ({} batch(es) unanswered)",
        config_.target, down_reason_, in_flight_.size());
    for (auto& [id, names] : in_flight_) {
      counters_.add(GrpcAgentCounter::kBatchesLost);
      results.push_back(
          {.batch_id = id, .plumbed = false, .error = "agent link down: " + down_reason_});
    }
    in_flight_.clear();
  }
  for (BatchResult& result : refused_) results.push_back(std::move(result));
  refused_.clear();
}

}  // namespace dnsproxy::datapath::agent
