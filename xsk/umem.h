// One UMEM: a locked memory area cut into equal frames, registered with the kernel, shared by all
// the AF_XDP sockets of one worker so that forwarding between interfaces is a descriptor move.
//
// Ownership: the worker owns its Umem and its Sockets; the Sockets must be destroyed first (the
// kernel keeps the UMEM registered while a socket uses it). Which frame is where is the job of
// the FramePool inside (see frame_pool.h).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "common/result.h"
#include "xsk/frame_pool.h"

struct xsk_umem;
struct xsk_ring_prod;
struct xsk_ring_cons;

namespace dnsproxy::xsk {

struct UmemConfig {
  uint32_t frame_count = 16384;
  uint32_t frame_size = 2048;  // power of two in [2048, 4096]: aligned chunk mode
  uint32_t ring_size = 2048;   // fill and completion rings of every socket (power of two)
};

[[nodiscard]] Result<void> validate(const UmemConfig& config);

class Umem {
 public:
  // Maps and registers the area. Registration pins the pages: without CAP_IPC_LOCK the area
  // must fit in RLIMIT_MEMLOCK, and the error says so.
  [[nodiscard]] static Result<std::unique_ptr<Umem>> create(const UmemConfig& config);
  ~Umem();
  Umem(const Umem&) = delete;
  Umem& operator=(const Umem&) = delete;

  // The bytes at UMEM offset `addr` (a descriptor address). Valid while the Umem lives.
  [[nodiscard]] std::byte* data(uint64_t addr) noexcept { return area_ + addr; }
  [[nodiscard]] size_t size() const noexcept { return size_; }
  [[nodiscard]] FramePool& pool() noexcept { return pool_; }
  [[nodiscard]] const FramePool& pool() const noexcept { return pool_; }
  [[nodiscard]] const UmemConfig& config() const noexcept { return config_; }
  [[nodiscard]] xsk_umem* handle() noexcept { return umem_; }

 private:
  Umem(const UmemConfig& config, std::byte* area, size_t size);

  UmemConfig config_;
  std::byte* area_;
  size_t size_;
  xsk_umem* umem_ = nullptr;
  // libxdp creates the first fill/completion ring pair with the UMEM and hands it to the first
  // socket bound; these hold it until then.
  std::unique_ptr<xsk_ring_prod> initial_fill_;
  std::unique_ptr<xsk_ring_cons> initial_completion_;
  FramePool pool_;
};

}  // namespace dnsproxy::xsk
