#include "datapath/steer_program.h"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fcntl.h>
#include <linux/if_link.h>
#include <linux/magic.h>
#include <net/if.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>
#include <xdp/libxdp.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdlib>
#include <cstring>

// The skeleton's .rodata struct uses the ABI types, so the ABI header comes first.
#include "datapath/abi.h"
#include "dns_steer.skel.h"

namespace dnsproxy::datapath {
namespace {

// The kernel-visible name of our program (15 characters max): how a stale run is recognised.
constexpr std::string_view kProgramName = "dns_steer";

std::string errno_text(int err) {
  return std::strerror(err);
}

std::string libxdp_error(int err) {
  char text[256];
  libxdp_strerror(err, text, sizeof(text));
  return text;
}

xdp_attach_mode to_libxdp(XdpMode mode) {
  return mode == XdpMode::kGeneric ? XDP_MODE_SKB : XDP_MODE_NATIVE;
}

std::string interface_label(const Attachment& attachment) {
  return attachment.interface + " (ifindex " + std::to_string(attachment.ifindex) + ")";
}

Result<void> validate(std::span<const std::string> interfaces, const SteerSettings& settings) {
  if (interfaces.empty()) return fail("no interface to attach dns_steer to");
  if (interfaces.size() > DNS_STEER_MAX_IFACES) {
    return fail("dns_steer serves at most ", std::to_string(DNS_STEER_MAX_IFACES), " interfaces, ",
                std::to_string(interfaces.size()), " given");
  }
  for (size_t i = 0; i < interfaces.size(); ++i) {
    if (std::find(interfaces.begin(), interfaces.begin() + i, interfaces[i]) !=
        interfaces.begin() + i) {
      return fail("interface ", interfaces[i], " given twice");
    }
  }
  if (settings.dns_ports.empty() || settings.dns_ports.size() > DNS_STEER_MAX_PORTS) {
    return fail("dns_steer takes 1 to ", std::to_string(DNS_STEER_MAX_PORTS), " DNS ports, ",
                std::to_string(settings.dns_ports.size()), " given");
  }
  for (uint16_t port : settings.dns_ports) {
    if (port == 0) return fail("DNS port 0 is not a port");
  }
  if (settings.pin_dir.empty() || settings.pin_dir.front() != '/') {
    return fail("pin_dir must be an absolute path, got '", settings.pin_dir, "'");
  }
  return {};
}

bool on_bpffs(const std::string& path) {
  struct statfs fs {};
  return statfs(path.c_str(), &fs) == 0 && fs.f_type == BPF_FS_MAGIC;
}

// SteerSettings::mount_bpffs: returns whether a bpf filesystem was mounted on kBpffsMountPoint.
Result<bool> mount_bpffs_for(const SteerSettings& settings) {
  const std::string parent = settings.pin_dir.substr(0, settings.pin_dir.find_last_of('/'));
  if (!settings.mount_bpffs || parent != kBpffsMountPoint || on_bpffs(kBpffsMountPoint))
    return false;
  if (mount("bpf", kBpffsMountPoint, "bpf", 0, "mode=0700") != 0) {
    return fail("mounting a bpf filesystem on ", kBpffsMountPoint, " for pin_dir ",
                settings.pin_dir, ": ", errno_text(errno));
  }
  return true;
}

// The maps pinned under pin_dir, by their names.
std::array<bpf_map*, 5> pinned_maps(const dns_steer& skeleton) {
  return {skeleton.maps.dns_steer_stats, skeleton.maps.dns_steer_xsks,
          skeleton.maps.dns_steer_ifaces, skeleton.maps.dns_steer_next,
          skeleton.maps.dns_steer_sources};
}

// Detaches a dns_steer left on the interface by a dead run (we hold the pin_dir lock, so no live
// instance owns it). Any other XDP program is left alone: as the interface's single program it
// blocks us (error); as a dispatcher component it simply keeps running beside us.
// Returns whether a stale dns_steer was removed.
Result<bool> remove_stale_program(const Attachment& attachment) {
  xdp_multiprog* multiprog = xdp_multiprog__get_from_ifindex(static_cast<int>(attachment.ifindex));
  const long err = libxdp_get_error(multiprog);
  if (err == -ENOENT || (!err && !multiprog)) return false;  // nothing attached
  if (err) {
    return fail("inspecting XDP programs on ", interface_label(attachment), ": ",
                libxdp_error(static_cast<int>(err)));
  }
  Result<bool> outcome = false;
  if (xdp_multiprog__is_legacy(multiprog)) {
    xdp_program* main = xdp_multiprog__main_prog(multiprog);
    const char* name = main ? xdp_program__name(main) : nullptr;
    if (name && kProgramName == name) {
      const int detached = xdp_multiprog__detach(multiprog);
      if (detached != 0) {
        outcome = fail("detaching the stale dns_steer from ", interface_label(attachment), ": ",
                       libxdp_error(detached));
      } else {
        outcome = true;
      }
    } else if (main) {
      outcome = fail("interface ", interface_label(attachment), " already runs XDP program '",
                     name ? name : "?", "' (id ", std::to_string(xdp_program__id(main)),
                     "); dnsproxy only replaces its own dns_steer: detach it first "
                     "(ip link set dev ",
                     attachment.interface, " xdp off)");
    }
  } else {
    const xdp_attach_mode mode = xdp_multiprog__attach_mode(multiprog);
    for (xdp_program* component = xdp_multiprog__next_prog(nullptr, multiprog); component;
         component = xdp_multiprog__next_prog(component, multiprog)) {
      if (kProgramName != xdp_program__name(component)) continue;
      const int detached =
          xdp_program__detach(component, static_cast<int>(attachment.ifindex), mode, 0);
      if (detached != 0) {
        outcome = fail("detaching the stale dns_steer from the dispatcher on ",
                       interface_label(attachment), ": ", libxdp_error(detached));
        break;
      }
      outcome = true;
    }
  }
  xdp_multiprog__close(multiprog);
  return outcome;
}

// The skeleton over `object`, or over the embedded bytes when it is empty. For another object the
// skeleton's own open runs with its embedded bytes swapped for `object` (which must outlive the
// skeleton): maps and programs are then found by name, as for the embedded copy.
dns_steer* open_skeleton(const std::vector<uint8_t>& object) {
  if (object.empty()) return dns_steer::open();
  auto* skeleton = static_cast<dns_steer*>(calloc(1, sizeof(dns_steer)));
  if (!skeleton) {
    errno = ENOMEM;
    return nullptr;
  }
  int err = dns_steer__create_skeleton(skeleton);
  if (err == 0) {
    skeleton->skeleton->data = const_cast<uint8_t*>(object.data());
    skeleton->skeleton->data_sz = object.size();
    err = bpf_object__open_skeleton(skeleton->skeleton, nullptr);
  }
  if (err != 0) {
    dns_steer::destroy(skeleton);
    errno = -err;
    return nullptr;
  }
  return skeleton;
}

AttachKind attach_kind_of(uint32_t ifindex) {
  xdp_multiprog* multiprog = xdp_multiprog__get_from_ifindex(static_cast<int>(ifindex));
  if (libxdp_get_error(multiprog) || !multiprog) return AttachKind::kSingleProgram;
  const bool legacy = xdp_multiprog__is_legacy(multiprog);
  xdp_multiprog__close(multiprog);
  return legacy ? AttachKind::kSingleProgram : AttachKind::kDispatcher;
}

// XDP program on `ifindex` (as the kernel reports it) -> the mode it runs in; kAuto: none.
XdpMode owner_mode(uint32_t ifindex) {
  LIBBPF_OPTS(bpf_xdp_query_opts, query);
  if (bpf_xdp_query(static_cast<int>(ifindex), 0, &query) != 0) return XdpMode::kAuto;
  switch (query.attach_mode) {
    case XDP_ATTACHED_SKB:
      return XdpMode::kGeneric;
    case XDP_ATTACHED_DRV:
    case XDP_ATTACHED_HW:
    case XDP_ATTACHED_MULTI:
      return XdpMode::kNative;
    default:
      return XdpMode::kAuto;
  }
}

}  // namespace

Result<XdpMode> parse_xdp_mode(std::string_view text) {
  if (text == "auto") return XdpMode::kAuto;
  if (text == "native") return XdpMode::kNative;
  if (text == "generic") return XdpMode::kGeneric;
  return fail("unsupported XDP mode '", std::string(text), "' (use auto, native or generic)");
}

std::string_view to_string(XdpMode mode) {
  switch (mode) {
    case XdpMode::kAuto:
      return "auto";
    case XdpMode::kNative:
      return "native";
    case XdpMode::kGeneric:
      return "generic";
  }
  return "?";
}

std::string_view to_string(AttachKind kind) {
  switch (kind) {
    case AttachKind::kDispatcher:
      return "libxdp dispatcher";
    case AttachKind::kSingleProgram:
      return "single program";
    case AttachKind::kChained:
      return "chained";
  }
  return "?";
}

Result<std::unique_ptr<SteerProgram>> SteerProgram::attach(std::span<const std::string> interfaces,
                                                           const SteerSettings& settings) {
  if (auto valid = validate(interfaces, settings); !valid) return tl::unexpected(valid.error());
  std::unique_ptr<SteerProgram> program(new SteerProgram());
  // On failure the destructor undoes whatever part was done: detach, unpin, unlock.
  if (auto done = program->load_and_attach(interfaces, settings); !done) {
    return tl::unexpected(done.error());
  }
  return program;
}

Result<void> SteerProgram::load_and_attach(std::span<const std::string> interfaces,
                                           const SteerSettings& settings) {
  uint32_t slot_base = 0;
  for (const std::string& name : interfaces) {
    const unsigned ifindex = if_nametoindex(name.c_str());
    if (ifindex == 0) {
      return fail("interface ", name,
                  " not found (in this network namespace): ", errno_text(errno));
    }
    // mode stays kAuto ("not attached") until attach_one succeeds: detach() relies on it.
    attachments_.push_back(
        Attachment{.interface = name, .ifindex = ifindex, .xsk_slot_base = slot_base});
    slot_base += DNS_STEER_MAX_QUEUES;
  }

  // pin_dir: on a bpf filesystem, locked for our lifetime, emptied of a dead run's pins.
  pin_dir_ = settings.pin_dir;
  auto mounted = mount_bpffs_for(settings);
  if (!mounted) return tl::unexpected(mounted.error());
  mounted_bpffs_ = *mounted;
  const bool created = mkdir(pin_dir_.c_str(), 0700) == 0;
  if (!created && errno != EEXIST) {
    return fail("creating pin_dir ", pin_dir_, ": ", errno_text(errno),
                " (is a bpf filesystem mounted? mount -t bpf bpf /sys/fs/bpf)");
  }
  if (!on_bpffs(pin_dir_)) {
    if (created) rmdir(pin_dir_.c_str());
    return fail("pin_dir ", pin_dir_, " is not on a bpf filesystem (mount -t bpf bpf <dir>)");
  }
  pin_dir_lock_fd_ = open(pin_dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (pin_dir_lock_fd_ < 0) return fail("opening pin_dir ", pin_dir_, ": ", errno_text(errno));
  if (flock(pin_dir_lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    close(pin_dir_lock_fd_);
    pin_dir_lock_fd_ = -1;
    return fail("pin_dir ", pin_dir_, " is in use by another running dnsproxy instance (",
                errno_text(err), ")");
  }

  // Before the stale pins go: a stale dns_steer in the slot leads to the program it chained to.
  if (!settings.chain_into.empty()) {
    auto slot = ChainSlot::open(settings.chain_into);
    if (!slot) return tl::unexpected(slot.error());
    chain_.emplace(std::move(*slot));
  }

  object_ = settings.object;
  skeleton_ = open_skeleton(object_);
  if (!skeleton_) {
    return fail("opening the dns_steer BPF object", object_.empty() ? "" : " of the package", ": ",
                errno_text(errno));
  }
  for (bpf_map* map : pinned_maps(*skeleton_)) {
    const std::string path = pin_dir_ + "/" + bpf_map__name(map);
    if (unlink(path.c_str()) == 0) {
      ++stale_pins_removed_;
    } else if (errno != ENOENT) {
      return fail("removing stale pin ", path, ": ", errno_text(errno));
    }
  }

  dns_steer_config& config = skeleton_->rodata->dns_steer_config;
  config = dns_steer_config{};
  for (size_t i = 0; i < settings.dns_ports.size(); ++i) {
    config.ports[i] = htons(settings.dns_ports[i]);
  }
  config.port_count = static_cast<uint8_t>(settings.dns_ports.size());
  config.fail_open = settings.fail_open ? 1 : 0;
  config.tcp_dns_drop = settings.tcp_dns_drop ? 1 : 0;
  if (chain_) return chain_into(settings.chain_into);

  // libxdp loads the object at the first attach: as a dispatcher component where the kernel
  // allows it, else as a plain XDP program.
  program_ = xdp_program__from_bpf_obj(skeleton_->obj, nullptr);
  if (const long err = libxdp_get_error(program_); err) {
    program_ = nullptr;
    return fail("preparing dns_steer for libxdp: ", libxdp_error(static_cast<int>(err)));
  }
  for (Attachment& attachment : attachments_) {
    auto stale = remove_stale_program(attachment);
    if (!stale) return tl::unexpected(stale.error());
    attachment.replaced_stale = *stale;
    if (auto attached = attach_one(attachment, settings.mode); !attached) return attached;
  }

  const IfaceMap ifaces(bpf_map__fd(skeleton_->maps.dns_steer_ifaces));
  for (const Attachment& attachment : attachments_) {
    if (auto set = ifaces.set(attachment.ifindex, attachment.xsk_slot_base); !set) return set;
  }
  return pin_maps();
}

Result<void> SteerProgram::attach_one(Attachment& attachment, XdpMode requested) {
  const int ifindex = static_cast<int>(attachment.ifindex);
  const auto try_mode = [&](XdpMode mode) {
    return xdp_program__attach(program_, ifindex, to_libxdp(mode), 0);
  };
  attachment.mode = XdpMode::kAuto;  // "not attached" until one succeeds
  if (requested == XdpMode::kAuto) {
    const int native = try_mode(XdpMode::kNative);
    if (native == 0) {
      attachment.mode = XdpMode::kNative;
    } else if (const int generic = try_mode(XdpMode::kGeneric); generic == 0) {
      attachment.mode = XdpMode::kGeneric;
    } else {
      return fail("attaching dns_steer to ", interface_label(attachment),
                  " failed in native mode (", libxdp_error(native), ") and in generic mode (",
                  libxdp_error(generic), ")");
    }
  } else if (const int err = try_mode(requested); err != 0) {
    std::string hint;
    if (requested == XdpMode::kNative && (err == -EOPNOTSUPP || err == -EINVAL)) {
      hint = "; the interface's driver may not support native XDP: use mode generic or auto";
    }
    return fail("attaching dns_steer to ", interface_label(attachment), " in ",
                std::string(to_string(requested)), " mode failed: ", libxdp_error(err), hint);
  } else {
    attachment.mode = requested;
  }
  attachment.kind = attach_kind_of(attachment.ifindex);
  return {};
}

// Order matters for a chain that never drops or skips a packet: our maps are pinned and our next
// program installed before the one update that puts dns_steer into the slot (datapath/chain.h).
Result<void> SteerProgram::chain_into(const std::string& path) {
  for (Attachment& attachment : attachments_) {
    const XdpMode mode = owner_mode(attachment.ifindex);
    if (mode == XdpMode::kAuto) {
      return fail("--chain-into ", path, ": no XDP program runs on ", interface_label(attachment),
                  ", so nothing would tail-call dns_steer there; attach the array's owner (e.g. "
                  "the L3AF root program) first, or drop --chain-into to attach directly");
    }
    attachment.kind = AttachKind::kChained;
    attachment.replaced_stale = chain_->replaced_stale();
    attachment.mode = mode;  // the owner's, for reports: detach() never detaches it
  }
  if (const int err = dns_steer::load(skeleton_); err != 0) {
    return fail("loading dns_steer: ", errno_text(-err));
  }
  const IfaceMap ifaces(bpf_map__fd(skeleton_->maps.dns_steer_ifaces));
  for (const Attachment& attachment : attachments_) {
    if (auto set = ifaces.set(attachment.ifindex, attachment.xsk_slot_base); !set) return set;
  }
  if (auto pinned = pin_maps(); !pinned) return pinned;
  if (chain_->next_fd() >= 0) {
    if (auto next = set_next_program(chain_->next_fd()); !next) return next;
  }
  return chain_->insert(program_fd());
}

Result<void> SteerProgram::pin_maps() {
  for (bpf_map* map : pinned_maps(*skeleton_)) {
    std::string path = pin_dir_ + "/" + bpf_map__name(map);
    if (const int err = bpf_map__pin(map, path.c_str()); err != 0) {
      return fail("pinning ", bpf_map__name(map), " at ", path, ": ", errno_text(-err));
    }
    pinned_.push_back(std::move(path));
  }
  return {};
}

SteerProgram::~SteerProgram() {
  (void)detach();
  if (program_) xdp_program__close(program_);
  if (skeleton_) dns_steer::destroy(skeleton_);
}

Result<void> SteerProgram::detach() {
  Result<void> first_error;
  const auto keep_first = [&](Result<void> step) {
    if (!step && first_error) first_error = std::move(step);
  };
  // First, while dns_steer still runs: the chain gets its old program back in one update.
  if (chain_) {
    keep_first(chain_->restore());
    chain_.reset();
  }
  for (const Attachment& attachment : attachments_) {
    if (attachment.mode == XdpMode::kAuto) continue;        // never attached
    if (attachment.kind == AttachKind::kChained) continue;  // restored above
    const int err = xdp_program__detach(program_, static_cast<int>(attachment.ifindex),
                                        to_libxdp(attachment.mode), 0);
    if (err != 0 && err != -ENOENT) {
      keep_first(
          fail("detaching dns_steer from ", interface_label(attachment), ": ", libxdp_error(err)));
    }
  }
  attachments_.clear();
  for (const std::string& path : pinned_) {
    if (unlink(path.c_str()) != 0 && errno != ENOENT) {
      keep_first(fail("unpinning ", path, ": ", errno_text(errno)));
    }
  }
  pinned_.clear();
  if (pin_dir_lock_fd_ >= 0) {
    // Removed only when empty: pins of others (e.g. the agent's maps) stay where they are.
    if (rmdir(pin_dir_.c_str()) != 0 && errno != ENOTEMPTY && errno != ENOENT) {
      keep_first(fail("removing pin_dir ", pin_dir_, ": ", errno_text(errno)));
    }
    close(pin_dir_lock_fd_);
    pin_dir_lock_fd_ = -1;
  }
  return first_error;
}

const Attachment* SteerProgram::attachment(uint32_t ifindex) const {
  for (const Attachment& attachment : attachments_) {
    if (attachment.ifindex == ifindex) return &attachment;
  }
  return nullptr;
}

XdpMode SteerProgram::attached_mode(uint32_t ifindex) const {
  const Attachment* found = attachment(ifindex);
  return found ? found->mode : XdpMode::kAuto;
}

std::string SteerProgram::describe() const {
  std::string text;
  if (mounted_bpffs_) text += std::string("mounted a bpf filesystem on ") + kBpffsMountPoint + "\n";
  for (const Attachment& attachment : attachments_) {
    text += "dns_steer on " + interface_label(attachment) + ": " +
            std::string(to_string(attachment.mode)) + ", " +
            std::string(to_string(attachment.kind)) +
            (attachment.kind == AttachKind::kChained && chain_ ? " into " + chain_->path() : "") +
            ", XSKMAP slots " + std::to_string(attachment.xsk_slot_base) + ".." +
            std::to_string(attachment.xsk_slot_base + DNS_STEER_MAX_QUEUES - 1) +
            (attachment.replaced_stale ? ", replaced a stale dns_steer" : "") + "\n";
  }
  return text;
}

Result<uint32_t> SteerProgram::slot_of(uint32_t ifindex, uint32_t queue_id) const {
  const Attachment* found = attachment(ifindex);
  if (!found) return fail("dns_steer is not attached to ifindex ", std::to_string(ifindex));
  if (queue_id >= DNS_STEER_MAX_QUEUES) {
    return fail("queue ", std::to_string(queue_id), " of ", interface_label(*found),
                " is beyond the ", std::to_string(DNS_STEER_MAX_QUEUES),
                " queues dns_steer steers per interface");
  }
  return found->xsk_slot_base + queue_id;
}

Result<void> SteerProgram::bind_socket(uint32_t ifindex, uint32_t queue_id, int xsk_fd) {
  auto slot = slot_of(ifindex, queue_id);
  if (!slot) return tl::unexpected(slot.error());
  return XskMap(bpf_map__fd(skeleton_->maps.dns_steer_xsks)).set(*slot, xsk_fd);
}

void SteerProgram::unbind_socket(uint32_t ifindex, uint32_t queue_id) noexcept {
  if (auto slot = slot_of(ifindex, queue_id); slot) {
    XskMap(bpf_map__fd(skeleton_->maps.dns_steer_xsks)).clear(*slot);
  }
}

Result<void> SteerProgram::set_next_program(int prog_fd) {
  return NextProgramMap(bpf_map__fd(skeleton_->maps.dns_steer_next)).set(prog_fd);
}

void SteerProgram::clear_next_program() noexcept {
  NextProgramMap(bpf_map__fd(skeleton_->maps.dns_steer_next)).clear();
}

Result<SteerCounters> SteerProgram::counters() const {
  return StatsMap(bpf_map__fd(skeleton_->maps.dns_steer_stats)).read();
}

SourcesMap SteerProgram::sources() const {
  return SourcesMap(sources_map_fd());
}

int SteerProgram::sources_map_fd() const {
  return bpf_map__fd(skeleton_->maps.dns_steer_sources);
}

int SteerProgram::program_fd() const {
  return bpf_program__fd(skeleton_->progs.dns_steer);
}

}  // namespace dnsproxy::datapath
