#include "datapath/daemon/daemon.h"

#include <net/if.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include <bpf/libbpf.h>
#include <systemd/sd-daemon.h>
#include <xdp/libxdp.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdarg>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include "common/capabilities.h"
#include "datapath/agent/embedded_agent.h"
#include "datapath/agent/grpc_agent.h"
#include "datapath/daemon/admin.h"
#include "datapath/daemon/config_file.h"
#include "datapath/daemon/control_loop.h"
#include "datapath/daemon/logging.h"
#include "datapath/daemon/metrics.h"
#include "datapath/daemon/stats.h"
#include "datapath/daemon/watchdog.h"
#include "datapath/daemon/worker_plan.h"
#include "datapath/kernel_path.h"
#include "datapath/l3_guard.h"
#include "datapath/package.h"
#include "datapath/pipeline/coordinator.h"
#include "datapath/pipeline/policy_handler.h"
#include "datapath/steer_program.h"
#include "datapath/worker.h"
#include "dns/name_text.h"
#include "policy/policy_file.h"
#include "xsk/packet_io.h"

namespace dnsproxy::daemon {
namespace {

// The tail of a rate-limited message that follows suppressed ones.
std::string suppressed(const LogLimiter::Decision& decision) {
  return decision.suppressed_before == 0
             ? std::string()
             : fmt::format(" ({} similar message(s) suppressed)", decision.suppressed_before);
}

// One worker thread's state; the control thread reads its counters while it runs.
template <class Handler>
struct WorkerSlot {
  unsigned cpu = 0;
  std::unique_ptr<xsk::XskPacketIo> io;
  std::unique_ptr<Handler> handler;  // from the mode, one per worker
  datapath::WorkerCounters<typename Handler::DropReason> counters;
  std::thread thread;
};
template <class Handler>
using Workers = std::vector<std::unique_ptr<WorkerSlot<Handler>>>;

// What runs in the workers and what the control loop adds, per mode. A mode makes one handler per
// worker; attach() plugs its BPF pieces into dns_steer before the sockets exist and detach()
// takes them out again before dns_steer goes; start() registers its control-plane fds and
// timers; collect*() add its counters to the snapshot.
struct ForwardAllMode {
  using Handler = datapath::ForwardAllHandler;
  static constexpr std::string_view kName = "forward_all";
  static constexpr int kIdleTimeoutMs = 100;
  Result<void> attach(datapath::SteerProgram&) { return {}; }
  void detach() {}
  Result<std::unique_ptr<Handler>> make_handler(size_t) { return std::make_unique<Handler>(); }
  Result<void> start(ControlLoop&) { return {}; }
  void collect_worker(size_t, WorkerSnapshot&) const {}
  void collect(Snapshot&) const {}
  // The admin socket's mode commands (`cache`, `policy`) and the mode's part of `status`.
  nlohmann::json admin(std::string_view command) const {
    return {{"error", fmt::format("'{}': forward-all mode has no policy", command)}};
  }
  nlohmann::json status() const { return nullptr; }
  void reload_policy() {}
};

// With --agent: what became of the persisted policy (--policy-state).
enum class PolicyStateCounter : uint8_t {
  kWritten,      // accepted policies written to the state file
  kWriteFailed,  // ... that could not be (the policy is in force all the same)
  kCorrupt,      // a state file at start that could not be read or parsed (empty policy instead)
  kCount,
};
constexpr std::array<std::string_view, 3> counter_names(PolicyStateCounter) {
  return {"policy_state_written", "policy_state_write_failed", "policy_state_corrupt"};
}

// `dnsproxyctl policy`: the rules in force, as the policy file (or the agent) stated them.
nlohmann::json policy_json(const policy::PolicyFile& file, const std::string& path) {
  const auto patterns = [](const std::vector<policy::NamePattern>& list) {
    nlohmann::json out = nlohmann::json::array();
    for (const policy::NamePattern& pattern : list) out.push_back(pattern.text);
    return out;
  };
  nlohmann::json endpoints = nlohmann::json::array();
  for (const policy::EndpointPolicy& endpoint : file.spec.endpoints) {
    nlohmann::json rules = nlohmann::json::array();
    for (const policy::DnsRule& rule : endpoint.dns_rules)
      rules.push_back({{"port", rule.port},
                       {"protocol", std::string(policy::to_string(rule.protocol))},
                       {"servers", rule.servers.any ? nlohmann::json("any")
                                                    : nlohmann::json(rule.servers.identities)},
                       {"names", patterns(rule.patterns)}});
    endpoints.push_back({{"endpoint", endpoint.endpoint_id},
                         {"dns", std::move(rules)},
                         {"to_fqdns", patterns(endpoint.to_fqdns)}});
  }
  const auto action = [](policy::DefaultAction a) {
    return a == policy::DefaultAction::kAllow ? "allow" : "refuse";
  };
  return {{"source", path},
          {"defaults",
           {{"unknown_source", action(file.spec.defaults.unknown_source)},
            {"port_without_rules", action(file.spec.defaults.port_without_rules)}}},
          {"endpoint_addresses", file.endpoints.size()},
          {"ipcache_prefixes", file.ipcache.size()},
          {"endpoints", std::move(endpoints)}};
}

// --policy FILE: the policy pipeline (datapath/pipeline/) with the embedded agent
// (datapath/agent/), or with --agent unix:PATH the gRPC link to an external agent that owns the
// pinned maps (dnsproxy-agent; this side then opens its pins). The control thread owns the snapshot
// store, the forwarded-query tracker every worker shares, one Channel per worker, the Coordinator
// that drains them into plumbing batches, the agent that plumbs them, the mirror of the agent's
// endpoint and ipcache maps, and l3_guard.
//
//   worker notices -> Coordinator -> batch (cut at batch_max or batch_delay) -> agent
//   agent result   -> Coordinator (PlumbedSet republished) -> ticket ACKs -> worker rings
class PolicyMode {
 public:
  using Handler = datapath::pipeline::PolicyHandler;
  static constexpr std::string_view kName = "policy";
  // A parked response waits for its ACK or its max delay; an idle worker wakes this often to
  // time it out (an ACK wakes it through the Channel's eventfd at once).
  static constexpr int kIdleTimeoutMs = 5;

