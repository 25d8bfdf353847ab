// Privilege checks for tests labelled `privileged` and `e2e`: they skip, with a message that says
// what is missing, instead of failing on a machine without CAP_BPF / CAP_NET_ADMIN.
#pragma once

#include <string>

namespace dnsproxy::test {

// Empty when the process holds CAP_BPF, CAP_NET_ADMIN and CAP_SYS_ADMIN in its effective set;
// otherwise the names of the missing ones, e.g. "CAP_BPF CAP_NET_ADMIN".
std::string missing_capabilities();

}  // namespace dnsproxy::test

// Use as the first statement of a privileged test.
#define DNSPROXY_REQUIRE_PRIVILEGES()                                              \
  do {                                                                             \
    const std::string dnsproxy_missing = ::dnsproxy::test::missing_capabilities(); \
    if (!dnsproxy_missing.empty())                                                 \
      GTEST_SKIP() << "needs " << dnsproxy_missing << " (run as root): skipping";  \
  } while (0)
