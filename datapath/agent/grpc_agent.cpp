#include "datapath/agent/grpc_agent.h"

#include <pthread.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <random>
#include <variant>

#include <grpcpp/create_channel_posix.h>
#include <grpcpp/grpcpp.h>
#include <spdlog/spdlog.h>

#include "datapath/pipeline/channel.h"
#include "dnsproxy/v1/agent.grpc.pb.h"

namespace dnsproxy::datapath::agent {
namespace {

// HTTP/2 keepalive on every connection: a ping after 2 s without traffic, the connection dropped
// when it is not answered within 1 s. A crashed agent shows at once (EOF on the unix socket);
// this finds a hung one (stopped, wedged) within 3 s. The agent must accept pings this often
// (dnsproxy-agent sets GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS to match).
constexpr int kKeepaliveTimeMs = 2000;
constexpr int kKeepaliveTimeoutMs = 1000;

// gRPC starts threads as it needs them, and they inherit the signal mask of the thread that made
// them. With every signal blocked they never take the process's signals (SIGTERM's default
// action would kill the daemon before its signalfd saw it); the caller's mask is restored after.
template <class F>
void with_signals_blocked(F&& f) {
  sigset_t all;
  sigset_t previous;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &previous);
  f();
  pthread_sigmask(SIG_SETMASK, &previous, nullptr);
}

std::string describe(const grpc::Status& status) {
  if (status.ok()) return "the agent closed the stream";
  return fmt::format("{} (gRPC status {})", status.error_message(),
                     static_cast<int>(status.error_code()));
}

}  // namespace

struct GrpcAgent::Event {
  enum class Kind : uint8_t { kUp, kMessage, kReadClosed, kDone };
  Kind kind = Kind::kUp;
  uint64_t stream = 0;
  std::variant<std::monostate, v1::BatchAck, v1::PolicyResponse> message;  // kMessage
  std::string error;  // kDone: why the stream ended
};

// The reactions' way to the control thread. Everything is posted under the mutex, the eventfd
// rung inside it: once the destructor saw `live` reach 0, no reaction touches the mailbox again.
struct GrpcAgent::Mailbox {
  explicit Mailbox(pipeline::EventFd eventfd) : wake(std::move(eventfd)) {}

  void post(Event event) {
    std::lock_guard lock(mutex);
    events.push_back(std::move(event));
    wake.signal();
  }
  // A stream's last reaction (OnDone).
  void finish(Event event) {
    std::lock_guard lock(mutex);
    events.push_back(std::move(event));
    --live;
    wake.signal();
    finished.notify_all();
  }
  std::vector<Event> take() {
    std::lock_guard lock(mutex);
    return std::exchange(events, {});
  }

  pipeline::EventFd wake;
  std::mutex mutex;
  std::condition_variable finished;
  size_t live = 0;  // streams started whose OnDone has not run
  std::vector<Event> events;
};

// What the control thread does with any stream: the reactor types differ only in their messages.
class GrpcAgent::Stream {
 public:
  explicit Stream(uint64_t id) : id_(id) {}
  virtual ~Stream() = default;
  [[nodiscard]] uint64_t id() const noexcept { return id_; }
  // Control thread, once or more: no more writes; gRPC may finish the stream now.
  void release() {
    if (!std::exchange(released_, true)) remove_hold();
  }
  // Control thread, until this object is destroyed: ends the stream if it still runs.
  virtual void cancel() = 0;

 private:
  virtual void remove_hold() = 0;
  const uint64_t id_;
  bool released_ = false;
};

// One stream of a connection (Mappings or Policy). A hold taken at the start keeps gRPC from
// finishing the stream (OnDone) until release(), so the control thread may write to it until
// then. One read is always pending (the next answer); at most one write is in flight (gRPC
// allows one), the rest queued behind it. The control thread destroys it once its OnDone was
// posted.
template <class Out, class In>
class GrpcAgent::Reactor final : public GrpcAgent::Stream, public grpc::ClientBidiReactor<Out, In> {
 public:
  // `open` starts the RPC on the stub: stub.async()->Mappings(context, reactor), or Policy.
  using Open = void (*)(v1::AgentLink::Stub&, grpc::ClientContext*, Reactor*);

