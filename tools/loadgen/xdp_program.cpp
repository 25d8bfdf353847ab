#include "tools/loadgen/xdp_program.h"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/if_link.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "loadgen_rx.skel.h"

namespace dnsproxy::loadgen {
namespace {
constexpr uint64_t kMaxBatch = 64;  // the peer's NAPI budget: a batch never overflows its ring
}  // namespace

Result<std::unique_ptr<XdpProgram>> XdpProgram::attach(const XdpProgramConfig& config) {
  std::unique_ptr<XdpProgram> self(new XdpProgram(config.ifindex));
  self->skel_ = loadgen_rx::open();
  if (self->skel_ == nullptr) return fail("cannot open the loadgen_rx BPF program");
  auto& settings = self->skel_->rodata->loadgen_rx_config;
  settings.server_port = htons(config.server_port);
  settings.first_port = config.first_port;
  settings.port_count = config.port_count;
  settings.ids_per_port = config.ids_per_port;
  settings.template_count = static_cast<uint32_t>(config.templates.size());
  if (!config.templates.empty() &&
      bpf_map__set_max_entries(self->skel_->maps.loadgen_templates,
                               static_cast<uint32_t>(config.templates.size())) != 0)
    return fail("cannot size loadgen_templates for ", std::to_string(config.templates.size()),
                " queries");
  if (const int err = loadgen_rx::load(self->skel_); err != 0)
    return fail("cannot load the loadgen_rx BPF program: ", std::strerror(-err));
  if (auto filled = self->fill_templates(config.templates); !filled)
    return tl::unexpected(filled.error());
  const int fd = bpf_program__fd(self->skel_->progs.loadgen_rx);
  for (const uint32_t flags : {config.generic ? 0u : XDP_FLAGS_DRV_MODE, XDP_FLAGS_SKB_MODE}) {
    const int err = bpf_xdp_attach(static_cast<int>(config.ifindex), fd,
                                   flags | XDP_FLAGS_UPDATE_IF_NOEXIST, nullptr);
    if (err == 0) {
      self->flags_ = flags;
      return self;
    }
    if (err == -EBUSY || err == -EEXIST)
      return fail("another XDP program is attached to the interface: detach it first");
  }
  return fail("cannot attach the loadgen_rx XDP program in native or generic mode");
}

// The templates go into the map; the first one, behind the seed metadata, is test_run's frame
// (the program rewrites it per run anyway).
Result<void> XdpProgram::fill_templates(const std::vector<loadgen_template>& templates) {
  const int map = bpf_map__fd(skel_->maps.loadgen_templates);
  for (uint32_t i = 0; i < templates.size(); ++i)
    if (bpf_map_update_elem(map, &i, &templates[i], BPF_ANY) != 0)
      return fail("cannot fill loadgen_templates: ", std::strerror(errno));
  if (templates.empty()) return {};
  const uint32_t seed = LOADGEN_TX_SEED;
  seed_.resize(sizeof(seed) + templates.front().length);
  std::memcpy(seed_.data(), &seed, sizeof(seed));
  std::memcpy(seed_.data() + sizeof(seed), templates.front().frame, templates.front().length);
  return {};
}

XdpProgram::~XdpProgram() {
  if (flags_ >= 0)
    bpf_xdp_detach(static_cast<int>(ifindex_), static_cast<uint32_t>(flags_), nullptr);
  if (skel_ != nullptr) loadgen_rx::destroy(skel_);
}

bool XdpProgram::generic() const noexcept {
  return flags_ == XDP_FLAGS_SKB_MODE;
}

int XdpProgram::xsks_fd() const noexcept {
  return bpf_map__fd(skel_->maps.loadgen_xsks);
}

uint64_t XdpProgram::transmit(uint64_t first, uint64_t count) noexcept {
  skel_->bss->loadgen_tx_next = first;
  xdp_md context{};
  context.data = sizeof(uint32_t);  // test_run: the first `data` bytes of data_in are metadata
  context.data_end = static_cast<uint32_t>(seed_.size());
  context.ingress_ifindex = ifindex_;  // where XDP_TX sends
  LIBBPF_OPTS(bpf_test_run_opts, options, .data_in = seed_.data(),
              .data_size_in = static_cast<uint32_t>(seed_.size()), .ctx_in = &context,
              .ctx_size_in = sizeof(context), .repeat = static_cast<int>(count),
              .flags = BPF_F_TEST_XDP_LIVE_FRAMES,
              // The kernel sets up a page per frame of a batch: no more than will be sent.
              .batch_size = static_cast<uint32_t>(std::min<uint64_t>(count, kMaxBatch)));
  if (bpf_prog_test_run_opts(bpf_program__fd(skel_->progs.loadgen_rx), &options) != 0 &&
      errno != EINTR)
    ++run_errors_;
  return skel_->bss->loadgen_tx_next - first;
}

uint64_t XdpProgram::build_failures() const noexcept {
  return skel_->bss->loadgen_tx_failed;
}

}  // namespace dnsproxy::loadgen
