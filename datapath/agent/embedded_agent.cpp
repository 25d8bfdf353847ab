#include "datapath/agent/embedded_agent.h"

#include <sys/timerfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <set>

namespace dnsproxy::datapath::agent {

std::string_view to_string(LinkState state) noexcept {
  switch (state) {
    case LinkState::kUp:
      return "up";
    case LinkState::kConnecting:
      return "connecting";
    case LinkState::kDown:
      return "down";
  }
  return "unknown";
}

PinnedPolicyMaps pinned_policy_maps(const std::string& dir) {
  return {.endpoints = dir + "/dnsproxy_endpoints",
          .ipcache = dir + "/dnsproxy_ipcache",
          .generations = dir + "/dnsproxy_policy_gen",
          .ipcache_log = dir + "/dnsproxy_ipcache_log"};
}

std::string pinned_allow_map(const std::string& dir) {
  return dir + "/dnsproxy_fqdn_allow";
}

Result<std::unique_ptr<EmbeddedAgent>> EmbeddedAgent::create(EmbeddedAgentConfig config) {
  auto maps = PolicyMaps::create(config.max_endpoints, config.max_prefixes);
  if (!maps) return tl::unexpected(maps.error());
  auto allow = AllowMap::create();
  if (!allow) return tl::unexpected(allow.error());
  Fd timer(timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC));
  if (timer.get() < 0) return fail("embedded agent: timerfd_create: ", std::strerror(errno));
  return std::unique_ptr<EmbeddedAgent>(
      new EmbeddedAgent(config, std::move(*maps), std::move(*allow), std::move(timer)));
}

EmbeddedAgent::~EmbeddedAgent() {
  for (const std::string& path : pinned_) unlink(path.c_str());
}

Result<void> EmbeddedAgent::pin(const std::string& dir) {
  const PinnedPolicyMaps paths = pinned_policy_maps(dir);
  const std::string allow_path = pinned_allow_map(dir);
  for (const std::string* path :
       {&paths.endpoints, &paths.ipcache, &paths.generations, &paths.ipcache_log, &allow_path})
    if (unlink(path->c_str()) != 0 && errno != ENOENT)
      return fail("removing the stale pin ", *path, ": ", std::strerror(errno));
  if (auto pinned = maps_.pin(paths); !pinned) return pinned;
  pinned_ = {paths.endpoints, paths.ipcache, paths.generations, paths.ipcache_log};
  if (auto pinned = allow_.pin(allow_path); !pinned) return pinned;
  pinned_.push_back(allow_path);
  return {};
}

Result<void> EmbeddedAgent::load_policy(const policy::PolicyFile& file) {
  MapReadStats ignored;
  auto endpoints = maps_.read_endpoints(ignored);
  if (!endpoints) return tl::unexpected(endpoints.error());
  auto prefixes = maps_.read_ipcache(ignored);
  if (!prefixes) return tl::unexpected(prefixes.error());
  std::set<policy::IpAddress> keep_endpoints;
  for (const policy::EndpointEntry& entry : file.endpoints) {
    if (auto written = maps_.update_endpoint(entry); !written) return written;
    keep_endpoints.insert(entry.address);
  }
  for (const policy::EndpointEntry& old : *endpoints)
    if (!keep_endpoints.contains(old.address))
      if (auto deleted = maps_.delete_endpoint(old.address); !deleted) return deleted;
  std::set<policy::IpPrefix> keep_prefixes;
  for (const policy::IpCacheEntry& entry : file.ipcache) {
    if (auto written = maps_.update_prefix(entry); !written) return written;
    keep_prefixes.insert(entry.prefix);
  }
  for (const policy::IpCacheEntry& old : *prefixes)
    if (!keep_prefixes.contains(old.prefix))
      if (auto deleted = maps_.delete_prefix(old.prefix); !deleted) return deleted;
  counters_.add(EmbeddedAgentCounter::kPolicyLoads);
  return {};
}

void EmbeddedAgent::submit(pipeline::PlumbBatch batch) {
  const auto now = pipeline::Clock::now();
  due_.push_back({now + config_.plumb_delay, std::move(batch)});
  if (due_.size() == 1) arm_timer(now);
}

void EmbeddedAgent::poll(pipeline::Clock::time_point now, std::vector<BatchResult>& results) {
  uint64_t expirations = 0;
  // Clears the timer's readability; EAGAIN (called before it fired) is fine.
  [[maybe_unused]] const ssize_t cleared = read(timer_.get(), &expirations, sizeof expirations);
  while (!due_.empty() && due_.front().at <= now) {
    results.push_back(plumb(due_.front().batch));
    due_.pop_front();
  }
  if (!due_.empty()) arm_timer(now);
}

BatchResult EmbeddedAgent::plumb(const pipeline::PlumbBatch& batch) {
  BatchResult result{.batch_id = batch.id, .plumbed = true, .error = {}};
  for (const pipeline::PlumbName& name : batch.names)
    for (const pipeline::PlumbAddress& address : name.addresses) {
      auto written = allow_.allow(name.endpoint_id, address.ip, address.expires + config_.grace);
      if (!written) {
        // The rest of the batch is still written: those addresses work; the batch as a whole is
        // reported failed, so its parked responses wait for their max delay.
        result.plumbed = false;
        if (result.error.empty()) result.error = written.error().message;
        continue;
      }
      counters_.add(EmbeddedAgentCounter::kAddressesPlumbed);
    }
  counters_.add(result.plumbed ? EmbeddedAgentCounter::kBatchesPlumbed
                               : EmbeddedAgentCounter::kBatchesFailed);
  return result;
}

void EmbeddedAgent::expire(pipeline::Clock::time_point now) {
  if (auto removed = allow_.remove_expired(now); removed)
    counters_.add(EmbeddedAgentCounter::kAllowExpired, *removed);
}

void EmbeddedAgent::arm_timer(pipeline::Clock::time_point now) {
  // At least 1 ns: a zero it_value would disarm the timer instead of firing it at once.
  const auto wait =
      std::max<pipeline::Clock::duration>(due_.front().at - now, std::chrono::nanoseconds(1));
  const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(wait).count();
  itimerspec spec{};
  spec.it_value.tv_sec = ns / 1'000'000'000;
  spec.it_value.tv_nsec = ns % 1'000'000'000;
  (void)timerfd_settime(timer_.get(), 0, &spec, nullptr);
}

}  // namespace dnsproxy::datapath::agent