  static Setup<std::unique_ptr<PolicyMode>> create(const Config& config, size_t workers) {
    auto mode = std::unique_ptr<PolicyMode>(new PolicyMode(config));
    if (config.agent.empty()) {
      auto file = policy::apply_policy_file(config.policy_file, mode->store_);
      if (!file) return failure(kExitBadConfig, "--policy: " + file.error().message);
      mode->file_ = std::move(*file);
      mode->policy_version_ = 1;
    }
    std::random_device random;
    auto tracker =
        datapath::pipeline::QueryTracker::create({}, uint64_t{random()} << 32 | random());
    if (!tracker) return failure(kExitBadConfig, tracker.error().message);
    mode->tracker_ = std::move(*tracker);
    const size_t ack_ring = std::max<size_t>(4096, config.max_parked);
    for (size_t w = 0; w < workers; ++w) {
      auto channel =
          datapath::pipeline::Channel::create({.notice_ring = 4096, .ack_ring = ack_ring});
      if (!channel) return failure(kExitBadConfig, channel.error().message);
      mode->channels_.push_back(std::move(*channel));
      mode->counters_.push_back(std::make_unique<CounterSet<datapath::pipeline::PolicyCounter>>());
    }
    mode->coordinator_ = std::make_unique<datapath::pipeline::Coordinator>(
        datapath::pipeline::CoordinatorConfig{
            .batch_max = config.plumb_batch_max,
            .batch_delay = std::chrono::microseconds(config.plumb_batch_delay),
            .cache = mode->file_.fqdn_limits},
        mode->store_, workers);
    if (config.agent.empty()) {
      auto agent = datapath::agent::EmbeddedAgent::create(
          {.plumb_delay = std::chrono::milliseconds(config.agent_plumb_delay)});
      if (!agent) return failure(kExitBadConfig, "embedded agent: " + agent.error().message);
      if (auto loaded = (*agent)->load_policy(mode->file_); !loaded)
        return failure(kExitBadConfig, "embedded agent: " + loaded.error().message);
      mode->embedded_ = agent->get();
      mode->agent_ = std::move(*agent);
    } else {
      PolicyMode& self = *mode;
      mode->source_ = "none";
      auto agent = datapath::agent::GrpcAgent::create(
          {.target = config.agent,
           // Each mapping names the identity of the endpoint that asked, as the agent gave it.
           .identity_of =
               [&self](uint32_t endpoint) { return self.grpc_->policy().identity_of(endpoint); },
           .agent_uid = config.agent_uid,
           .policy = mode->load_persisted_policy(),
           .install =
               [&self](const datapath::agent::PolicyState& state) {
                 return self.install_agent_policy(state);
               }});
      if (!agent) return failure(kExitBadConfig, agent.error().message);
      mode->grpc_ = agent->get();
      mode->agent_ = std::move(*agent);
    }
    mode->handler_config_ = datapath::pipeline::PolicyHandlerConfig{
        .deny_rcode = config.deny_rcode == "nxdomain" ? dns::ErrorAnswer::kNxDomain
                                                      : dns::ErrorAnswer::kRefused,
        .max_delay = std::chrono::milliseconds(config.max_delay),
        .servfail_at_max_delay = config.on_max_delay == "servfail",
        .release_before_plumb = config.release_before_plumb,
        .max_parked = config.max_parked};
    if (config.agent.empty())
      spdlog::info(
          "policy {}: {} endpoint(s) with rules, {} endpoint address(es), {} ipcache "
          "prefix(es); embedded agent, plumb delay {} ms",
          config.policy_file, mode->file_.rules->endpoint_count(), mode->file_.endpoints.size(),
          mode->file_.ipcache.size(), config.agent_plumb_delay);
    else
      spdlog::info("external agent on {} (its maps pinned in {}): it sends the policy",
                   config.agent, config.pin_dir);
    return mode;
  }

  // The agent's maps pinned beside dns_steer's (the embedded agent pins its own; an external
  // agent's pins are opened), the policed sources written, l3_guard chained in, and the mirror's
  // first read of the pinned maps done: the policy is in force.
  Result<void> attach(datapath::SteerProgram& steer) {
    steer_ = &steer;
    int allow_fd = -1;
    if (embedded_) {
      if (auto pinned = embedded_->pin(steer.pin_dir()); !pinned) return pinned;
      allow_fd = embedded_->allow_map().fd();
    } else {
      auto allow = datapath::agent::AllowMap::open_pinned(
          datapath::agent::pinned_allow_map(steer.pin_dir()));
      if (!allow)
        return fail(allow.error().message,
                    " (the external agent's; does dnsproxy-agent run with --pin-dir ",
                    steer.pin_dir(), "?)");
      external_allow_ = std::move(*allow);
      allow_fd = external_allow_->fd();
      inherit_plumbing(*external_allow_);
    }
    const auto sources = datapath::policed_sources(*file_.rules, file_.endpoints);
    if (auto written = steer.sources().replace(sources); !written) return written;
    if (config_.l3_guard) {
      auto guard = datapath::L3Guard::install(steer, allow_fd, config_.dns_ports);
      if (!guard) return tl::unexpected(guard.error());
      guard_ = std::move(*guard);
    }
    auto maps =
        datapath::PolicyMaps::open_pinned(datapath::agent::pinned_policy_maps(steer.pin_dir()));
    if (!maps)
      return fail(maps.error().message,
                  embedded_ ? ""
                            : " (the external agent's; does dnsproxy-agent run with --pin-dir " +
                                  steer.pin_dir() + "?)");
    mirror_ = std::make_unique<datapath::PolicyMirror>(std::move(*maps), store_);
    if (auto polled = mirror_->poll(); !polled) return tl::unexpected(polled.error());
    spdlog::info("{} policed endpoint address(es); L3 toFQDNs enforcement: {}", sources.size(),
                 guard_ ? "l3_guard (dns_steer's next program)" : "off (--no-l3-guard)");
    return {};
  }

