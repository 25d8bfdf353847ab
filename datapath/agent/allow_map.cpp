#include "datapath/agent/allow_map.h"

#include <bpf/bpf.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "datapath/map_walk.h"

namespace dnsproxy::datapath::agent {
namespace {

tl::unexpected<Error> fail_errno(const std::string& what) {
  return fail(what, ": ", std::strerror(errno));
}

fqdn_allow_key to_key(uint32_t endpoint_id, const policy::IpAddress& ip) {
  fqdn_allow_key key{};
  key.endpoint_id = endpoint_id;
  key.family = static_cast<__u8>(ip.family);
  std::memcpy(key.addr, ip.bytes.data(), sizeof key.addr);
  return key;
}

__u64 to_ns(Clock::time_point at) {
  const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(at.time_since_epoch());
  return ns.count() < 0 ? 0 : static_cast<__u64>(ns.count());
}

}  // namespace

Result<AllowMap> AllowMap::create(uint32_t max_entries) {
  LIBBPF_OPTS(bpf_map_create_opts, opts, .map_flags = BPF_F_NO_PREALLOC);
  Fd fd(bpf_map_create(BPF_MAP_TYPE_HASH, "dnsproxy_allow", sizeof(fqdn_allow_key),
                       sizeof(fqdn_allow_value), max_entries, &opts));
  if (fd.get() < 0) return fail_errno("creating the L3 allow map");
  return AllowMap(std::move(fd));
}

Result<AllowMap> AllowMap::open_pinned(const std::string& path) {
  Fd fd(bpf_obj_get(path.c_str()));
  if (fd.get() < 0) return fail_errno("opening the pinned allow map " + path);
  bpf_map_info info{};
  __u32 length = sizeof(info);
  if (bpf_obj_get_info_by_fd(fd.get(), &info, &length) != 0)
    return fail_errno("reading the allow map's type " + path);
  if (info.type != BPF_MAP_TYPE_HASH || info.key_size != sizeof(fqdn_allow_key) ||
      info.value_size != sizeof(fqdn_allow_value))
    return fail(path,
                ": not an allow map (want a hash of struct fqdn_allow_key -> "
                "struct fqdn_allow_value, ",
                std::to_string(sizeof(fqdn_allow_key)), " -> ",
                std::to_string(sizeof(fqdn_allow_value)), " bytes)");
  return AllowMap(std::move(fd));
}

Result<void> AllowMap::pin(const std::string& path) const {
  if (bpf_obj_pin(fd_.get(), path.c_str()) != 0)
    return fail_errno("pinning the allow map at " + path);
  return {};
}

Result<void> AllowMap::allow(uint32_t endpoint_id, const policy::IpAddress& ip,
                             Clock::time_point expires) const {
  const fqdn_allow_key key = to_key(endpoint_id, ip);
  fqdn_allow_value value{.expires_ns = to_ns(expires)};
  fqdn_allow_value current{};
  if (bpf_map_lookup_elem(fd_.get(), &key, &current) == 0 && current.expires_ns > value.expires_ns)
    return {};
  if (bpf_map_update_elem(fd_.get(), &key, &value, BPF_ANY) != 0)
    return fail_errno("allowing " + ip.to_string() + " for endpoint " +
                      std::to_string(endpoint_id) + (errno == E2BIG ? " (allow map full)" : ""));
  return {};
}

Result<bool> AllowMap::allows(uint32_t endpoint_id, const policy::IpAddress& ip,
                              Clock::time_point now) const {
  const fqdn_allow_key key = to_key(endpoint_id, ip);
  fqdn_allow_value value{};
  if (bpf_map_lookup_elem(fd_.get(), &key, &value) != 0) {
    if (errno == ENOENT) return false;
    return fail_errno("reading the allow map");
  }
  return value.expires_ns > to_ns(now);
}

Result<bool> AllowMap::remove_if_expired(uint32_t endpoint_id, const policy::IpAddress& ip,
                                         Clock::time_point now) const {
  // The caller is the map's only writer, so nothing extends the entry between the read and the
  // delete.
  auto live = allows(endpoint_id, ip, now);
  if (!live) return tl::unexpected(live.error());
  if (*live) return false;
  const fqdn_allow_key key = to_key(endpoint_id, ip);
  if (bpf_map_delete_elem(fd_.get(), &key) != 0) {
    if (errno == ENOENT) return false;
    return fail_errno("deleting from the allow map");
  }
  return true;
}

Result<void> AllowMap::for_each(
    const std::function<void(uint32_t, const policy::IpAddress&, Clock::time_point)>& visit) const {
  const int err = for_each_map_entry<fqdn_allow_key, fqdn_allow_value>(
      fd_.get(), [&](const fqdn_allow_key& key, const fqdn_allow_value& value) {
        policy::IpAddress ip;
        ip.family = static_cast<policy::Family>(key.family);
        std::memcpy(ip.bytes.data(), key.addr, sizeof key.addr);
        visit(key.endpoint_id, ip,
              Clock::time_point(std::chrono::nanoseconds(static_cast<int64_t>(value.expires_ns))));
      });
  if (err != 0) return fail("walking the allow map: ", std::strerror(err));
  return {};
}

Result<size_t> AllowMap::size() const {
  size_t count = 0;
  const int err = for_each_map_entry<fqdn_allow_key, fqdn_allow_value>(
      fd_.get(), [&](const fqdn_allow_key&, const fqdn_allow_value&) { ++count; });
  if (err != 0) return fail("walking the allow map: ", std::strerror(err));
  return count;
}

}  // namespace dnsproxy::datapath::agent