  Reactor(uint64_t id, std::shared_ptr<grpc::Channel> channel, Mailbox& mailbox, Open open)
      : Stream(id),
        channel_(std::move(channel)),
        stub_(v1::AgentLink::NewStub(channel_)),
        mailbox_(mailbox) {
    open(*stub_, &context_, this);
    this->AddHold();
    this->StartRead(&incoming_);
    this->StartCall();
  }

  // Control thread, before release().
  void send(Out message) {
    const Out* next = nullptr;
    {
      std::lock_guard lock(mutex_);
      outgoing_.push_back(std::move(message));
      if (!writing_) {
        writing_ = true;
        next = &outgoing_.front();  // deque: stays put while others are pushed behind it
      }
    }
    if (next) this->StartWrite(next);
  }
  void cancel() override { context_.TryCancel(); }

  void OnReadInitialMetadataDone(bool ok) override {
    if (ok) mailbox_.post({.kind = Event::Kind::kUp, .stream = id(), .message = {}, .error = {}});
  }

  void OnReadDone(bool ok) override {
    if (!ok) {  // no more answers: the stream ended or broke; OnDone says why, after release()
      mailbox_.post({.kind = Event::Kind::kReadClosed, .stream = id(), .message = {}, .error = {}});
      return;
    }
    mailbox_.post({.kind = Event::Kind::kMessage,
                   .stream = id(),
                   .message = std::move(incoming_),
                   .error = {}});
    incoming_.Clear();
    this->StartRead(&incoming_);
  }

  void OnWriteDone(bool ok) override {
    const Out* next = nullptr;
    {
      std::lock_guard lock(mutex_);
      outgoing_.pop_front();
      if (ok && !outgoing_.empty())
        next = &outgoing_.front();
      else
        writing_ = false;  // drained, or the stream broke (its end comes through OnDone)
    }
    if (next) this->StartWrite(next);
  }

  void OnDone(const grpc::Status& status) override {
    mailbox_.finish(
        {.kind = Event::Kind::kDone, .stream = id(), .message = {}, .error = describe(status)});
  }

 private:
  void remove_hold() override { this->RemoveHold(); }

  std::shared_ptr<grpc::Channel> channel_;  // this connection's, shared by its two streams
  std::unique_ptr<v1::AgentLink::Stub> stub_;
  grpc::ClientContext context_;
  Mailbox& mailbox_;
  In incoming_;  // the pending read's target (gRPC's threads only)

  std::mutex mutex_;
  std::deque<Out> outgoing_;  // front: the write in flight while writing_
  bool writing_ = false;
};

GrpcAgent::GrpcAgent(GrpcAgentConfig config, std::string path, Fd epoll, Fd timer,
                     std::unique_ptr<Mailbox> mailbox)
    : config_(std::move(config)),
      path_(std::move(path)),
      epoll_(std::move(epoll)),
      timer_(std::move(timer)),
      mailbox_(std::move(mailbox)),
      backoff_(config_.backoff, std::random_device{}()),
      held_(std::move(config_.policy)) {}

GrpcAgent::~GrpcAgent() {
  for (const auto& stream : streams_) {
    stream->cancel();
    stream->release();
  }
  std::unique_lock lock(mailbox_->mutex);
  mailbox_->finished.wait(lock, [this] { return mailbox_->live == 0; });
}

Result<std::unique_ptr<GrpcAgent>> GrpcAgent::create(GrpcAgentConfig config) {
  auto path = unix_socket_path(config.target);
  if (!path) return tl::unexpected(path.error());
  auto wake = pipeline::EventFd::create();
  if (!wake) return tl::unexpected(wake.error());
  Fd timer(timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC));
  if (timer.get() < 0) return fail("agent link: timerfd_create: ", std::strerror(errno));
  Fd epoll(epoll_create1(EPOLL_CLOEXEC));
  if (epoll.get() < 0) return fail("agent link: epoll_create1: ", std::strerror(errno));
  for (const int fd : {wake->fd(), timer.get()}) {
    epoll_event event{};
    event.events = EPOLLIN;
    event.data.fd = fd;
    if (epoll_ctl(epoll.get(), EPOLL_CTL_ADD, fd, &event) != 0)
      return fail("agent link: epoll_ctl: ", std::strerror(errno));
  }
  auto agent = std::unique_ptr<GrpcAgent>(
      new GrpcAgent(std::move(config), std::move(*path), std::move(epoll), std::move(timer),
                    std::make_unique<Mailbox>(std::move(*wake))));
  agent->attempt();
  return agent;
}

