#include "datapath/policy_mirror.h"

#include <bpf/bpf.h>
#include <linux/bpf.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "datapath/abi.h"
#include "datapath/map_walk.h"

namespace dnsproxy::datapath {

static_assert(sizeof(ipcache_change) == 40);
static_assert(DNSPROXY_FAMILY_V4 == static_cast<int>(policy::Family::kV4));
static_assert(DNSPROXY_FAMILY_V6 == static_cast<int>(policy::Family::kV6));

namespace {

using policy::EndpointEntry;
using policy::Family;
using policy::IpAddress;
using policy::IpCacheChange;
using policy::IpCacheEntry;
using policy::IpPrefix;

tl::unexpected<Error> fail_errno(const std::string& what) {
  return fail(what, ": ", std::strerror(errno));
}

ipcache_key to_ipcache_key(const IpPrefix& prefix) {
  ipcache_key key{};
  key.prefixlen = DNSPROXY_IPCACHE_PREFIX_BASE + prefix.length;
  key.family = static_cast<__u8>(prefix.address.family);
  std::memcpy(key.addr, prefix.address.bytes.data(), sizeof key.addr);
  return key;
}

bool valid_family(__u8 family) {
  return family == DNSPROXY_FAMILY_V4 || family == DNSPROXY_FAMILY_V6;
}

// The address part of a key, with bits beyond `bits` cleared (the trie ignores them; so do we).
IpAddress address_from(const __u8 (&addr)[16], __u8 family, unsigned bits) {
  IpAddress a;
  a.family = static_cast<Family>(family);
  std::memcpy(a.bytes.data(), addr, 16);
  for (unsigned bit = bits; bit < 128; ++bit)
    a.bytes[bit / 8] &= static_cast<uint8_t>(~(0x80 >> (bit % 8)));
  return a;
}

// The prefix a trie key stands for, or nothing when policy cannot use it (unknown family, length
// beyond the family's).
std::optional<IpPrefix> prefix_from(const ipcache_key& key) {
  if (!valid_family(key.family) || key.prefixlen < DNSPROXY_IPCACHE_PREFIX_BASE) return {};
  const unsigned bits = key.prefixlen - DNSPROXY_IPCACHE_PREFIX_BASE;
  if (bits > (key.family == DNSPROXY_FAMILY_V4 ? 32u : 128u)) return {};
  return IpPrefix{address_from(key.addr, key.family, bits), static_cast<uint8_t>(bits)};
}

uint64_t mix(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ull;
  return x ^ (x >> 33);
}

uint64_t entry_hash(const IpAddress& a, uint64_t extra) {
  uint64_t words[2];
  std::memcpy(words, a.bytes.data(), 16);
  return mix(words[0] ^
             mix(words[1] ^ mix(extra ^ (uint64_t{static_cast<uint8_t>(a.family)} << 56))));
}

Result<bpf_map_info> check_map(int fd, __u32 type, __u32 key_size, __u32 value_size,
                               const std::string& path) {
  bpf_map_info info{};
  __u32 length = sizeof info;
  if (bpf_obj_get_info_by_fd(fd, &info, &length) != 0) return fail_errno(path + ": map info");
  if (info.type != type || info.key_size != key_size || info.value_size != value_size) {
    return fail(path, ": map has type ", std::to_string(info.type), " key ",
                std::to_string(info.key_size), " value ", std::to_string(info.value_size),
                " bytes; expected type ", std::to_string(type), " key ", std::to_string(key_size),
                " value ", std::to_string(value_size), " (datapath/bpf/dnsproxy_abi.h)");
  }
  return info;
}

}  // namespace

Fd& Fd::operator=(Fd&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) close(fd_);
    fd_ = std::exchange(other.fd_, -1);
  }
  return *this;
}

Fd::~Fd() {
  if (fd_ >= 0) close(fd_);
}