  // SIGHUP: the policy file again. Parsed and compiled whole before anything changes, so a bad
  // file leaves the policy in force; then the rules, the embedded agent's endpoint and ipcache
  // maps (the mirror follows within a poll; an external agent's maps are its own to change) and
  // the policed sources. The FQDN cache's limits and the
  // mappings learned stay as they are.
  void reload_policy() {
    if (grpc_) {
      spdlog::info("SIGHUP: the policy is the agent's (it pushes its changes): nothing to reload");
      return;
    }
    auto file = policy::apply_policy_file(config_.policy_file, store_);
    if (!file) {
      ++policy_reloads_failed_;
      spdlog::error("SIGHUP: policy {} not reloaded, the policy in force stays: {}",
                    config_.policy_file, file.error().message);
      return;
    }
    file_ = std::move(*file);
    ++policy_version_;
    if (embedded_)
      if (auto loaded = embedded_->load_policy(file_); !loaded)
        spdlog::error("SIGHUP: embedded agent: {}", loaded.error().message);
    if (auto written =
            steer_->sources().replace(datapath::policed_sources(*file_.rules, file_.endpoints));
        !written)
      spdlog::error("SIGHUP: policed sources: {}", written.error().message);
    spdlog::info("SIGHUP: policy {} reloaded (version {}): {} endpoint(s) with rules",
                 config_.policy_file, policy_version_, file_.rules->endpoint_count());
  }

  // After the workers stopped: l3_guard out of dns_steer's chain, the embedded agent's pins
  // removed (an external agent's stay: they are its state), the link closed.
  void detach() {
    guard_.reset();
    mirror_.reset();
    embedded_ = nullptr;
    grpc_ = nullptr;
    agent_.reset();
    external_allow_.reset();
  }

  Result<std::unique_ptr<Handler>> make_handler(size_t w) {
    auto reader = domain_.register_reader();
    if (!reader) return tl::unexpected(reader.error());
    auto handler = std::make_unique<Handler>(handler_config_, store_, std::move(*reader), *tracker_,
                                             *channels_[w], *counters_[w]);
    handlers_.push_back(handler.get());
    return handler;
  }

  Result<void> start(ControlLoop& loop) {
    auto deadline = loop.add_deadline([this] { flush(); });
    if (!deadline) return tl::unexpected(deadline.error());
    batch_deadline_ = *deadline;
    for (size_t w = 0; w < channels_.size(); ++w) {
      datapath::pipeline::Channel& channel = *channels_[w];
      auto added = loop.add_fd(channel.notify.fd(), [this, w, &channel] {
        channel.notify.drain();
        coordinator_->drain(w, channel.notices, std::chrono::steady_clock::now());
        flush();
      });
      if (!added) return added;
    }
    if (auto added = loop.add_fd(agent_->event_fd(), [this] { take_agent_results(); }); !added)
      return added;
    if (auto added = loop.add_timer(datapath::PolicyMirror::kPollInterval, [this] { mirror(); });
        !added)
      return added;
    // Mappings past their TTL leave the cache and the allow map; retired snapshots are freed.
    return loop.add_timer(std::chrono::milliseconds(1000), [this] {
      const auto now = std::chrono::steady_clock::now();
      coordinator_->expire(now);
      agent_->expire(now);
      store_.reclaim();
    });
  }

  void collect_worker(size_t w, WorkerSnapshot& worker) const {
    append_counters(*counters_[w], worker.counters);
  }
  nlohmann::json admin(std::string_view command) const {
    if (command == "cache") return cache_json();
    if (command == "policy") return policy_json(file_, policy_source());
    return {{"error", fmt::format("unknown command '{}'", command)}};
  }
  nlohmann::json status() const {
    return {
        {"agent", agent_ ? nlohmann::json{{"kind", std::string(agent_->kind())},
                                          {"link", std::string(to_string(agent_->link_state()))}}
                         : nlohmann::json(nullptr)},
        {"policy", policy_status()},
        {"l3_guard", guard_ != nullptr}};
  }

  void collect(Snapshot& snapshot) const {
    append_counters(coordinator_->counters(), snapshot.control);
    if (!config_.agent.empty()) append_counters(state_counters_, snapshot.control);
    snapshot.histograms.push_back(
        HistogramSnapshot::of("mapping_to_ack", coordinator_->mapping_to_ack()));
    HistogramSnapshot release{.name = "release_on_ack", .count = 0, .sum_us = 0, .buckets = {}};
    for (const Handler* handler : handlers_) release.add(handler->release_on_ack());
    snapshot.histograms.push_back(release);
    if (!agent_) return;  // detached
    agent_->for_each_counter(
        [&](std::string_view name, uint64_t value) { snapshot.control.emplace_back(name, value); });
    snapshot.agent = AgentSnapshot{.kind = agent_->kind(),
                                   .link = to_string(agent_->link_state()),
                                   .policy_version = policy_version_,
                                   .policy_reloads_failed = policy_reloads_failed_};
    snapshot.policy = PolicySnapshot{
        .source = source_,
        .version = grpc_ ? grpc_->policy().version() : std::to_string(policy_version_),
        .resources = grpc_ ? grpc_->policy().resource_count() : 0,
        .last_nack = grpc_ ? grpc_->last_nack() : std::string()};
    if (guard_)
      if (auto counters = guard_->counters()) snapshot.l3_guard = *counters;
  }

 private:
  explicit PolicyMode(const Config& config) : config_(config) {
    file_.rules = std::make_shared<const policy::RuleSet>();  // the empty policy: all refused
  }

  // With --agent, at start: the last policy accepted, if --policy-state has one, is in force at
  // once; otherwise the empty policy is (every query from an endpoint refused: fail closed), and
  // the agent sends everything on the first connection. Returns what the link then holds.
  datapath::agent::PolicyState load_persisted_policy() {
    const std::string& path = config_.policy_state;
    std::ifstream in(path, std::ios::binary);
    if (path.empty() || (!in && errno == ENOENT)) {
      spdlog::warn(
          "no policy yet{}: every query from an endpoint is refused until the agent sends its "
          "policy",
          path.empty() ? " (no --policy-state)" : fmt::format(" ({} does not exist)", path));
      return {};
    }
    std::string bytes(std::istreambuf_iterator<char>(in), {});
    auto state = in ? datapath::agent::PolicyState::parse(bytes, path)
                    : Result<datapath::agent::PolicyState>(
                          fail(path, ": cannot read: ", std::strerror(errno)));
    if (!state) {
      state_counters_.add(PolicyStateCounter::kCorrupt);
      spdlog::error(
          "--policy-state {}; starting with the empty policy (every query from an endpoint "
          "refused) until the agent sends its policy",
          state.error().message);
      return {};
    }
    put_in_force(*state);
    source_ = "persisted";
    spdlog::warn(
        "serving the last policy from {} (version {}, {} resource(s), {} endpoint(s) with rules) "
        "until the agent answers",
        path, state->version(), state->resource_count(), file_.rules->endpoint_count());
    return std::move(*state);
  }

