// Loader for dns_steer (datapath/bpf/dns_steer.bpf.c): loads one instance of the program,
// attaches it to every interface the proxy serves, pins its maps, and hands AF_XDP sockets to it.
//
// Lifecycle (control thread only; nothing here is on the packet path):
//   auto steer = SteerProgram::attach(interfaces, settings);   // load, attach, pin
//   steer->bind_socket(ifindex, queue, xsk_fd);                 // per AF_XDP socket
//   ... workers run ...
//   steer.reset();                                              // detach, unpin
//
// Attaching goes through libxdp: under its multi-program dispatcher when the kernel allows it
// (then dns_steer's run config chains XDP_PASS to the next program), else as the interface's
// single XDP program (then dns_steer_next is the chaining hook). attachment(ifindex) says which.
// With SteerSettings::chain_into it attaches to no interface: it takes slot 0 of a program array
// the interface's XDP owner tail-calls (datapath/chain.h), and puts the slot back at detach.
//
// Crash recovery: pin_dir is locked (flock) for the program's lifetime. Whoever gets the lock
// knows any dns_steer still attached to its interfaces, and any pin left in pin_dir, is stale
// (its owner died without cleaning up): attach() detaches such a program, removes the pins, and
// reports both in Attachment::replaced_stale / stale_pins_removed(). A program that is not
// dns_steer is never touched: attaching over it fails with an error naming it.
//
// Pinned under pin_dir (a directory on a bpf filesystem, created if missing, removed when empty):
//   dns_steer_stats, dns_steer_xsks, dns_steer_ifaces, dns_steer_next, dns_steer_sources (the
//   maps, by name).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "datapath/chain.h"
#include "datapath/steer_maps.h"

struct dns_steer;
struct xdp_program;

namespace dnsproxy::datapath {

enum class XdpMode {
  kAuto,     // native (driver) mode if the interface supports it, else generic
  kNative,   // driver mode only: fails on interfaces without native XDP
  kGeneric,  // generic (SKB) mode: works everywhere, slower
};

// "auto" | "native" | "generic" (command-line spelling) and back.
Result<XdpMode> parse_xdp_mode(std::string_view text);
std::string_view to_string(XdpMode mode);

// How the program sits on an interface.
enum class AttachKind {
  kDispatcher,     // a component of libxdp's dispatcher: other programs chain around it
  kSingleProgram,  // the interface's only XDP program (no dispatcher on this kernel)
  kChained,        // in slot 0 of another program's array (SteerSettings::chain_into)
};
std::string_view to_string(AttachKind kind);

struct SteerSettings {
  std::vector<uint16_t> dns_ports{53};  // 1..DNS_STEER_MAX_PORTS ports, host byte order
  bool fail_open = true;  // DNS on a queue without socket: pass to the kernel (else drop)
  // TCP to a DNS port from an endpoint with DNS rules (dns_steer_sources): drop it in XDP (else
  // pass it to the kernel). DNS over TCP is not policed yet; passing it lets such an endpoint
  // resolve any name, so this is for experiments only.
  bool tcp_dns_drop = true;
  XdpMode mode = XdpMode::kAuto;
  std::string pin_dir = "/sys/fs/bpf/dnsproxy";
  // When pin_dir sits directly under /sys/fs/bpf and no bpf filesystem is mounted there, mount
  // one first (as cilium-agent does), so the default works on a node that has not mounted it.
  // It stays mounted after exit: other programs' pins may live there by then. Nothing is ever
  // mounted anywhere else; any other pin_dir must already be on a bpf filesystem.
  bool mount_bpffs = true;
  // Pinned program array to chain into instead of attaching (dnsproxyd --chain-into; see
  // datapath/chain.h). Empty: attach to the interfaces. The interfaces must then already run
  // the array's owner (any XDP program): their ifindexes still map to XSKMAP slots, and their
  // AF_XDP sockets still bind to them; `mode` is unused (the owner chose it).
  std::string chain_into;
  // The dns_steer object to load (dnsproxyd --bpf-package: the object of a verified package,
  // datapath/package.h); empty: the copy embedded in this binary. Its maps and programs must be
  // dns_steer's by name, as the skeleton's accessors expect: verify_package() checks that.
  std::vector<uint8_t> object;
};

inline constexpr const char* kBpffsMountPoint = "/sys/fs/bpf";

struct Attachment {
  std::string interface;
  uint32_t ifindex = 0;
  XdpMode mode = XdpMode::kAuto;  // what was achieved (chained: the owner's): kNative or kGeneric
  AttachKind kind = AttachKind::kSingleProgram;
  uint32_t xsk_slot_base = 0;   // first XSKMAP slot of this interface
  bool replaced_stale = false;  // a dns_steer left by a dead run was detached (or unchained) first
};

class SteerProgram {
 public:
  // Loads dns_steer with `settings`, attaches it to every interface (names, in this thread's
  // network namespace), pins its maps. Fails without side effects left behind, with a message
  // naming the interface and the cause: interface missing, mode unsupported by the interface,
  // another XDP program in the way, pin_dir not on a bpf filesystem or held by a live instance.
  static Result<std::unique_ptr<SteerProgram>> attach(std::span<const std::string> interfaces,
                                                      const SteerSettings& settings);