Result<PolicyMaps> PolicyMaps::open_pinned(const PinnedPolicyMaps& paths) {
  Fd endpoints(bpf_obj_get(paths.endpoints.c_str()));
  if (endpoints.get() < 0) return fail_errno("opening pinned map " + paths.endpoints);
  Fd ipcache(bpf_obj_get(paths.ipcache.c_str()));
  if (ipcache.get() < 0) return fail_errno("opening pinned map " + paths.ipcache);
  if (auto ok = check_map(endpoints.get(), BPF_MAP_TYPE_HASH, sizeof(endpoint_key),
                          sizeof(endpoint_value), paths.endpoints);
      !ok)
    return tl::unexpected(ok.error());
  if (auto ok = check_map(ipcache.get(), BPF_MAP_TYPE_LPM_TRIE, sizeof(ipcache_key),
                          sizeof(ipcache_value), paths.ipcache);
      !ok)
    return tl::unexpected(ok.error());
  Fd generations;
  if (!paths.generations.empty()) {
    generations = Fd(bpf_obj_get(paths.generations.c_str()));
    if (generations.get() < 0) return fail_errno("opening pinned map " + paths.generations);
    if (auto ok = check_map(generations.get(), BPF_MAP_TYPE_ARRAY, sizeof(__u32), sizeof(__u64),
                            paths.generations);
        !ok)
      return tl::unexpected(ok.error());
  }
  Fd ipcache_log;
  uint32_t log_capacity = 0;
  if (!paths.ipcache_log.empty()) {
    ipcache_log = Fd(bpf_obj_get(paths.ipcache_log.c_str()));
    if (ipcache_log.get() < 0 && errno != ENOENT)
      return fail_errno("opening pinned map " + paths.ipcache_log);
  }
  if (ipcache_log.get() >= 0) {  // else an agent without the log: every change is a walk
    if (generations.get() < 0)
      return fail(paths.ipcache_log, ": the ipcache change log needs the generation counters");
    auto info = check_map(ipcache_log.get(), BPF_MAP_TYPE_QUEUE, 0, sizeof(ipcache_change),
                          paths.ipcache_log);
    if (!info) return tl::unexpected(info.error());
    log_capacity = info->max_entries;
  }
  return PolicyMaps(std::move(endpoints), std::move(ipcache), std::move(generations),
                    std::move(ipcache_log), log_capacity);
}

Result<PolicyMaps> PolicyMaps::create(uint32_t max_endpoints, uint32_t max_prefixes,
                                      uint32_t ipcache_log_capacity) {
  Fd endpoints(bpf_map_create(BPF_MAP_TYPE_HASH, "dnsproxy_endpts", sizeof(endpoint_key),
                              sizeof(endpoint_value), max_endpoints, nullptr));
  if (endpoints.get() < 0) return fail_errno("creating the endpoint map");
  LIBBPF_OPTS(bpf_map_create_opts, trie_opts, .map_flags = BPF_F_NO_PREALLOC);
  Fd ipcache(bpf_map_create(BPF_MAP_TYPE_LPM_TRIE, "dnsproxy_ipcache", sizeof(ipcache_key),
                            sizeof(ipcache_value), max_prefixes, &trie_opts));
  if (ipcache.get() < 0) return fail_errno("creating the ipcache map");
  Fd generations(bpf_map_create(BPF_MAP_TYPE_ARRAY, "dnsproxy_polgen", sizeof(__u32), sizeof(__u64),
                                DNSPROXY_GENERATION__COUNT, nullptr));
  if (generations.get() < 0) return fail_errno("creating the policy generation map");
  Fd ipcache_log(bpf_map_create(BPF_MAP_TYPE_QUEUE, "dnsproxy_iplog", 0, sizeof(ipcache_change),
                                ipcache_log_capacity, nullptr));
  if (ipcache_log.get() < 0) return fail_errno("creating the ipcache change log");
  return PolicyMaps(std::move(endpoints), std::move(ipcache), std::move(generations),
                    std::move(ipcache_log), ipcache_log_capacity);
}

