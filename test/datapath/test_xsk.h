// A minimal AF_XDP socket for the datapath tests (copy mode, one UMEM of its own, created with
// XSK_LIBXDP_FLAGS__INHIBIT_PROG_LOAD as dnsproxyd's sockets are): something real to put into
// dns_steer's XSKMAP, and to receive a steered frame with its metadata. Not the xsk/ layer.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "datapath/abi.h"

struct xsk_umem;
struct xsk_socket;

namespace dnsproxy::datapath::test {

struct ReceivedFrame {
  std::vector<uint8_t> frame;
  dns_steer_meta meta{};  // the bytes in front of the frame, as dns_steer wrote them
};

class TestXsk {
 public:
  // Binds to (ifname, queue) in the calling thread's network namespace.
  static Result<std::unique_ptr<TestXsk>> create(const std::string& ifname, uint32_t queue);
  TestXsk(const TestXsk&) = delete;
  TestXsk& operator=(const TestXsk&) = delete;
  ~TestXsk();

  int fd() const;
  // Waits up to `timeout_ms` for one frame.
  std::optional<ReceivedFrame> receive(int timeout_ms);

 private:
  struct Rings;
  TestXsk();
  void* buffer_ = nullptr;
  xsk_umem* umem_ = nullptr;
  xsk_socket* socket_ = nullptr;
  std::unique_ptr<Rings> rings_;
};

}  // namespace dnsproxy::datapath::test
