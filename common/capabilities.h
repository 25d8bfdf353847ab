// The calling thread's capabilities (capget/capset(2) directly: two syscalls do not justify a
// libcap dependency). Cold path only.
#pragma once

#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <string>

#include "common/result.h"

namespace dnsproxy {

// Bit `cap` set in a 64-bit capability mask.
[[nodiscard]] constexpr uint64_t capability_bit(int cap) noexcept {
  return uint64_t{1} << cap;
}

struct CapabilitySets {
  uint64_t effective = 0, permitted = 0, inheritable = 0;
};

[[nodiscard]] inline Result<CapabilitySets> current_capabilities() {
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};
  if (syscall(SYS_capget, &header, data) != 0) return fail("capget: ", std::strerror(errno));
  const auto join = [](uint32_t low, uint32_t high) { return uint64_t{high} << 32 | low; };
  return CapabilitySets{join(data[0].effective, data[1].effective),
                        join(data[0].permitted, data[1].permitted),
                        join(data[0].inheritable, data[1].inheritable)};
}

[[nodiscard]] inline bool has_effective_capability(int cap) {
  auto sets = current_capabilities();
  return sets && (sets->effective & capability_bit(cap)) != 0;
}

// Keeps only `keep` (a mask) in the effective and permitted sets, clears the inheritable and
// ambient sets, and drops everything else from the bounding set, so neither this thread, nor the
// threads it starts afterwards, nor anything they exec can regain a dropped capability. Threads
// started before keep theirs: call it before starting any.
[[nodiscard]] inline Result<void> keep_only_capabilities(uint64_t keep) {
  auto sets = current_capabilities();
  if (!sets) return tl::unexpected(sets.error());
  // The bounding set first: dropping from it needs CAP_SETPCAP, which the capset below removes.
  if ((sets->effective & capability_bit(CAP_SETPCAP)) != 0)
    for (int cap = 0; cap <= CAP_LAST_CAP; ++cap)
      if ((keep & capability_bit(cap)) == 0 && prctl(PR_CAPBSET_READ, cap, 0, 0, 0) == 1 &&
          prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0)
        return fail("PR_CAPBSET_DROP ", std::to_string(cap), ": ", std::strerror(errno));
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL)
    return fail("PR_CAP_AMBIENT_CLEAR_ALL: ", std::strerror(errno));
  const uint64_t permitted = sets->permitted & keep;
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};
  data[0].effective = data[0].permitted = static_cast<uint32_t>(permitted);
  data[1].effective = data[1].permitted = static_cast<uint32_t>(permitted >> 32);
  if (syscall(SYS_capset, &header, data) != 0) return fail("capset: ", std::strerror(errno));
  return {};
}

}  // namespace dnsproxy
