// A private bpf filesystem for one test: pins of the code under test go here, never into the
// host's /sys/fs/bpf (which may not even be mounted). Unmounted (lazily, so open fds stay valid)
// and its directory removed on destruction.
#pragma once

#include <string>

#include "common/result.h"

namespace dnsproxy::test {

class BpfFsMount {
 public:
  static Result<BpfFsMount> create();  // mounts bpffs on a fresh /tmp/dnsproxy-bpffs-XXXXXX

  BpfFsMount(BpfFsMount&& other) noexcept;
  BpfFsMount& operator=(BpfFsMount&& other) noexcept;
  BpfFsMount(const BpfFsMount&) = delete;
  BpfFsMount& operator=(const BpfFsMount&) = delete;
  ~BpfFsMount();

  const std::string& path() const { return path_; }

 private:
  explicit BpfFsMount(std::string path) : path_(std::move(path)) {}
  void destroy() noexcept;
  std::string path_;
};

}  // namespace dnsproxy::test