  // What the external agent plumbed before this start (the allow map outlives both processes):
  // released at once, as before the restart, even while the agent is down.
  void inherit_plumbing(const datapath::agent::AllowMap& allow) {
    std::vector<policy::PlumbedSet::Change> pairs;
    auto walked = allow.for_each(
        [&](uint32_t endpoint_id, const policy::IpAddress& ip, policy::Clock::time_point until) {
          pairs.push_back({.endpoint_id = endpoint_id, .ip = ip, .until = until});
        });
    if (!walked) {
      spdlog::warn("{}; names plumbed before this start wait for the agent again",
                   walked.error().message);
      return;
    }
    const size_t taken = coordinator_->inherit_plumbed(pairs, std::chrono::steady_clock::now());
    spdlog::info("{} plumbed (endpoint, address) pair(s) taken over from the agent's allow map",
                 taken);
  }

  // The agent's accepted policy: in force (rules, policed sources, the identities mappings name),
  // then persisted. Only a failure to put it in force refuses it (NACK); a failed write is
  // logged and counted, and the policy stays in force.
  Result<void> install_agent_policy(const datapath::agent::PolicyState& state) {
    const policy::PolicyFile& next = state.policy();
    // poll(), which calls this, runs only once the mode is attached (steer_ set).
    if (auto written =
            steer_->sources().replace(datapath::policed_sources(*next.rules, next.endpoints));
        !written)
      return fail("policed sources: ", written.error().message);
    put_in_force(state);
    source_ = "agent";
    if (config_.policy_state.empty()) return {};
    std::error_code ignored;  // a missing directory (no StateDirectory=): the write says why
    std::filesystem::create_directories(std::filesystem::path(config_.policy_state).parent_path(),
                                        ignored);
    if (auto saved = write_file_atomically(config_.policy_state, state.serialize(), true); !saved) {
      state_counters_.add(PolicyStateCounter::kWriteFailed);
      spdlog::error("--policy-state: {} (the policy is in force, but a restart will not have it)",
                    saved.error().message);
    } else {
      state_counters_.add(PolicyStateCounter::kWritten);
    }
    return {};
  }

  void put_in_force(const datapath::agent::PolicyState& state) {
    file_.spec = state.policy().spec;
    file_.rules = state.policy().rules;
    file_.endpoints = state.policy().endpoints;
    file_.fqdn_limits = state.policy().fqdn_limits;
    coordinator_->set_cache_limits(file_.fqdn_limits);
    store_.replace({file_.rules, nullptr, nullptr, nullptr});  // the tables are the mirror's
    ++policy_version_;
  }

  // Where the policy in force came from, as `dnsproxyctl policy` names it.
  std::string policy_source() const {
    if (config_.agent.empty()) return config_.policy_file;
    return source_ == "persisted" ? config_.policy_state : config_.agent;
  }
  nlohmann::json policy_status() const {
    nlohmann::json status = {{"source", std::string(source_)}, {"version", policy_version_}};
    if (config_.agent.empty()) {
      status["file"] = config_.policy_file;
    } else if (grpc_) {
      status["agent_version"] = grpc_->policy().version();
      status["last_nack"] = grpc_->last_nack();
    }
    return status;
  }

  // Cuts every batch that is due and hands it to the agent; re-arms for the open one. Then hands
  // each worker the ACKs waiting for it (tickets whose addresses were all plumbed already).
  void flush() {
    const auto now = std::chrono::steady_clock::now();
    while (auto batch = coordinator_->cut(now)) agent_->submit(std::move(*batch));
    if (auto next = coordinator_->next_deadline()) batch_deadline_->arm(*next);
    deliver_acks();
  }

  void take_agent_results() {
    results_.clear();
    const auto now = std::chrono::steady_clock::now();
    agent_->poll(now, results_);
    for (const datapath::agent::BatchResult& result : results_) {
      if (result.plumbed) {
        coordinator_->on_batch_acked(result.batch_id, now);
      } else {
        if (const auto decision = agent_log_.allow(now); decision.log)
          spdlog::warn("agent could not plumb batch {}: {}{}", result.batch_id, result.error,
                       suppressed(decision));
        coordinator_->on_batch_failed(result.batch_id);
      }
    }
    deliver_acks();
  }

  // A full ACK ring keeps the rest for the next call (counted as ack_ring_full); the ring holds
  // at least --max-parked, so it can only be full while the worker is behind.
  void deliver_acks() {
    for (size_t w = 0; w < channels_.size(); ++w) {
      datapath::pipeline::Channel& channel = *channels_[w];
      const size_t delivered = coordinator_->deliver_acks(
          w, [&](const datapath::pipeline::TicketAck& ack) { return channel.acks.push(ack); });
      if (delivered > 0) channel.wake.signal();
    }
  }

  // The learned mappings, soonest expiry first; at most kCacheListed of them.
  static constexpr size_t kCacheListed = 10000;
  nlohmann::json cache_json() const {
    const auto now = std::chrono::steady_clock::now();
    nlohmann::json mappings = nlohmann::json::array();
    const policy::FqdnCache& cache = coordinator_->cache();
    cache.for_each([&](uint32_t endpoint, std::string_view wire, const policy::IpAddress& ip,
                       policy::Clock::time_point expires, bool plumbed) {
      if (mappings.size() == kCacheListed) return;
      std::string name;
      dns::append_name_text(std::span(reinterpret_cast<const uint8_t*>(wire.data()), wire.size()),
                            name);
      mappings.push_back(
          {{"endpoint", endpoint},
           {"name", name},
           {"ip", ip.to_string()},
           {"expires_in_ms",
            std::chrono::duration_cast<std::chrono::milliseconds>(expires - now).count()},
           {"plumbed", plumbed}});
    });
    return {{"count", cache.mapping_count()},
            {"listed", mappings.size()},
            {"mappings", std::move(mappings)}};
  }

  void mirror() {
    if (auto polled = mirror_->poll(); !polled)
      if (const auto decision = mirror_log_.allow(std::chrono::steady_clock::now()); decision.log)
        spdlog::warn("policy mirror: {} (the last good tables stay in force){}",
                     polled.error().message, suppressed(decision));
  }

