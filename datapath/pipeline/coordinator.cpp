#include "datapath/pipeline/coordinator.h"

#include <algorithm>
#include <memory>

namespace dnsproxy::datapath::pipeline {

size_t PlumbBatch::address_count() const noexcept {
  size_t n = 0;
  for (const PlumbName& name : names) n += name.addresses.size();
  return n;
}

Coordinator::Coordinator(CoordinatorConfig config, policy::SnapshotStore& store, size_t workers)
    : config_(config), store_(store), cache_(config.cache), acks_(workers) {}

void Coordinator::on_notice(size_t worker, const MappingNotice& notice, Clock::time_point now) {
  counters_.add(CoordinatorCounter::kNotices);
  const std::span<const uint8_t> name(notice.name.data(), notice.name_length);
  const std::chrono::seconds ttl{notice.ttl};
  const std::vector<policy::IpAddress> unplumbed =
      cache_.learn(notice.endpoint_id, name, std::span(&notice.ip, 1), ttl, now);
  counters_.set(CoordinatorCounter::kFqdnMappings, cache_.mapping_count());

  // Into the open batch: the agent plumbs (or extends) every address it is told about.
  if (!open_) open_ = OpenBatch{next_batch_id_++, now + config_.batch_delay, 0, {}};
  const Clock::time_point expires = now + std::max(ttl, cache_.limits().min_ttl);
  auto& addresses = open_->names[{notice.endpoint_id, std::string(name.begin(), name.end())}];
  auto known = std::find_if(addresses.begin(), addresses.end(),
                            [&](const PlumbAddress& a) { return a.ip == notice.ip; });
  if (known == addresses.end()) {
    addresses.push_back({notice.ip, expires});
    ++open_->addresses;
  } else {
    known->expires = std::max(known->expires, expires);
  }

  const bool has_ticket = (notice.flags & MappingNotice::kNoTicket) == 0;
  const TicketKey key{worker, notice.ticket};
  if (unplumbed.empty()) {
    counters_.add(CoordinatorCounter::kNoticesPlumbed);
  } else {
    const PairKey pair{notice.endpoint_id, notice.ip};
    auto [it, inserted] = pending_.try_emplace(pair);
    if (inserted) {
      it->second.batch_id = open_->id;
      it->second.since = now;
    }
    if (has_ticket) {
      Ticket& ticket = tickets_.try_emplace(key, Ticket{0, false, now}).first->second;
      if (std::find(it->second.tickets.begin(), it->second.tickets.end(), key) ==
          it->second.tickets.end()) {
        it->second.tickets.push_back(key);
        ++ticket.waiting_for;
      }
    }
  }
  if (has_ticket && (notice.flags & MappingNotice::kLastOfTicket) != 0) {
    Ticket& ticket = tickets_.try_emplace(key, Ticket{0, false, now}).first->second;
    ticket.complete = true;
    if (ticket.waiting_for == 0) {
      tickets_.erase(key);
      acks_[worker].push_back(notice.ticket);
      counters_.add(CoordinatorCounter::kTicketsAcked);
    }
  }
}

size_t Coordinator::drain(size_t worker, SpscRing<MappingNotice>& ring, Clock::time_point now) {
  size_t n = 0;
  MappingNotice notice;
  while (ring.pop(notice)) {
    on_notice(worker, notice, now);
    ++n;
  }
  return n;
}

std::optional<PlumbBatch> Coordinator::cut(Clock::time_point now, bool force) {
  if (!open_ || open_->addresses == 0) return std::nullopt;
  if (!force && open_->addresses < config_.batch_max && now < open_->deadline) return std::nullopt;
  PlumbBatch batch;
  batch.id = open_->id;
  InFlight& flight = in_flight_[batch.id];
  flight.since = now;
  std::vector<PairKey>& resolves = flight.resolves;
  for (auto& [key, addresses] : open_->names) {
    for (const PlumbAddress& a : addresses) {
      auto pending = pending_.find({key.first, a.ip});
      if (pending != pending_.end() && pending->second.batch_id == batch.id)
        resolves.push_back(pending->first);
    }
    batch.names.push_back(PlumbName{key.first, key.second, std::move(addresses)});
  }
  counters_.add(CoordinatorCounter::kBatchesSent);
  counters_.add(CoordinatorCounter::kBatchAddresses, open_->addresses);
  open_.reset();
  return batch;
}

std::optional<Clock::time_point> Coordinator::next_deadline() const noexcept {
  if (!open_ || open_->addresses == 0) return std::nullopt;
  return open_->deadline;
}

void Coordinator::resolve(const TicketKey& key) {
  auto ticket = tickets_.find(key);
  if (ticket == tickets_.end() || --ticket->second.waiting_for > 0 || !ticket->second.complete)
    return;
  tickets_.erase(ticket);
  acks_[key.first].push_back(key.second);
  counters_.add(CoordinatorCounter::kTicketsAcked);
}

void Coordinator::on_batch_acked(uint64_t batch_id, Clock::time_point now) {
  auto batch = in_flight_.find(batch_id);
  if (batch == in_flight_.end()) {
    counters_.add(CoordinatorCounter::kUnknownBatchAck);
    return;
  }
  counters_.add(CoordinatorCounter::kBatchesAcked);
  for (const PairKey& pair : batch->second.resolves) {
    cache_.mark_plumbed(pair.first, pair.second);
    auto pending = pending_.find(pair);
    if (pending == pending_.end()) continue;
    mapping_to_ack_.record(now - pending->second.since);
    for (const TicketKey& key : pending->second.tickets) resolve(key);
    pending_.erase(pending);
  }
  in_flight_.erase(batch);
  // Expired mappings must not be republished as plumbed.
  cache_.expire(now);
  republish_if_changed();
}

void Coordinator::on_batch_failed(uint64_t batch_id) {
  auto batch = in_flight_.find(batch_id);
  if (batch == in_flight_.end()) return;
  counters_.add(CoordinatorCounter::kBatchesFailed);
  // Its pairs are free to be sent again by the next notice; their tickets wait for the max delay
  // on the worker and are forgotten here after stale_after.
  for (const PairKey& pair : batch->second.resolves) pending_.erase(pair);
  in_flight_.erase(batch);
}

void Coordinator::expire(Clock::time_point now) {
  cache_.expire(now);
  republish_if_changed();
  const Clock::time_point horizon = now - config_.stale_after;
  for (auto it = tickets_.begin(); it != tickets_.end();) {
    if (it->second.since <= horizon) {
      counters_.add(CoordinatorCounter::kTicketsStale);
      it = tickets_.erase(it);
    } else {
      ++it;
    }
  }
  for (auto it = pending_.begin(); it != pending_.end();)
    it = it->second.since <= horizon ? pending_.erase(it) : std::next(it);
  for (auto it = in_flight_.begin(); it != in_flight_.end();)
    it = it->second.since <= horizon ? in_flight_.erase(it) : std::next(it);
}

void Coordinator::set_cache_limits(const policy::FqdnCacheLimits& limits) {
  cache_.set_limits(limits);
  republish_if_changed();
}

size_t Coordinator::inherit_plumbed(std::span<const policy::PlumbedSet::Change> pairs,
                                    Clock::time_point now) {
  size_t taken = 0;
  for (const policy::PlumbedSet::Change& pair : pairs) {
    if (!pair.until || *pair.until <= now) continue;
    cache_.inherit_plumbed(pair.endpoint_id, pair.ip, *pair.until);
    ++taken;
  }
  counters_.add(CoordinatorCounter::kInheritedPlumbed, taken);
  republish_if_changed();
  return taken;
}

void Coordinator::republish_if_changed() {
  counters_.set(CoordinatorCounter::kFqdnMappings, cache_.mapping_count());
  if (!cache_.plumbed_changed()) return;
  store_.replace({.plumbed = std::make_shared<const policy::PlumbedSet>(cache_.plumbed_set())});
  counters_.add(CoordinatorCounter::kRepublished);
}

}  // namespace dnsproxy::datapath::pipeline
