#include "test/support/privileges.h"

#include <linux/capability.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdint>

namespace dnsproxy::test {
namespace {

// Reads the effective capability set straight from the kernel: no libcap dependency.
uint64_t effective_capabilities() {
  __user_cap_header_struct header{};
  header.version = _LINUX_CAPABILITY_VERSION_3;
  __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3]{};
  if (syscall(SYS_capget, &header, data) != 0) return 0;
  return static_cast<uint64_t>(data[1].effective) << 32 | data[0].effective;
}

}  // namespace

std::string missing_capabilities() {
  struct Needed {
    int bit;
    const char* name;
  };
  // CAP_SYS_ADMIN: network namespaces and BPF_PROG_TEST_RUN on older kernels.
  static constexpr Needed kNeeded[] = {
      {CAP_BPF, "CAP_BPF"}, {CAP_NET_ADMIN, "CAP_NET_ADMIN"}, {CAP_SYS_ADMIN, "CAP_SYS_ADMIN"}};
  const uint64_t effective = effective_capabilities();
  std::string missing;
  for (const Needed& cap : kNeeded) {
    if (effective & (uint64_t{1} << cap.bit)) continue;
    if (!missing.empty()) missing += ' ';
    missing += cap.name;
  }
  return missing;
}

}  // namespace dnsproxy::test
