#include "datapath/agent/agent_maps.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
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

Result<std::unique_ptr<AgentMaps>> AgentMaps::create(AgentMapsConfig config) {
  auto maps = PolicyMaps::create(config.max_endpoints, config.max_prefixes);
  if (!maps) return tl::unexpected(maps.error());
  auto allow = AllowMap::create();
  if (!allow) return tl::unexpected(allow.error());
  return std::unique_ptr<AgentMaps>(new AgentMaps(config, std::move(*maps), std::move(*allow)));
}

Result<std::unique_ptr<AgentMaps>> AgentMaps::open_or_create_pinned(AgentMapsConfig config,
                                                                    const std::string& dir,
                                                                    bool& reused) {
  const PinnedPolicyMaps paths = pinned_policy_maps(dir);
  const std::string allow_path = pinned_allow_map(dir);
  bool all_there = true;
  for (const std::string* path :
       {&paths.endpoints, &paths.ipcache, &paths.generations, &paths.ipcache_log, &allow_path})
    all_there = all_there && access(path->c_str(), F_OK) == 0;
  if (all_there) {
    // All there but not ours (wrong type or size) is an error, not something to replace: another
    // program may own those pins.
    auto maps = PolicyMaps::open_pinned(paths);
    if (!maps) return tl::unexpected(maps.error());
    auto allow = AllowMap::open_pinned(allow_path);
    if (!allow) return tl::unexpected(allow.error());
    reused = true;
    auto agent_maps =
        std::unique_ptr<AgentMaps>(new AgentMaps(config, std::move(*maps), std::move(*allow)));
    if (auto indexed = agent_maps->index_allow_map(); !indexed)
      return tl::unexpected(indexed.error());
    return agent_maps;
  }
  if (mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST)
    return fail("creating the pin directory ", dir, ": ", std::strerror(errno),
                " (is a bpf filesystem mounted? mount -t bpf bpf /sys/fs/bpf)");
  auto created = create(config);
  if (!created) return created;
  if (auto pinned = (*created)->pin(dir); !pinned) return tl::unexpected(pinned.error());
  (*created)->pinned_.clear();  // kept at exit
  reused = false;
  return created;
}

AgentMaps::~AgentMaps() {
  for (const std::string& path : pinned_) unlink(path.c_str());
}

Result<void> AgentMaps::pin(const std::string& dir) {
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

Result<void> AgentMaps::load_policy(const policy::PolicyFile& file) {
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
  counters_.add(AgentMapsCounter::kPolicyLoads);
  return {};
}

Result<void> AgentMaps::plumb_name(uint32_t endpoint_id,
                                   std::span<const pipeline::PlumbAddress> addresses) {
  Result<void> outcome;
  for (const pipeline::PlumbAddress& address : addresses) {
    const pipeline::Clock::time_point expires = address.expires + config_.grace;
    auto written = allow_.allow(endpoint_id, address.ip, expires);
    if (!written) {
      if (outcome) outcome = tl::unexpected(written.error());
      continue;
    }
    expiries_.push({expires, endpoint_id, address.ip});
    counters_.add(AgentMapsCounter::kAddressesPlumbed);
  }
  return outcome;
}

BatchResult AgentMaps::plumb(const pipeline::PlumbBatch& batch) {
  // The rest of the batch is still written after a failure: those addresses work; the batch as
  // a whole is reported failed, so its parked responses wait for their max delay.
  BatchResult result{.batch_id = batch.id, .plumbed = true, .error = {}};
  for (const pipeline::PlumbName& name : batch.names)
    if (auto written = plumb_name(name.endpoint_id, name.addresses); !written) {
      if (result.plumbed) result.error = written.error().message;
      result.plumbed = false;
    }
  count_batch(result.plumbed);
  return result;
}

void AgentMaps::count_batch(bool plumbed) noexcept {
  counters_.add(plumbed ? AgentMapsCounter::kBatchesPlumbed : AgentMapsCounter::kBatchesFailed);
}

void AgentMaps::expire(pipeline::Clock::time_point now) {
  while (!expiries_.empty() && expiries_.top().at <= now) {
    const Expiry due = expiries_.top();
    expiries_.pop();
    if (auto removed = allow_.remove_if_expired(due.endpoint_id, due.ip, now); removed && *removed)
      counters_.add(AgentMapsCounter::kAllowExpired);
  }
}

Result<void> AgentMaps::index_allow_map() {
  return allow_.for_each(
      [this](uint32_t endpoint_id, const policy::IpAddress& ip, pipeline::Clock::time_point at) {
        expiries_.push({at, endpoint_id, ip});
      });
}

}  // namespace dnsproxy::datapath::agent
