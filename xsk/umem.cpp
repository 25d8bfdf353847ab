#include "xsk/umem.h"

#include <sys/mman.h>
#include <sys/resource.h>
#include <xdp/xsk.h>

#include <bit>
#include <cerrno>
#include <cstring>
#include <string>

#include "common/capabilities.h"

namespace dnsproxy::xsk {

Result<void> validate(const UmemConfig& config) {
  if (!std::has_single_bit(config.frame_size) || config.frame_size < 2048 ||
      config.frame_size > 4096)
    return fail("frame size ", std::to_string(config.frame_size), " must be 2048 or 4096");
  if (!std::has_single_bit(config.ring_size) || config.ring_size < 64)
    return fail("ring size ", std::to_string(config.ring_size), " must be a power of two >= 64");
  if (config.frame_count < config.ring_size)
    return fail("UMEM of ", std::to_string(config.frame_count), " frames cannot fill one ring of ",
                std::to_string(config.ring_size));
  return {};
}

namespace {

std::string memlock_explanation(size_t bytes) {
  rlimit limit{};
  getrlimit(RLIMIT_MEMLOCK, &limit);
  const std::string soft =
      limit.rlim_cur == RLIM_INFINITY ? "unlimited" : std::to_string(limit.rlim_cur);
  return "the kernel pins the UMEM (" + std::to_string(bytes) +
         " bytes), which needs CAP_IPC_LOCK or an RLIMIT_MEMLOCK at least that large (now " + soft +
         " bytes): run with CAP_IPC_LOCK, raise the limit, or lower --umem-frames / --frame-size";
}

}  // namespace

Umem::Umem(const UmemConfig& config, std::byte* area, size_t size)
    : config_(config),
      area_(area),
      size_(size),
      initial_fill_(std::make_unique<xsk_ring_prod>()),
      initial_completion_(std::make_unique<xsk_ring_cons>()),
      pool_(config.frame_count, config.frame_size) {}

Result<std::unique_ptr<Umem>> Umem::create(const UmemConfig& config) {
  if (auto valid = validate(config); !valid) return tl::unexpected(valid.error());
  const size_t size = size_t{config.frame_count} * config.frame_size;
  void* area = mmap(nullptr, size, PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
  if (area == MAP_FAILED)
    return fail("cannot map a UMEM of ", std::to_string(size), " bytes: ", std::strerror(errno));
  std::unique_ptr<Umem> umem(new Umem(config, static_cast<std::byte*>(area), size));

  const xsk_umem_config umem_config{.fill_size = config.ring_size,
                                    .comp_size = config.ring_size,
                                    .frame_size = config.frame_size,
                                    .frame_headroom = 0,
                                    .flags = 0};
  const int err = xsk_umem__create(&umem->umem_, area, size, umem->initial_fill_.get(),
                                   umem->initial_completion_.get(), &umem_config);
  if (err != 0) {
    umem->umem_ = nullptr;
    std::string why = std::string("cannot register the UMEM: ") + std::strerror(-err);
    // An AF_XDP socket (libxdp opens one to register the UMEM) needs CAP_NET_RAW: without it the
    // answer is EPERM, which is not about locked memory. Without CAP_IPC_LOCK the kernel charges
    // the pages to RLIMIT_MEMLOCK and answers ENOBUFS (ENOMEM / EPERM on older kernels) when they
    // do not fit.
    if (err == -EPERM && !has_effective_capability(CAP_NET_RAW))
      why += " (AF_XDP sockets need CAP_NET_RAW: run with it)";
    else if (err == -ENOBUFS || err == -ENOMEM || err == -EPERM)
      why += " (" + memlock_explanation(size) + ")";
    return tl::unexpected(Error{std::move(why)});
  }
  return umem;
}

Umem::~Umem() {
  if (umem_ != nullptr) xsk_umem__delete(umem_);
  munmap(area_, size_);
}

}  // namespace dnsproxy::xsk