  const Config& config_;
  policy::QsbrDomain domain_;
  policy::SnapshotStore store_{domain_};
  policy::PolicyFile file_;
  std::unique_ptr<datapath::pipeline::QueryTracker> tracker_;
  std::vector<std::unique_ptr<datapath::pipeline::Channel>> channels_;
  std::vector<std::unique_ptr<CounterSet<datapath::pipeline::PolicyCounter>>> counters_;
  // The workers' handlers (owned by their WorkerSlots, which outlive every collect): their
  // release histograms.
  std::vector<const Handler*> handlers_;
  std::unique_ptr<datapath::pipeline::Coordinator> coordinator_;
  std::unique_ptr<datapath::agent::Agent> agent_;
  datapath::agent::EmbeddedAgent* embedded_ = nullptr;       // agent_, when it is the embedded one
  std::optional<datapath::agent::AllowMap> external_allow_;  // an external agent's, opened
  std::unique_ptr<datapath::L3Guard> guard_;
  std::unique_ptr<datapath::PolicyMirror> mirror_;
  std::optional<ControlLoop::Deadline> batch_deadline_;
  std::vector<datapath::agent::BatchResult> results_;
  datapath::pipeline::PolicyHandlerConfig handler_config_;
  datapath::SteerProgram* steer_ = nullptr;  // from attach() on
  // Policies put in force: files applied (the start's is 1), or with --agent the persisted one and
  // each update accepted (0: none yet).
  uint64_t policy_version_ = 0;
  uint64_t policy_reloads_failed_ = 0;
  datapath::agent::GrpcAgent* grpc_ = nullptr;  // agent_, when it is the external one
  std::string_view source_ = "file";            // "file", or "none", "persisted", "agent"
  CounterSet<PolicyStateCounter> state_counters_;
  LogLimiter agent_log_;   // batch failures can repeat once per batch
  LogLimiter mirror_log_;  // a failing map read repeats every poll (20 ms)
};

// Queue counts per interface, in the order given; also the check that every interface exists.
Setup<std::vector<uint32_t>> queue_counts(const Config& config) {
  std::vector<uint32_t> counts;
  for (const std::string& name : config.interfaces) {
    if (if_nametoindex(name.c_str()) == 0)
      return failure(kExitNoInterface, "interface " + name + " not found");
    uint32_t served = config.queues;
    if (served == 0) {
      auto count = xsk::receive_queue_count(name);
      // The interface exists (checked above): failing to read its channels is not exit 3.
      if (!count) return failure(kExitBadConfig, count.error().message + " (give --queues)");
      served = *count;
    }
    if (served > DNS_STEER_MAX_QUEUES) {
      spdlog::warn(
          "{} has {} queues: serving the first {} (dns_steer's limit); DNS on the others goes to "
          "the kernel (dropped with --fail-closed)",
          name, served, DNS_STEER_MAX_QUEUES);
      served = DNS_STEER_MAX_QUEUES;
    }
    counts.push_back(served);
  }
  return counts;
}

// dns_steer asks the FIB from the ingress interface: with forwarding off there, every DNS packet
// ends as fib_fwd_disabled and is dropped by the workers. Warn at start rather than leave the
// operator to find the counter.
void warn_if_forwarding_disabled(const std::vector<std::string>& interfaces) {
  for (const std::string& name : interfaces) {
    for (const char* family : {"ipv4", "ipv6"}) {
      const std::string path = fmt::format("/proc/sys/net/{}/conf/{}/forwarding", family, name);
      std::ifstream file(path);
      int enabled = 1;
      if (file >> enabled && enabled == 0)
        spdlog::warn(
            "{} forwarding is disabled on {} ({} is 0): DNS received there ends as "
            "fib_fwd_disabled and is dropped",
            family, name, path);
    }
  }
}

// Creates each planned worker's UMEM and sockets, fills the fill rings, then puts the sockets in
// the steering map (a socket in the map with an empty fill ring drops what it gets).
template <class Mode>
Setup<Workers<typename Mode::Handler>> create_workers(const Config& config, const WorkerPlan& plan,
                                                      datapath::SteerProgram& steer, Mode& mode) {
  using Handler = typename Mode::Handler;
  const xsk::BindMode bind_mode = *xsk::parse_bind_mode(config.bind_mode);  // validated
  Workers<Handler> workers;
  for (size_t w = 0; w < plan.workers.size(); ++w) {
    std::vector<xsk::SocketConfig> sockets;
    for (const PlannedSocket& socket : plan.workers[w].sockets)
      sockets.push_back(xsk::SocketConfig{.interface = config.interfaces[socket.interface],
                                          .queue = socket.queue,
                                          .bind_mode = bind_mode,
                                          .ring_size = config.ring_size,
                                          .busy_poll = config.busy_poll,
                                          .busy_poll_budget = config.batch_size});
    auto umem =
        xsk::Umem::create(xsk::UmemConfig{config.umem_frames, config.frame_size, config.ring_size});
    if (!umem) return failure(kExitUmem, fmt::format("worker {}: {}", w, umem.error().message));
    auto io = xsk::XskPacketIo::create(std::move(*umem), sockets);
    if (!io) return failure(kExitSocket, fmt::format("worker {}: {}", w, io.error().message));
    (*io)->service();
    for (size_t port = 0; port < (*io)->port_count(); ++port) {
      const xsk::Socket& socket = (*io)->socket(port);
      if (auto bound = steer.bind_socket(socket.ifindex(), socket.queue(), socket.fd()); !bound)
        return failure(kExitSocket, bound.error().message);
      spdlog::info("worker {} (cpu {}): {} queue {}: {} mode, XDP {}{}", w, plan.workers[w].cpu,
                   socket.interface(), socket.queue(), socket.zero_copy() ? "zero-copy" : "copy",
                   datapath::to_string(steer.attached_mode(socket.ifindex())),
                   socket.busy_poll() ? ", busy polling" : "");
    }
    auto slot = std::make_unique<WorkerSlot<Handler>>();
    auto handler = mode.make_handler(w);
    if (!handler) return failure(kExitBadConfig, handler.error().message);
    slot->handler = std::move(*handler);
    slot->cpu = plan.workers[w].cpu;
    slot->io = std::move(*io);
    workers.push_back(std::move(slot));
  }
  return workers;
}

// libbpf and libxdp narrate their fallbacks (no bpffs for the dispatcher, unknown ELF sections)
// on stderr; the loader already turns real failures into errors. Their text goes to the debug
// log, shown with --verbose.
int library_log(const char* format, va_list args) {
  char line[1024];
  const int length = std::vsnprintf(line, sizeof(line), format, args);
  if (length > 0) {
    std::string_view text(line, std::min<size_t>(static_cast<size_t>(length), sizeof(line) - 1));
    while (!text.empty() && text.back() == '\n') text.remove_suffix(1);
    spdlog::debug("{}", text);
  }
  return length;
}
int libbpf_log(libbpf_print_level, const char* format, va_list args) {
  return library_log(format, args);
}
int libxdp_log(libxdp_print_level, const char* format, va_list args) {
  return library_log(format, args);
}

template <class Mode>
Snapshot collect(const Workers<typename Mode::Handler>& workers, const Mode& mode,
                 const datapath::SteerProgram& steer, std::chrono::steady_clock::time_point started,
                 bool final) {
  Snapshot snapshot;
  snapshot.final = final;
  snapshot.mode = Mode::kName;
  snapshot.uptime_ms = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                                 std::chrono::steady_clock::now() - started)
                                                 .count());
  for (const auto& slot : workers) {
    WorkerSnapshot worker;
    worker.cpu = slot->cpu;
    append_counters(slot->counters.packets, worker.counters);
    append_counters(slot->counters.worker_drops, worker.drops);
    append_counters(slot->counters.handler_drops, worker.drops);
    mode.collect_worker(static_cast<size_t>(&slot - workers.data()), worker);
    worker.frames = slot->io->frame_counts();
    for (size_t port = 0; port < slot->io->port_count(); ++port) {
      const xsk::Socket& socket = slot->io->socket(port);
      const auto& counted = slot->io->port_counters(port);
      worker.sockets.push_back(SocketSnapshot{
          socket.interface(), socket.ifindex(), socket.queue(), socket.zero_copy(),
          datapath::to_string(steer.attached_mode(socket.ifindex())), socket.busy_poll(),
          counted.rx_packets.get(), counted.tx_packets.get(), socket.kernel_stats()});
    }
    // After the workers stopped every frame is back: consistent, none in a worker's hands, none
    // parked, none leaked on the way.
    snapshot.frames_ok = snapshot.frames_ok && worker.frames.consistent() &&
                         slot->counters.get(datapath::WorkerCounter::kLeakedFrames) == 0 &&
                         worker.frames.at(xsk::FramePlace::kWorker) == 0 &&
                         worker.frames.at(xsk::FramePlace::kParked) == 0;
    snapshot.workers.push_back(std::move(worker));
  }
  mode.collect(snapshot);
  if (auto counters = steer.counters()) snapshot.dns_steer = *counters;
  return snapshot;
}

