#include "policy/fqdn_cache.h"

#include <algorithm>

namespace dnsproxy::policy {

std::vector<IpAddress> FqdnCache::learn(uint32_t endpoint_id, std::span<const uint8_t> name,
                                        std::span<const IpAddress> ips, std::chrono::seconds ttl,
                                        Clock::time_point now) {
  if (ips.empty()) return {};
  const NameKey key{endpoint_id, std::string(name.begin(), name.end())};
  const Clock::time_point expires = now + std::max(ttl, limits_.min_ttl);
  auto& by_ip = names_[key];
  for (const IpAddress& ip : ips) {
    auto [it, inserted] = by_ip.try_emplace(ip);
    if (!inserted) {
      if (it->second->first >= expires) continue;
      by_expiry_.erase(it->second);  // re-indexed below with the later expiry
    } else {
      ++ips_[{endpoint_id, ip}].names;
    }
    it->second = by_expiry_.emplace(expires, Mapping{endpoint_id, key.second, ip});
    IpState& state = ips_[{endpoint_id, ip}];
    if (expires <= state.expires) continue;
    state.expires = expires;
    if (state.plumbed) plumbed_changed({endpoint_id, ip}, expires);
  }
  enforce_name_cap(key);
  while (by_expiry_.size() > limits_.max_mappings) remove(by_expiry_.begin());

  std::vector<IpAddress> unplumbed;
  for (const IpAddress& ip : ips) {
    auto state = ips_.find({endpoint_id, ip});
    if (state != ips_.end() && !state->second.plumbed &&
        std::find(unplumbed.begin(), unplumbed.end(), ip) == unplumbed.end())
      unplumbed.push_back(ip);
  }
  return unplumbed;
}

void FqdnCache::enforce_name_cap(const NameKey& key) {
  auto name = names_.find(key);
  while (name != names_.end() && name->second.size() > limits_.max_ips_per_name) {
    auto earliest = std::min_element(
        name->second.begin(), name->second.end(),
        [](const auto& a, const auto& b) { return a.second->first < b.second->first; });
    const bool last = name->second.size() == 1;
    remove(earliest->second);
    if (last) break;
  }
}

void FqdnCache::remove(ExpiryIndex::iterator mapping) {
  const Mapping& m = mapping->second;
  auto name = names_.find({m.endpoint_id, m.name});
  name->second.erase(m.ip);
  if (name->second.empty()) names_.erase(name);
  auto state = ips_.find({m.endpoint_id, m.ip});
  if (--state->second.names == 0) {
    if (state->second.plumbed) plumbed_changed(state->first, std::nullopt);
    ips_.erase(state);
  }
  by_expiry_.erase(mapping);
}

void FqdnCache::plumbed_changed(const IpKey& key, std::optional<Clock::time_point> until) {
  plumbed_changes_.push_back({.endpoint_id = key.first, .ip = key.second, .until = until});
}

void FqdnCache::mark_plumbed(uint32_t endpoint_id, const IpAddress& ip) {
  auto state = ips_.find({endpoint_id, ip});
  if (state == ips_.end() || state->second.plumbed) return;
  state->second.plumbed = true;
  plumbed_changed(state->first, state->second.expires);
}

void FqdnCache::set_limits(FqdnCacheLimits limits) {
  limits_ = limits;
  while (by_expiry_.size() > limits_.max_mappings) remove(by_expiry_.begin());
}

void FqdnCache::inherit_plumbed(uint32_t endpoint_id, const IpAddress& ip,
                                Clock::time_point until) {
  inherited_.emplace(until, IpKey{endpoint_id, ip});
  plumbed_changed({endpoint_id, ip}, until);
}

void FqdnCache::expire(Clock::time_point now) {
  while (!by_expiry_.empty() && by_expiry_.begin()->first <= now) remove(by_expiry_.begin());
  while (!inherited_.empty() && inherited_.begin()->first <= now) {
    // A pair learned and plumbed here since follows its own mappings.
    const IpKey key = inherited_.begin()->second;
    inherited_.erase(inherited_.begin());
    const auto state = ips_.find(key);
    if (state == ips_.end() || !state->second.plumbed) plumbed_changed(key, std::nullopt);
  }
}

std::vector<IpAddress> FqdnCache::lookup(uint32_t endpoint_id, std::span<const uint8_t> name,
                                         Clock::time_point now) const {
  std::vector<IpAddress> out;
  auto it = names_.find({endpoint_id, std::string(name.begin(), name.end())});
  if (it == names_.end()) return out;
  for (const auto& [ip, mapping] : it->second)
    if (mapping->first > now) out.push_back(ip);
  return out;
}

bool FqdnCache::is_plumbed(uint32_t endpoint_id, const IpAddress& ip, Clock::time_point now) const {
  auto state = ips_.find({endpoint_id, ip});
  return state != ips_.end() && state->second.plumbed && state->second.expires > now;
}

const PlumbedSet& FqdnCache::plumbed_set() {
  if (!plumbed_changes_.empty()) {
    plumbed_ = plumbed_.with_changes(plumbed_changes_);
    plumbed_changes_.clear();
  }
  return plumbed_;
}

PlumbedSet PlumbedSet::with_changes(std::span<const Change> changes) const {
  std::vector<Table::Change> edits;
  edits.reserve(changes.size());
  for (const Change& change : changes) {
    std::optional<Clock::rep> until;
    if (change.until) until = change.until->time_since_epoch().count();
    edits.push_back({key(change.endpoint_id, change.ip), until});
  }
  PlumbedSet next;
  next.table_ = table_.with_changes(edits);
  return next;
}

}  // namespace dnsproxy::policy