void GrpcAgent::attempt() {
  counters_.add(GrpcAgentCounter::kConnectAttempts);
  auto socket = connect_unix(path_);
  if (!socket) {
    counters_.add(GrpcAgentCounter::kConnectFailed);
    retry_later(socket.error().message);
    return;
  }
  auto peer = peer_credentials(socket->get());
  if (!peer) {
    counters_.add(GrpcAgentCounter::kConnectFailed);
    retry_later(peer.error().message);
    return;
  }
  if (peer->uid != config_.agent_uid) {
    counters_.add(GrpcAgentCounter::kPeerRefused);
    retry_later(
        fmt::format("refused the peer on {}: it runs as uid {} (pid {}), not --agent-uid {}", path_,
                    peer->uid, peer->pid, config_.agent_uid));
    return;
  }
  start_stream(std::move(*socket), *peer);
}

void GrpcAgent::start_stream(Fd socket, const PeerCredentials& peer) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, kKeepaliveTimeMs);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, kKeepaliveTimeoutMs);
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  args.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);  // an idle link keeps being pinged
  const bool with_policy = static_cast<bool>(config_.install);
  {
    std::lock_guard lock(mailbox_->mutex);
    mailbox_->live += with_policy ? 2 : 1;
  }
  with_signals_blocked([&] {
    // gRPC owns the socket from here on, and closes it.
    auto channel = grpc::CreateCustomInsecureChannelFromFd(config_.target, socket.release(), args);
    auto mappings = std::make_unique<MappingsStream>(
        next_stream_++, channel, *mailbox_,
        [](v1::AgentLink::Stub& stub, grpc::ClientContext* context, MappingsStream* reactor) {
          stub.async()->Mappings(context, reactor);
        });
    current_ = mappings.get();
    streams_.push_back(std::move(mappings));
    if (!with_policy) return;
    auto policy = std::make_unique<PolicyStream>(
        next_stream_++, channel, *mailbox_,
        [](v1::AgentLink::Stub& stub, grpc::ClientContext* context, PolicyStream* reactor) {
          stub.async()->Policy(context, reactor);
        });
    policy_ = policy.get();
    streams_.push_back(std::move(policy));
  });
  link_stream_ = current_->id();
  policy_stream_ = policy_ ? policy_->id() : 0;
  agent_pid_ = peer.pid;
  if (!policy_) return;
  // What the proxy holds, so the agent sends only the difference.
  v1::PolicyRequest first;
  for (auto& [name, version] : held_.versions())
    (*first.mutable_initial_resource_versions())[name] = version;
  policy_->send(std::move(first));
}

void GrpcAgent::submit(pipeline::PlumbBatch batch) {
  const uint64_t id = batch.id;
  kept_mappings_ += batch.names.size();
  Kept& kept = kept_.insert_or_assign(id, Kept{std::move(batch), false}).first->second;
  if (sending())
    send(kept);
  else
    counters_.add(GrpcAgentCounter::kBatchesKept);
  drop_oldest_beyond_bound();
  counters_.set(GrpcAgentCounter::kBatchesWaiting, kept_.size());
}

void GrpcAgent::poll(pipeline::Clock::time_point now, std::vector<BatchResult>& results) {
  mailbox_->wake.drain();
  for (Event& event : mailbox_->take()) handle(event, now, results);
  uint64_t expirations = 0;
  if (read(timer_.get(), &expirations, sizeof expirations) > 0 && link_stream_ == 0) attempt();
  for (BatchResult& result : dropped_) results.push_back(std::move(result));
  dropped_.clear();
  counters_.set(GrpcAgentCounter::kBatchesWaiting, kept_.size());
}