// The log report and the stats file, from one snapshot.
class Publisher {
 public:
  explicit Publisher(const Config& config) : config_(config) {}
  [[nodiscard]] ReloadState& reloads() { return reloads_; }
  void publish(Snapshot snapshot, std::string_view reason, bool log_report) {
    snapshot.sequence = ++sequence_;
    snapshot.reloads = reloads_;
    snapshot.reason = reason;
    if (log_report)
      for (const std::string& line : report_lines(snapshot)) spdlog::info("{}", line);
    if (config_.stats_file.empty()) return;
    const std::string text = to_json(snapshot).dump(2) + "\n";
    if (auto written = write_file_atomically(config_.stats_file, text); !written)
      if (const auto decision = log_.allow(std::chrono::steady_clock::now()); decision.log)
        spdlog::warn("stats file: {}{}", written.error().message, suppressed(decision));
  }

 private:
  const Config& config_;
  uint64_t sequence_ = 0;
  ReloadState reloads_;
  LogLimiter log_;  // a full disk fails every interval
};

// SIGHUP: the configuration again; a bad file changes nothing. Applies what can change live (the
// log level) and names what needs a restart; `state` feeds the stats snapshot.
void reload_config(const Config& running, const Reload& reload, ReloadState& state) {
  if (!reload) {
    spdlog::info("SIGHUP: no --config file: nothing to reload");
    return;
  }
  auto next = reload();
  if (!next) {
    ++state.failed;
    spdlog::error("SIGHUP: reload failed, nothing changed: {}", next.error().message);
    return;
  }
  (void)validate(*next);  // fills in the defaults run() filled into `running` (valid already)
  ++state.applied;
  state.restart_needed.clear();
  std::vector<std::string_view> live;
  for (std::string_view key : changed_keys(running, *next)) {
    if (applies_live(key))
      live.push_back(key);
    else
      state.restart_needed.emplace_back(key);
  }
  spdlog::set_level(next->verbose ? spdlog::level::debug : spdlog::level::info);
  configure_logging(*parse_log_format(next->log_format));  // validated above
  spdlog::info("SIGHUP: reloaded; applied: {}; need a restart: {}",
               live.empty() ? "nothing changed" : fmt::format("{}", fmt::join(live, ", ")),
               state.restart_needed.empty()
                   ? "none"
                   : fmt::format("{}", fmt::join(state.restart_needed, ", ")));
}

// What the daemon needs once its sockets exist: CAP_NET_ADMIN and CAP_SYS_ADMIN to detach at exit
// (libxdp inspects the attached programs by id), CAP_BPF for the steering and stats maps. Every
// other capability (CAP_NET_RAW and CAP_IPC_LOCK were for the sockets and the UMEMs) is dropped
// before the workers start, so they never hold it.
constexpr int kKeptCapabilities[] = {CAP_NET_ADMIN, CAP_SYS_ADMIN, CAP_BPF};
constexpr std::string_view kKeptCapabilityNames = "CAP_NET_ADMIN CAP_SYS_ADMIN CAP_BPF";

void drop_capabilities() {
  uint64_t keep = 0;
  for (int cap : kKeptCapabilities) keep |= capability_bit(cap);
  if (auto dropped = keep_only_capabilities(keep); !dropped) {
    spdlog::warn("could not drop capabilities: {}", dropped.error().message);
    return;
  }
  spdlog::info(
      "capabilities: kept {} (at most: for the maps and the detach at exit), dropped "
      "the rest",
      kKeptCapabilityNames);
}

