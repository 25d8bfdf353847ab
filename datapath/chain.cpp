#include "datapath/chain.h"

#include <bpf/bpf.h>
#include <linux/bpf.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <string_view>
#include <utility>

namespace dnsproxy::datapath {
namespace {

// How a dns_steer is recognised in someone's slot: its kernel-visible name, and the name of the
// map it chains through (the same names the direct attach and the package manifest use).
constexpr std::string_view kSteerName = "dns_steer";
constexpr std::string_view kNextMapName = "dns_steer_next";
// A stale dns_steer behind a stale dns_steer (two dead runs on different pin_dirs) is followed;
// a loop of them is not a chain anyone built, so the walk stops.
constexpr int kMaxStaleHops = 8;

std::string errno_text(int err) {
  return std::strerror(err);
}

struct ProgInfo {
  std::string name;
  std::array<uint32_t, 16> map_ids{};
  uint32_t map_count = 0;
};

Result<ProgInfo> prog_info(int prog_fd) {
  ProgInfo out;
  bpf_prog_info info{};
  info.nr_map_ids = out.map_ids.size();
  info.map_ids = reinterpret_cast<uintptr_t>(out.map_ids.data());
  uint32_t length = sizeof(info);
  if (bpf_obj_get_info_by_fd(prog_fd, &info, &length) != 0) {
    return fail("reading program info: ", errno_text(errno));
  }
  out.name = info.name;
  out.map_count = std::min<uint32_t>(info.nr_map_ids, out.map_ids.size());
  return out;
}

// A stale dns_steer's own dns_steer_next: the program in its slot 0 (0: it chained to nothing)
// and an fd of the map (-1 if it has none), which keeps the map's entries alive while held: the
// kernel empties a program array once no fd or pin refers to it, and its pin is about to go.
struct StaleNext {
  uint32_t id = 0;
  int map_fd = -1;
};
Result<StaleNext> stale_next(const ProgInfo& stale) {
  for (uint32_t i = 0; i < stale.map_count; ++i) {
    const int map_fd = bpf_map_get_fd_by_id(stale.map_ids[i]);
    if (map_fd < 0) continue;  // gone meanwhile
    bpf_map_info info{};
    uint32_t length = sizeof(info);
    if (bpf_obj_get_info_by_fd(map_fd, &info, &length) != 0 || kNextMapName != info.name ||
        info.type != BPF_MAP_TYPE_PROG_ARRAY) {
      close(map_fd);
      continue;
    }
    auto id = prog_array_slot0(map_fd);
    if (!id) {
      close(map_fd);
      return tl::unexpected(id.error());
    }
    return StaleNext{*id, map_fd};
  }
  return StaleNext{};
}

}  // namespace

Result<uint32_t> prog_array_slot0(int map_fd) {
  const uint32_t key = 0;
  uint32_t id = 0;
  // From user space, a program array's lookup returns the program's id (not an fd).
  if (bpf_map_lookup_elem(map_fd, &key, &id) == 0) return id;
  if (errno == ENOENT) return 0u;
  return fail("reading slot 0 of the program array: ", errno_text(errno));
}

Result<ChainSlot> ChainSlot::open(const std::string& path) {
  ChainSlot slot;
  slot.path_ = path;
  slot.map_fd_ = bpf_obj_get(path.c_str());
  if (slot.map_fd_ < 0) {
    return fail("--chain-into ", path, ": ", errno_text(errno),
                " (expected the program array pinned by the interface's XDP owner, e.g. "
                "/sys/fs/bpf/<iface>/xdp-root/<version>/xdp_root_array)");
  }
  bpf_map_info info{};
  uint32_t length = sizeof(info);
  if (bpf_obj_get_info_by_fd(slot.map_fd_, &info, &length) != 0) {
    return fail("--chain-into ", path, " is not a BPF map: ", errno_text(errno));
  }
  if (info.type != BPF_MAP_TYPE_PROG_ARRAY) {
    return fail("--chain-into ", path, " is map '", info.name, "' of type ",
                std::to_string(info.type), ", not a program array (BPF_MAP_TYPE_PROG_ARRAY)");
  }

  auto id = prog_array_slot0(slot.map_fd_);
  if (!id) return fail("--chain-into ", path, ": ", id.error().message);
  for (int hop = 0; *id != 0; ++hop) {
    if (hop == kMaxStaleHops) {
      return fail("--chain-into ", path, ": more than ", std::to_string(kMaxStaleHops),
                  " stale dns_steer programs chained behind each other; clear slot 0 by hand");
    }
    const int prog_fd = bpf_prog_get_fd_by_id(*id);
    if (prog_fd < 0) {
      if (errno == ENOENT) break;  // unloaded meanwhile: nothing to chain to
      return fail("--chain-into ", path, ": opening program id ", std::to_string(*id),
                  " in slot 0: ", errno_text(errno));
    }
    auto info_of = prog_info(prog_fd);
    if (!info_of) {
      close(prog_fd);
      return fail("--chain-into ", path, ": ", info_of.error().message);
    }
    if (kSteerName != info_of->name) {
      slot.next_fd_ = prog_fd;  // the program we go in front of
      slot.next_id_ = *id;
      break;
    }
    close(prog_fd);
    auto next = stale_next(*info_of);
    if (!next) return fail("--chain-into ", path, ": stale dns_steer: ", next.error().message);
    if (slot.stale_id_ == 0) {
      slot.stale_id_ = *id;
      slot.stale_next_map_fd_ = next->map_fd;  // held until insert() replaced the stale one
    } else if (next->map_fd >= 0) {
      close(next->map_fd);
    }
    id = next->id;
  }
  return slot;
}

ChainSlot::ChainSlot(ChainSlot&& other) noexcept
    : path_(std::move(other.path_)),
      map_fd_(std::exchange(other.map_fd_, -1)),
      next_fd_(std::exchange(other.next_fd_, -1)),
      next_id_(other.next_id_),
      stale_id_(other.stale_id_),
      stale_next_map_fd_(std::exchange(other.stale_next_map_fd_, -1)),
      inserted_id_(std::exchange(other.inserted_id_, 0)) {}

ChainSlot::~ChainSlot() {
  if (stale_next_map_fd_ >= 0) close(stale_next_map_fd_);
  if (next_fd_ >= 0) close(next_fd_);
  if (map_fd_ >= 0) close(map_fd_);
}

Result<void> ChainSlot::insert(int prog_fd) {
  bpf_prog_info info{};
  uint32_t length = sizeof(info);
  if (bpf_obj_get_info_by_fd(prog_fd, &info, &length) != 0) {
    return fail("reading dns_steer's program info: ", errno_text(errno));
  }
  const uint32_t key = 0;
  const uint32_t value = static_cast<uint32_t>(prog_fd);
  if (bpf_map_update_elem(map_fd_, &key, &value, BPF_ANY) != 0) {
    const int err = errno;
    return fail("putting dns_steer into slot 0 of ", path_, ": ", errno_text(err),
                err == EINVAL ? " (the array's owner is not an XDP program, or its programs "
                                "differ from dns_steer in JIT or XDP-frags support)"
                              : "");
  }
  inserted_id_ = info.id;
  // The stale dns_steer is out of the slot: its next map may be emptied now.
  if (stale_next_map_fd_ >= 0) close(std::exchange(stale_next_map_fd_, -1));
  return {};
}

Result<void> ChainSlot::restore() {
  if (inserted_id_ == 0) return {};
  auto current = prog_array_slot0(map_fd_);
  if (!current) return fail("restoring slot 0 of ", path_, ": ", current.error().message);
  const uint32_t ours = std::exchange(inserted_id_, 0);
  if (*current != ours) return {};  // rearranged by someone else since: theirs now
  const uint32_t key = 0;
  if (next_fd_ >= 0) {
    const uint32_t value = static_cast<uint32_t>(next_fd_);
    if (bpf_map_update_elem(map_fd_, &key, &value, BPF_ANY) != 0) {
      return fail("putting program id ", std::to_string(next_id_), " back into slot 0 of ", path_,
                  ": ", errno_text(errno));
    }
  } else if (bpf_map_delete_elem(map_fd_, &key) != 0 && errno != ENOENT) {
    return fail("emptying slot 0 of ", path_, ": ", errno_text(errno));
  }
  return {};
}

}  // namespace dnsproxy::datapath