void GrpcAgent::handle(Event& event, pipeline::Clock::time_point now,
                       std::vector<BatchResult>& results) {
  if (event.kind == Event::Kind::kDone) {
    std::erase_if(streams_, [&](const auto& stream) { return stream->id() == event.stream; });
    if (event.stream == link_stream_) on_stream_over(event.error, now);
    if (event.stream == policy_stream_) {
      // One connection, one link: the Mappings stream goes too, and the link reconnects.
      policy_stream_ = 0;
      spdlog::warn("agent link {}: the policy stream ended: {}", config_.target, event.error);
      end_connection();
    }
    return;
  }
  if (event.stream == policy_stream_) {
    if (auto* response = std::get_if<v1::PolicyResponse>(&event.message)) on_policy(*response);
    if (event.kind == Event::Kind::kReadClosed) {
      policy_->release();
      policy_ = nullptr;
    }
    return;
  }
  if (event.stream != link_stream_) return;  // an earlier stream's, left behind
  switch (event.kind) {
    case Event::Kind::kUp:
      on_up(now);
      break;
    case Event::Kind::kMessage:
      on_ack(std::get<v1::BatchAck>(event.message), results);
      break;
    case Event::Kind::kReadClosed:
      // Nothing more will be answered on it: stop writing, let gRPC finish it (OnDone).
      if (current_) current_->release();
      current_ = nullptr;
      break;
    case Event::Kind::kDone:
      break;
  }
}

// Cancels what is left of the connection's streams; their OnDone follow.
void GrpcAgent::end_connection() {
  for (const auto& stream : streams_)
    if (stream->id() == link_stream_ || stream->id() == policy_stream_) stream->cancel();
}

// Applied whole or not at all: the state and the policy in force change only when the response
// is valid and installed; either way the agent hears which (ACK, or NACK with the reason).
void GrpcAgent::on_policy(const v1::PolicyResponse& response) {
  counters_.add(GrpcAgentCounter::kPolicyResourcesReceived,
                static_cast<uint64_t>(response.resources_size()));
  counters_.add(GrpcAgentCounter::kPolicyResourcesRemoved,
                static_cast<uint64_t>(response.removed_resources_size()));
  auto next = held_.applied(response);
  Result<void> installed = next ? config_.install(*next) : tl::unexpected(next.error());
  v1::PolicyRequest answer;
  answer.set_response_nonce(response.nonce());
  if (installed) {
    counters_.add(GrpcAgentCounter::kPolicyUpdatesAcked);
    spdlog::info(
        "agent link {}: policy version {} in force: {} resource(s) received, {} removed, {} "
        "held",
        config_.target, next->version(), response.resources_size(),
        response.removed_resources_size(), next->resource_count());
    held_ = std::move(*next);
  } else {
    counters_.add(GrpcAgentCounter::kPolicyUpdatesNacked);
    last_nack_ = installed.error().message;
    spdlog::error("agent link {}: policy update {} refused (NACK), version {} stays in force: {}",
                  config_.target, response.nonce(), held_.version(), last_nack_);
    answer.mutable_error_detail()->set_code(static_cast<int>(grpc::StatusCode::INVALID_ARGUMENT));
    answer.mutable_error_detail()->set_message(last_nack_);
  }
  if (policy_) policy_->send(std::move(answer));
}

void GrpcAgent::on_up(pipeline::Clock::time_point now) {
  const bool again = state_ == LinkState::kDown;
  state_ = LinkState::kUp;
  counters_.add(GrpcAgentCounter::kLinkUp);
  backoff_.reset();
  last_logged_failure_.clear();
  const std::string kept =
      kept_.empty() ? std::string() : fmt::format("; sending the {} batch(es) kept", kept_.size());
  if (again)
    spdlog::info("agent link {}: up again after {} ms (agent pid {}){}", config_.target,
                 std::chrono::duration_cast<std::chrono::milliseconds>(now - down_since_).count(),
                 agent_pid_, kept);
  else
    spdlog::info("agent link {}: up (agent pid {}){}", config_.target, agent_pid_, kept);
  for (auto& [id, batch] : kept_) send(batch);
}