  SteerProgram(const SteerProgram&) = delete;
  SteerProgram& operator=(const SteerProgram&) = delete;
  ~SteerProgram();  // detach() with errors ignored (they are reported by an explicit detach())

  // Detaches from every interface and unpins the maps; idempotent. The first error is returned
  // after trying every step.
  Result<void> detach();

  // Puts an AF_XDP socket into the steering map for (ifindex, queue): DNS received on that queue
  // goes to it. The socket must already be bound to that interface and queue (created with
  // XSK_LIBXDP_FLAGS__INHIBIT_PROG_LOAD, so libxdp loads no program of its own).
  Result<void> bind_socket(uint32_t ifindex, uint32_t queue_id, int xsk_fd);
  void unbind_socket(uint32_t ifindex, uint32_t queue_id) noexcept;

  // Installs the program dns_steer tail-calls for everything it would pass (only meaningful for
  // kSingleProgram attachments; under the dispatcher, chain through libxdp instead). It must be
  // an XDP program loaded the way libbpf loads SEC("xdp") (expected_attach_type BPF_XDP), else
  // the kernel refuses it as incompatible with the program array.
  Result<void> set_next_program(int prog_fd);
  void clear_next_program() noexcept;
  // Chained into another program's array (SteerSettings::chain_into): the rest of that chain,
  // i.e. what the slot held before dns_steer and what dns_steer passes to; -1 when not chained or
  // the slot was empty. A program that takes dns_steer's next slot (l3_guard) passes on to it.
  int chain_next_fd() const { return chain_ ? chain_->next_fd() : -1; }

  const std::vector<Attachment>& attachments() const { return attachments_; }
  const Attachment* attachment(uint32_t ifindex) const;  // nullptr if not attached there
  XdpMode attached_mode(uint32_t ifindex) const;         // kAuto if not attached there
  int stale_pins_removed() const { return stale_pins_removed_; }
  // Whether attach() mounted a bpf filesystem on kBpffsMountPoint (SteerSettings::mount_bpffs).
  bool mounted_bpffs() const { return mounted_bpffs_; }
  // One line per interface, e.g. "dns_steer on eth0 (ifindex 3): native, single program".
  std::string describe() const;

  Result<SteerCounters> counters() const;
  // dns_steer_sources, which dnsproxyd fills from the policy in force (empty: nothing policed).
  SourcesMap sources() const;
  int sources_map_fd() const;  // for a chained program that shares the map (l3_guard)
  int program_fd() const;
  const std::string& pin_dir() const { return pin_dir_; }

 private:
  SteerProgram() = default;
  Result<void> load_and_attach(std::span<const std::string> interfaces,
                               const SteerSettings& settings);
  Result<void> attach_one(Attachment& attachment, XdpMode requested);
  Result<void> chain_into(const std::string& path);
  Result<void> pin_maps();
  Result<uint32_t> slot_of(uint32_t ifindex, uint32_t queue_id) const;

  dns_steer* skeleton_ = nullptr;
  xdp_program* program_ = nullptr;  // libxdp's handle over skeleton_'s program (direct attach)
  std::optional<ChainSlot> chain_;  // the slot we took (chain_into)
  std::vector<Attachment> attachments_;
  std::vector<uint8_t> object_;  // SteerSettings::object, alive as long as libbpf may read it
  std::string pin_dir_;
  int pin_dir_lock_fd_ = -1;
  std::vector<std::string> pinned_;  // paths we pinned, unpinned by detach()
  int stale_pins_removed_ = 0;
  bool mounted_bpffs_ = false;
};

}  // namespace dnsproxy::datapath