// `dnsproxyctl status`: what runs where, without the counters.
nlohmann::json status_json(const Config& config, const Snapshot& snapshot) {
  nlohmann::json workers = nlohmann::json::array();
  for (size_t w = 0; w < snapshot.workers.size(); ++w) {
    nlohmann::json sockets = nlohmann::json::array();
    for (const SocketSnapshot& socket : snapshot.workers[w].sockets)
      sockets.push_back({{"interface", socket.interface},
                         {"queue", socket.queue},
                         {"bind_mode", socket.zero_copy ? "zerocopy" : "copy"},
                         {"xdp_mode", std::string(socket.xdp_mode)},
                         {"busy_poll", socket.busy_poll}});
    workers.push_back({{"worker", w}, {"cpu", snapshot.workers[w].cpu}, {"sockets", sockets}});
  }
  return {{"mode", std::string(snapshot.mode)},
          {"pid", ::getpid()},
          {"uptime_ms", snapshot.uptime_ms},
          {"interfaces", config.interfaces},
          {"dns_ports", config.dns_ports},
          {"fail_closed", config.fail_closed},
          {"tcp_dns", config.tcp_dns},
          {"pin_dir", config.pin_dir},
          {"workers", workers}};
}

// The service manager's notification socket (sd_notify(3)); a no-op without NOTIFY_SOCKET.
void notify(const std::string& state) {
  (void)sd_notify(0, state.c_str());
}

template <class Mode>
int serve(const Config& config, const Reload& reload, const WorkerPlan& plan,
          datapath::SteerProgram& steer, ControlLoop& loop, Mode& mode) {
  using Handler = typename Mode::Handler;
  if (auto attached = mode.attach(steer); !attached) {
    spdlog::error("{}", attached.error().message);
    return kExitAttach;
  }
  notify("STATUS=creating AF_XDP sockets");
  auto created = create_workers(config, plan, steer, mode);
  if (!created) {
    spdlog::error("{}", created.error().message);
    return created.error().code;
  }
  Workers<Handler>& workers = *created;
  // The node's stack, for to_kernel verdicts: opened here, in the node's network namespace.
  auto kernel = datapath::RawKernelPath::open();
  if (!kernel) {
    spdlog::error("{}", kernel.error().message);
    return kExitSocket;
  }

  const auto started = std::chrono::steady_clock::now();
  // Bound before the capability drop, served after it (metrics.h).
  std::unique_ptr<MetricsServer> metrics;
  if (!config.metrics.empty()) {
    auto bound = MetricsServer::bind(*parse_host_port(config.metrics, "--metrics"), [&] {
      return to_prometheus(collect(workers, mode, steer, started, false));
    });
    if (!bound) {
      spdlog::error("{}", bound.error().message);
      return bound.error().code;
    }
    metrics = std::move(*bound);
  }
  // The admin socket: answered on this thread by the control loop.
  std::unique_ptr<AdminServer> admin;
  if (!config.admin_socket.empty()) {
    auto listening = AdminServer::listen(config.admin_socket, loop, [&](std::string_view command) {
      if (command == "stats") return to_json(collect(workers, mode, steer, started, false));
      if (command == "status") {
        nlohmann::json status = status_json(config, collect(workers, mode, steer, started, false));
        if (nlohmann::json policy = mode.status(); !policy.is_null()) status.update(policy);
        return status;
      }
      if (command == "cache" || command == "policy") return mode.admin(command);
      return nlohmann::json{{"error", fmt::format("unknown command '{}'", command)}};
    });
    if (!listening) {
      spdlog::error("{}", listening.error().message);
      return listening.error().code;
    }
    admin = std::move(*listening);
  }
  drop_capabilities();
  if (metrics) {
    metrics->start();
    spdlog::info("metrics: http://{}/metrics", config.metrics);
  }

  std::atomic<bool> stop{false};
  const datapath::WorkerConfig worker_config{.batch_size = config.batch_size,
                                             .idle_timeout_ms = Mode::kIdleTimeoutMs};
  for (auto& slot : workers) {
    const size_t index = static_cast<size_t>(&slot - workers.data());
    slot->thread = std::thread([&slot = *slot, &kernel = *kernel, &stop, worker_config, index] {
      // "dnsproxy-w0": what `top -H`, `ps -T` and /proc/PID/task/TID/comm show (15 bytes max).
      (void)pthread_setname_np(pthread_self(), fmt::format("dnsproxy-w{}", index).c_str());
      if (auto pinned = datapath::pin_current_thread(slot.cpu); !pinned)
        spdlog::warn("{}", pinned.error().message);
      datapath::Worker worker(*slot.io, *slot.handler, kernel, slot.counters, worker_config);
      worker.run(stop);
    });
  }
  spdlog::info("forwarding DNS (ports {}) between {} with {} worker(s); SIGUSR1 prints counters",
               fmt::join(config.dns_ports, ","), fmt::join(config.interfaces, ", "),
               workers.size());
  // The first stats file says the daemon is serving (tests wait for it).
  Publisher stats(config);
  stats.publish(collect(workers, mode, steer, started, false), "start", false);
  // Ready: dns_steer attached, every socket bound and in the steering map, workers running (the
  // policy, once there is one, in force too).
  notify(fmt::format("READY=1\nSTATUS=serving DNS on {} with {} worker(s)",
                     fmt::join(config.interfaces, ", "), workers.size()));

  for (int sig : {SIGINT, SIGTERM})
    loop.on_signal(sig, [&loop, name = std::string(strsignal(sig))] {
      spdlog::info("{}: stopping", name);
      loop.stop();
    });
  loop.on_signal(SIGUSR1, [&] {
    stats.publish(collect(workers, mode, steer, started, false), "signal", true);
  });
  loop.on_signal(SIGHUP, [&] {
    reload_config(config, reload, stats.reloads());
    mode.reload_policy();
  });
  Result<void> timer = mode.start(loop);
  if (timer && !config.stats_file.empty())
    timer = loop.add_timer(std::chrono::milliseconds(config.stats_interval), [&] {
      stats.publish(collect(workers, mode, steer, started, false), "interval", false);
    });
  ProgressCheck progress;
  uint64_t watchdog_usec = 0;
  if (timer && sd_watchdog_enabled(0, &watchdog_usec) > 0) {
    const auto interval = std::chrono::milliseconds(std::max<uint64_t>(watchdog_usec / 2000, 1));
    spdlog::info("watchdog: pinging every {} ms while every worker makes progress",
                 interval.count());
    timer = loop.add_timer(interval, [&] {
      std::vector<uint64_t> iterations;
      for (const auto& slot : workers)
        iterations.push_back(slot->counters.get(datapath::WorkerCounter::kIterations));
      const std::vector<size_t> stuck = progress.stalled(iterations);
      if (stuck.empty()) return notify("WATCHDOG=1");
      spdlog::error("watchdog: worker(s) {} made no progress: not pinging", fmt::join(stuck, ","));
      notify(fmt::format("STATUS=worker(s) {} made no progress", fmt::join(stuck, ",")));
    });
  }
  if (!timer) spdlog::error("timer: {}: stopping", timer.error().message);
  auto ran = timer ? loop.run() : Result<void>{};
  if (!ran) spdlog::error("control loop: {}: stopping", ran.error().message);

  notify("STOPPING=1\nSTATUS=stopping");
  metrics.reset();  // its thread reads the workers: first to go
  admin.reset();
  // Teardown, in ownership order: stop steering to the sockets while the workers still run (so
  // DNS arriving meanwhile takes the fail action, the kernel with fail-open, instead of dying in
  // an RX ring nobody reads), stop the workers, let TX finish, count frames, close sockets and
  // UMEMs; the caller then detaches and unpins the program.
  for (auto& slot : workers)
    for (size_t port = 0; port < slot->io->port_count(); ++port)
      steer.unbind_socket(slot->io->socket(port).ifindex(), slot->io->socket(port).queue());
  stop.store(true, std::memory_order_relaxed);
  for (auto& slot : workers) slot->thread.join();
  for (auto& slot : workers)
    if (!slot->io->drain_tx(1000)) spdlog::warn("TX did not drain within 1 s");
  const Snapshot last = collect(workers, mode, steer, started, true);
  stats.publish(last, "exit", true);
  workers.clear();
  if (!last.frames_ok) {
    spdlog::error(
        "frame accounting failed: a frame leaked or moved from the wrong place (see counters "
        "above)");
    return kExitFrameAccounting;
  }
  return kExitOk;
}

}  // namespace