void GrpcAgent::on_ack(const v1::BatchAck& ack, std::vector<BatchResult>& results) {
  auto found = kept_.find(ack.batch_id());
  if (found == kept_.end() || !found->second.in_flight) {
    counters_.add(GrpcAgentCounter::kUnknownAcks);
    return;
  }
  BatchResult result = decode_ack(ack, found->second.batch);
  counters_.add(result.plumbed ? GrpcAgentCounter::kBatchesAcked
                               : GrpcAgentCounter::kBatchesNacked);
  kept_mappings_ -= found->second.batch.names.size();
  kept_.erase(found);
  results.push_back(std::move(result));
}

void GrpcAgent::on_stream_over(const std::string& error, pipeline::Clock::time_point now) {
  end_connection();  // the Policy stream, if it still runs: no more writes to it either
  if (policy_) policy_->release();
  policy_ = nullptr;
  link_stream_ = 0;
  policy_stream_ = 0;
  uint64_t interrupted = 0;
  for (auto& [id, kept] : kept_) interrupted += std::exchange(kept.in_flight, false) ? 1 : 0;
  counters_.add(GrpcAgentCounter::kBatchesInterrupted, interrupted);
  if (state_ != LinkState::kUp) {
    counters_.add(GrpcAgentCounter::kStreamsFailed);
    retry_later(error);
    return;
  }
  state_ = LinkState::kDown;
  down_since_ = now;
  counters_.add(GrpcAgentCounter::kLinkDown);
  spdlog::warn(
      "agent link {}: down: {}; names plumbed before are still released at once, new ones wait "
      "for --max-delay; {} unanswered batch(es) kept for the next connection; reconnecting",
      config_.target, error, kept_.size());
  last_logged_failure_ = error;  // said just now
  retry_later(error);
}

void GrpcAgent::send(Kept& kept) {
  v1::MappingBatch message = encode_batch(kept.batch, pipeline::Clock::now(), config_.identity_of);
  counters_.add(GrpcAgentCounter::kBatchesSent);
  counters_.add(GrpcAgentCounter::kMappingsSent, static_cast<uint64_t>(message.mappings_size()));
  kept.in_flight = true;
  current_->send(std::move(message));
}

bool GrpcAgent::sending() const noexcept {
  return current_ != nullptr && state_ == LinkState::kUp;
}

// The newest batch always stays, so a bound below one batch still sends every batch once.
void GrpcAgent::drop_oldest_beyond_bound() {
  uint64_t batches = 0;
  uint64_t mappings = 0;
  while (kept_mappings_ > config_.max_kept_mappings && kept_.size() > 1) {
    auto oldest = kept_.begin();
    const size_t names = oldest->second.batch.names.size();
    kept_mappings_ -= names;
    mappings += names;
    ++batches;
    dropped_.push_back({.batch_id = oldest->first,
                        .plumbed = false,
                        .error = fmt::format("agent link: dropped unanswered, beyond {} kept "
                                             "mapping(s)",
                                             config_.max_kept_mappings)});
    kept_.erase(oldest);
  }
  if (batches == 0) return;
  counters_.add(GrpcAgentCounter::kBatchesDropped, batches);
  counters_.add(GrpcAgentCounter::kMappingsDropped, mappings);
  mailbox_->wake.signal();  // the next poll() reports them
}

// Logs a reason once per outage (a new one again), and arms the timer for the next attempt.
void GrpcAgent::retry_later(const std::string& why) {
  if (why != last_logged_failure_) {
    last_logged_failure_ = why;
    spdlog::warn(
        "agent link {}: {}: {}; retrying (backoff {} ms doubling to {} ms); meanwhile names "
        "plumbed before are released at once, new ones wait for --max-delay",
        config_.target, state_ == LinkState::kConnecting ? "not up yet" : "still down", why,
        config_.backoff.initial.count(), config_.backoff.max.count());
  }
  const auto delay = backoff_.next();
  itimerspec spec{};
  spec.it_value.tv_sec = delay.count() / 1000;
  spec.it_value.tv_nsec = (delay.count() % 1000) * 1'000'000;
  (void)timerfd_settime(timer_.get(), 0, &spec, nullptr);
}

}  // namespace dnsproxy::datapath::agent