Result<void> PolicyMaps::pin(const PinnedPolicyMaps& paths) const {
  const std::pair<int, const std::string*> maps[] = {{endpoints_.get(), &paths.endpoints},
                                                     {ipcache_.get(), &paths.ipcache},
                                                     {generations_.get(), &paths.generations},
                                                     {ipcache_log_.get(), &paths.ipcache_log}};
  for (size_t i = 0; i < std::size(maps); ++i) {
    if (maps[i].first < 0 || maps[i].second->empty()) continue;
    if (bpf_obj_pin(maps[i].first, maps[i].second->c_str()) != 0) {
      auto error = fail_errno("pinning " + *maps[i].second);
      for (size_t k = 0; k < i; ++k) unlink(maps[k].second->c_str());
      return error;
    }
  }
  return {};
}

Result<std::optional<PolicyMaps::Generations>> PolicyMaps::read_generations() const {
  if (generations_.get() < 0) return std::optional<Generations>{};
  Generations counters{};
  for (__u32 slot = 0; slot < counters.size(); ++slot) {
    if (bpf_map_lookup_elem(generations_.get(), &slot, &counters[slot]) != 0)
      return fail_errno("reading the policy generation map");
  }
  return counters;
}

// The agent is the maps' only writer, so read-increment-write needs no atomics.
Result<void> PolicyMaps::bump_generation(uint32_t slot) const {
  if (generations_.get() < 0) return {};
  __u64 counter = 0;
  if (bpf_map_lookup_elem(generations_.get(), &slot, &counter) != 0 ||
      (++counter, bpf_map_update_elem(generations_.get(), &slot, &counter, BPF_ANY)) != 0)
    return fail_errno("bumping the policy generation");
  return {};
}

Result<std::vector<EndpointEntry>> PolicyMaps::read_endpoints(MapReadStats& stats) const {
  // Batched: one syscall per kBatch entries (hash maps support it since 5.6).
  constexpr __u32 kBatch = 4096;
  std::vector<endpoint_key> keys(kBatch);
  std::vector<endpoint_value> values(kBatch);
  std::vector<EndpointEntry> out;
  __u32 cursor = 0;
  bool first = true;
  for (;;) {
    __u32 count = kBatch;
    LIBBPF_OPTS(bpf_map_batch_opts, opts);
    const int rc = bpf_map_lookup_batch(endpoints_.get(), first ? nullptr : &cursor, &cursor,
                                        keys.data(), values.data(), &count, &opts);
    if (rc != 0 && errno != ENOENT) return fail_errno("reading the endpoint map");
    for (__u32 i = 0; i < count; ++i) {
      if (!valid_family(keys[i].family)) {
        ++stats.invalid_endpoints;
        continue;
      }
      const IpAddress address = address_from(keys[i].addr, keys[i].family,
                                             keys[i].family == DNSPROXY_FAMILY_V4 ? 32 : 128);
      out.push_back({address, {values[i].endpoint_id, values[i].identity}});
    }
    if (rc != 0) return out;  // ENOENT: that was the last batch
    first = false;
  }
}

Result<std::vector<IpCacheEntry>> PolicyMaps::read_ipcache(MapReadStats& stats) const {
  // LPM tries have no batch operations: walk the keys.
  std::vector<IpCacheEntry> out;
  const int err = for_each_map_entry<ipcache_key, ipcache_value>(
      ipcache_.get(), [&](const ipcache_key& key, const ipcache_value& value) {
        const std::optional<IpPrefix> prefix = prefix_from(key);
        if (!prefix) {
          ++stats.invalid_prefixes;
          return;
        }
        out.push_back({*prefix, value.identity});
      });
  if (err != 0) return fail("reading the ipcache map: ", std::strerror(err));
  return out;
}