int run(Config config, Reload reload) {
  if (config.verbose) spdlog::set_level(spdlog::level::debug);
  libbpf_set_print(libbpf_log);
  libxdp_set_print(libxdp_log);
  if (auto valid = validate(config); !valid) {
    spdlog::error("{}", valid.error().message);
    return valid.error().code;
  }
  auto queues = queue_counts(config);
  if (!queues) {
    spdlog::error("{}", queues.error().message);
    return queues.error().code;
  }
  auto plan = plan_workers(config, *queues);
  if (!plan) {
    spdlog::error("{}", plan.error().message);
    return plan.error().code;
  }
  for (const std::string& warning : plan->warnings) spdlog::warn("{}", warning);

  // Before any thread starts: the workers inherit the blocked signals.
  std::unique_ptr<PolicyMode> policy_mode;
  if (!config.forward_all) {
    auto mode = PolicyMode::create(config, plan->workers.size());
    if (!mode) {
      spdlog::error("{}", mode.error().message);
      return mode.error().code;
    }
    policy_mode = std::move(*mode);
  }

  auto loop = ControlLoop::create({SIGINT, SIGTERM, SIGUSR1, SIGHUP});
  if (!loop) {
    spdlog::error("{}", loop.error().message);
    return kExitBadConfig;
  }

  datapath::SteerSettings settings;
  settings.dns_ports = config.dns_ports;
  settings.fail_open = !config.fail_closed;
  settings.tcp_dns_drop = config.tcp_dns == "drop";            // validated: drop or pass
  settings.mode = *datapath::parse_xdp_mode(config.xdp_mode);  // validated
  settings.pin_dir = config.pin_dir;
  settings.mount_bpffs = config.mount_bpffs;
  settings.chain_into = config.chain_into;
  if (!config.bpf_package.empty()) {
    // Refused before anything is attached: unsigned, tampered, wrongly keyed, mislabelled.
    auto verified = datapath::verify_package_files(config.bpf_package, config.trusted_key);
    if (verified) {
      if (auto kernel = datapath::check_min_kernel(verified->min_kernel); !kernel)
        verified = tl::unexpected(kernel.error());
    }
    if (!verified) {
      spdlog::error("--bpf-package refused: {}", verified.error().message);
      return kExitBadConfig;
    }
    spdlog::info("dns_steer from package {}: {} {} ({}), license {}, signed by key ID {}",
                 config.bpf_package, verified->name, verified->version, verified->platform,
                 verified->license, verified->key_id);
    settings.object = std::move(verified->object);
  }
  notify("STATUS=attaching dns_steer");
  auto steer = datapath::SteerProgram::attach(config.interfaces, settings);
  if (!steer) {
    spdlog::error("{}", steer.error().message);
    return kExitAttach;
  }
  const std::string attached = (*steer)->describe();
  for (size_t begin = 0, end; begin < attached.size(); begin = end + 1) {
    end = attached.find('\n', begin);
    if (end == std::string::npos) end = attached.size();
    if (end > begin) spdlog::info("{}", attached.substr(begin, end - begin));
  }
  for (const datapath::Attachment& attachment : (*steer)->attachments())
    if (attachment.replaced_stale)
      spdlog::warn("replaced a stale dns_steer on {}", attachment.interface);
  if ((*steer)->stale_pins_removed() > 0)
    spdlog::warn("removed {} stale pins from {}", (*steer)->stale_pins_removed(),
                 (*steer)->pin_dir());
  warn_if_forwarding_disabled(config.interfaces);

  ForwardAllMode forward_all;
  const int served = policy_mode ? serve(config, reload, *plan, **steer, **loop, *policy_mode)
                                 : serve(config, reload, *plan, **steer, **loop, forward_all);
  // The mode's BPF pieces (l3_guard, the agent's pins) go before dns_steer does.
  if (policy_mode) policy_mode->detach();
  // Last: detach and unpin, whatever happened above (the workers and sockets are gone).
  auto detached = (*steer)->detach();
  if (!detached) spdlog::error("detach: {}", detached.error().message);
  steer->reset();
  if (served != kExitOk) return served;
  if (!detached) return kExitDetach;
  spdlog::info("stopped cleanly: program detached, pins removed, every frame accounted for");
  return kExitOk;
}

}  // namespace dnsproxy::daemon
