#include "test/support/bpffs.h"

#include <sys/mount.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <utility>

namespace dnsproxy::test {

Result<BpfFsMount> BpfFsMount::create() {
  char path[] = "/tmp/dnsproxy-bpffs-XXXXXX";
  if (!mkdtemp(path)) return fail("mkdtemp: ", std::strerror(errno));
  if (mount("bpf", path, "bpf", 0, nullptr) != 0) {
    const int err = errno;
    rmdir(path);
    return fail("mount -t bpf bpf ", path, ": ", std::strerror(err));
  }
  return BpfFsMount(path);
}

BpfFsMount::BpfFsMount(BpfFsMount&& other) noexcept : path_(std::exchange(other.path_, {})) {}

BpfFsMount& BpfFsMount::operator=(BpfFsMount&& other) noexcept {
  if (this != &other) {
    destroy();
    path_ = std::exchange(other.path_, {});
  }
  return *this;
}

BpfFsMount::~BpfFsMount() {
  destroy();
}

void BpfFsMount::destroy() noexcept {
  if (path_.empty()) return;
  umount2(path_.c_str(), MNT_DETACH);
  rmdir(path_.c_str());
  path_.clear();
}

}  // namespace dnsproxy::test