template <class Use>
Result<void> PolicyMaps::pop_ipcache_log(Use&& use) const {
  for (uint32_t popped = 0; popped < ipcache_log_capacity_; ++popped) {
    ipcache_change change{};
    if (bpf_map_lookup_and_delete_elem(ipcache_log_.get(), nullptr, &change) != 0) {
      if (errno == ENOENT) return {};  // empty
      return fail_errno("popping the ipcache change log");
    }
    use(change);
  }
  return {};
}

Result<std::vector<IpCacheChange>> PolicyMaps::read_ipcache_changes(MapReadStats& stats) const {
  std::vector<IpCacheChange> out;
  auto popped = pop_ipcache_log([&](const ipcache_change& change) {
    const std::optional<IpPrefix> prefix = prefix_from(change.key);
    if (!prefix || (change.op != IPCACHE_CHANGE_UPSERT && change.op != IPCACHE_CHANGE_DELETE)) {
      ++stats.invalid_prefixes;
      return;
    }
    ++stats.ipcache_changes;
    out.push_back({*prefix, change.op == IPCACHE_CHANGE_UPSERT
                                ? std::optional<uint32_t>(change.value.identity)
                                : std::nullopt});
  });
  if (!popped) return tl::unexpected(popped.error());
  return out;
}

Result<void> PolicyMaps::discard_ipcache_changes() const {
  return pop_ipcache_log([](const ipcache_change&) {});
}

Result<void> PolicyMaps::update_endpoint(const EndpointEntry& entry) const {
  const endpoint_key key = to_endpoint_key(entry.address);
  const endpoint_value value{entry.info.endpoint_id, entry.info.identity};
  if (bpf_map_update_elem(endpoints_.get(), &key, &value, BPF_ANY) != 0)
    return fail_errno("updating endpoint " + entry.address.to_string());
  return bump_generation(DNSPROXY_GENERATION_ENDPOINTS);
}

Result<void> PolicyMaps::delete_endpoint(const IpAddress& address) const {
  const endpoint_key key = to_endpoint_key(address);
  if (bpf_map_delete_elem(endpoints_.get(), &key) != 0)
    return fail_errno("deleting endpoint " + address.to_string());
  return bump_generation(DNSPROXY_GENERATION_ENDPOINTS);
}

Result<void> PolicyMaps::log_ipcache_change(const ipcache_change& change) const {
  if (ipcache_log_.get() >= 0) {
    // Full (E2BIG) or any other failure: the proxy cannot learn this write from the log, so it
    // must walk the trie; the write itself is in the trie and stands.
    if (bpf_map_update_elem(ipcache_log_.get(), nullptr, &change, BPF_ANY) != 0) {
      if (auto counted = bump_generation(DNSPROXY_GENERATION_IPCACHE_LOG_LOST); !counted)
        return counted;
    }
  }
  return bump_generation(DNSPROXY_GENERATION_IPCACHE);
}

Result<void> PolicyMaps::update_prefix(const IpCacheEntry& entry) const {
  const ipcache_key key = to_ipcache_key(entry.prefix);
  const ipcache_value value{entry.identity, 0};
  if (bpf_map_update_elem(ipcache_.get(), &key, &value, BPF_ANY) != 0)
    return fail_errno("updating ipcache prefix " + entry.prefix.to_string());
  return log_ipcache_change({key, value, IPCACHE_CHANGE_UPSERT, 0});
}

Result<void> PolicyMaps::delete_prefix(const IpPrefix& prefix) const {
  const ipcache_key key = to_ipcache_key(prefix);
  if (bpf_map_delete_elem(ipcache_.get(), &key) != 0)
    return fail_errno("deleting ipcache prefix " + prefix.to_string());
  return log_ipcache_change({key, {}, IPCACHE_CHANGE_DELETE, 0});
}

Result<bool> PolicyMirror::poll() {
  // Counters first, maps second: a change that lands in between is read now and read once
  // more at the next poll, never missed.
  auto generations = maps_.read_generations();
  if (!generations) return tl::unexpected(generations.error());
  auto moved = [&](size_t slot) {
    return !generations->has_value() || !generations_seen_ ||
           (**generations)[slot] != (*generations_seen_)[slot];
  };
  policy::SnapshotStore::Parts parts;
  Digest endpoints_digest = endpoints_digest_;
  if (moved(DNSPROXY_GENERATION_ENDPOINTS)) {
    auto endpoints = maps_.read_endpoints(stats_);
    if (!endpoints) return tl::unexpected(endpoints.error());
    ++stats_.endpoint_map_reads;
    endpoints_digest = {endpoints->size(), 0};
    for (const EndpointEntry& e : *endpoints) {
      endpoints_digest.sum +=
          entry_hash(e.address, (uint64_t{e.info.endpoint_id} << 32) | e.info.identity);
    }
    if (endpoints_digest != endpoints_digest_)
      parts.endpoints = std::make_shared<const policy::EndpointTable>(*endpoints);
  }
  const bool log_lost = moved(DNSPROXY_GENERATION_IPCACHE_LOG_LOST);
  if (moved(DNSPROXY_GENERATION_IPCACHE) || log_lost) {
    const bool by_log = ipcache_ && maps_.has_ipcache_log() && !log_lost;
    auto ipcache = by_log ? apply_ipcache_log() : walk_ipcache();
    if (!ipcache) return tl::unexpected(ipcache.error());
    parts.ipcache = std::move(*ipcache);
  }
  if (generations->has_value()) generations_seen_ = **generations;
  endpoints_digest_ = endpoints_digest;
  if (!parts.endpoints && !parts.ipcache) return false;
  store_.replace(std::move(parts));
  return true;
}

Result<std::shared_ptr<const policy::IpCache>> PolicyMirror::walk_ipcache() {
  // Drop the logged changes first: each one is in the trie before the walk starts.
  if (maps_.has_ipcache_log()) {
    if (auto discarded = maps_.discard_ipcache_changes(); !discarded)
      return tl::unexpected(discarded.error());
  }
  auto ipcache = maps_.read_ipcache(stats_);
  if (!ipcache) return tl::unexpected(ipcache.error());
  ++stats_.ipcache_map_reads;
  Digest digest{ipcache->size(), 0};
  for (const IpCacheEntry& e : *ipcache)
    digest.sum += entry_hash(e.prefix.address, (uint64_t{e.prefix.length} << 32) | e.identity);
  if (ipcache_ && digest == ipcache_digest_) return nullptr;
  ipcache_digest_ = digest;
  ipcache_ = std::make_shared<const policy::IpCache>(*ipcache);
  return ipcache_;
}

Result<std::shared_ptr<const policy::IpCache>> PolicyMirror::apply_ipcache_log() {
  // Held outside ipcache_ while popped changes are not applied yet: if popping fails midway, the
  // next poll finds no ipcache_ and walks the trie instead of missing them.
  std::shared_ptr<const policy::IpCache> base = std::move(ipcache_);
  auto changes = maps_.read_ipcache_changes(stats_);
  if (!changes) return tl::unexpected(changes.error());
  ++stats_.ipcache_log_reads;
  const bool changed = std::any_of(changes->begin(), changes->end(), [&](const IpCacheChange& c) {
    const uint32_t* current = base->find(c.prefix);
    return c.identity ? current == nullptr || *current != *c.identity : current != nullptr;
  });
  if (!changed) {
    ipcache_ = std::move(base);
    return nullptr;
  }
  ipcache_ = std::make_shared<const policy::IpCache>(base->with_changes(*changes));
  ipcache_digest_ = {};  // no longer the digest of ipcache_: the next walk publishes
  return ipcache_;
}

}  // namespace dnsproxy::datapath
