/* The ABI between the BPF programs and user space: every struct that crosses the boundary
 * (map keys and values, XDP metadata, counters) is defined here and only here. Included by
 * the .bpf.c programs (clang -target bpf) and by C++ (which static_asserts the sizes), so
 * keep it plain C with fixed-width kernel types and explicit padding.
 */
#ifndef DNSPROXY_DATAPATH_BPF_ABI_H
#define DNSPROXY_DATAPATH_BPF_ABI_H

#include <linux/types.h>

/* ---- dns_steer counters: one per action and per drop reason, indexed into the per-CPU stats
 * array (map dns_steer_stats). Every packet counts RX once and then exactly one verdict counter
 * (PASS_*, DROP_* or REDIRECT); a redirected packet also counts exactly one FIB_* counter.
 * User space names each slot (kStatNames in datapath/steer_maps.cpp). Not append-only: slots may
 * be renumbered between builds, because the map is created by each run (never reused from an
 * older one) and is read only by the same build's dnsproxyd and dnsproxyctl (which refuses a
 * pinned map whose slot count differs from its own). ---- */
enum dns_steer_stat {
  DNS_STEER_STAT_RX = 0,              /* every packet the program saw */
  DNS_STEER_STAT_PASS_NOT_IP,         /* not IPv4/IPv6 (ARP, LLDP, two VLAN tags...): kernel */
  DNS_STEER_STAT_PASS_NOT_UDP,        /* IP, neither UDP nor TCP to a DNS port: kernel */
  DNS_STEER_STAT_PASS_NOT_DNS,        /* UDP, neither port a DNS port: kernel */
  DNS_STEER_STAT_PASS_TCP_DNS,        /* TCP to a DNS port, source not under DNS rules (or the
                                       * tcp_dns setting is pass): kernel, not policed */
  DNS_STEER_STAT_PASS_FRAGMENT,       /* non-first UDP fragment: ports unknown, kernel */
  DNS_STEER_STAT_PASS_NO_SOCKET,      /* DNS, no socket on the queue, fail-open: kernel */
  DNS_STEER_STAT_DROP_NO_SOCKET,      /* DNS, no socket on the queue, fail-closed */
  DNS_STEER_STAT_DROP_FRAGMENT,       /* first fragment of a DNS datagram */
  DNS_STEER_STAT_DROP_SHORT_FRAGMENT, /* first UDP fragment without a whole UDP header: its
                                       * ports cannot be seen (RFC 1858 tiny fragment) */
  DNS_STEER_STAT_DROP_BAD_L2,         /* truncated Ethernet or 802.1Q header */
  DNS_STEER_STAT_DROP_BAD_IPV4,       /* truncated, version/IHL wrong, total length > frame */
  DNS_STEER_STAT_DROP_BAD_IPV6,       /* truncated, payload length > frame, extension chain */
  DNS_STEER_STAT_DROP_BAD_UDP,        /* truncated, UDP length < 8 or > IP payload */
  DNS_STEER_STAT_DROP_SHORT_DNS,      /* DNS payload shorter than the 12-byte header */
  DNS_STEER_STAT_DROP_TCP_DNS,        /* TCP to a DNS port from an endpoint with DNS rules (TCP DNS
                                       * is not policed yet, so it must not bypass the UDP policy) */
  DNS_STEER_STAT_DROP_LONG_EXT_CHAIN, /* IPv6 from an endpoint with DNS rules whose extension
                                       * headers outrun the walk: what follows them is unseen */
  DNS_STEER_STAT_PASS_NO_META,        /* bpf_xdp_adjust_meta failed (driver without XDP metadata
                                       * support), fail-open: kernel */
  DNS_STEER_STAT_DROP_NO_META,        /* bpf_xdp_adjust_meta failed, fail-closed */
  DNS_STEER_STAT_REDIRECT,            /* handed to the AF_XDP socket of the receive queue */
  DNS_STEER_STAT_FIB_OK,              /* redirected with next hop resolved */
  DNS_STEER_STAT_FIB_NO_NEIGH,        /* route found, next-hop neighbour not resolved yet: user
                                       * space decides, then hands it to the kernel's stack */
  DNS_STEER_STAT_FIB_NOT_FORWARDED, /* destination is local to the node (BPF_FIB_LKUP_RET_NOT_FWDED)
                                     */
  DNS_STEER_STAT_FIB_UNREACHABLE,   /* blackhole, unreachable or prohibit route */
  DNS_STEER_STAT_FIB_FRAG_NEEDED,   /* packet larger than the egress MTU */
  DNS_STEER_STAT_FIB_FWD_DISABLED,  /* forwarding disabled on the ingress interface */
  DNS_STEER_STAT_FIB_OTHER,         /* any other lookup failure (LWT encap, error) */
  DNS_STEER_STAT__COUNT,
};

/* ---- Load-time settings, in the program's .rodata (fixed at load, never changed after). ---- */
#define DNS_STEER_MAX_PORTS 8
struct dns_steer_config {
  __u16 ports[DNS_STEER_MAX_PORTS]; /* DNS UDP ports, network byte order; port_count used */
  __u8 port_count;                  /* 1..DNS_STEER_MAX_PORTS */
  __u8 fail_open;                   /* DNS on a queue with no socket: 1 pass, 0 drop */
  __u8 tcp_dns_drop; /* TCP to a DNS port from a source with DNSPROXY_SOURCE_DNS_RULES: 1 drop,
                      * 0 pass (the proxy polices DNS over UDP only) */
  __u8 pad[1];
};

/* ---- Socket steering: one XSKMAP (dns_steer_xsks) for every interface the program serves.
 * Each interface owns a block of DNS_STEER_MAX_QUEUES consecutive slots starting at the base in
 * dns_steer_ifaces[ifindex]; the socket for (ifindex, rx queue q) sits in slot base + q.
 * User space assigns bases (0, 64, 128, ... in attach order) and binds sockets through
 * SteerProgram::bind_socket. Queues >= DNS_STEER_MAX_QUEUES have no slot (counted as no socket). */
#define DNS_STEER_MAX_QUEUES 64
#define DNS_STEER_MAX_IFACES 16
#define DNS_STEER_XSK_SLOTS (DNS_STEER_MAX_QUEUES * DNS_STEER_MAX_IFACES)

struct dns_steer_iface {
  __u32 xsk_slot_base; /* first XSKMAP slot of this interface; a multiple of MAX_QUEUES */
};

/* ---- XDP metadata: dns_steer -> worker, for every frame redirected to an AF_XDP socket. ----
 * Written with bpf_xdp_adjust_meta directly in front of the packet, so user space reads it at
 * (packet address - sizeof(struct dns_steer_meta)) in the UMEM frame. Its size must stay a
 * multiple of 4 and at most 32 bytes (the kernel's metadata limit). The FIB lookup lets user
 * space forward without routing or neighbour tables of its own.
 */
enum dns_steer_fib_status {
  DNS_STEER_FIB_OK = 0,        /* egress_ifindex and both MACs are valid */
  DNS_STEER_FIB_NOT_FORWARDED, /* local destination, blackhole, unreachable, MTU, forwarding
                                * disabled: egress_ifindex and MACs zero (the FIB_* counters
                                * say which) */
  DNS_STEER_FIB_NO_NEIGH,      /* route found, but its next hop has no neighbour entry yet:
                                * egress_ifindex valid, MACs zero. Still redirected, so the
                                * packet is policed like any other (a query must never reach
                                * the upstream unchecked); user space then hands it to the
                                * kernel's stack, whose forwarding resolves the neighbour, so
                                * the next packets to that hop come with FIB_OK. */
};

#define DNS_STEER_META_IPV6 0x01     /* L3 is IPv6 (else IPv4) */
#define DNS_STEER_META_RESPONSE 0x02 /* UDP source port is a DNS port (else destination is) */
#define DNS_STEER_META_VLAN 0x04     /* one 802.1Q tag; vlan_tci is valid */

/* The FIB lookup is for the packet's own destination (a query: toward the upstream server; a
 * response: toward the client), from the ingress interface, with its L4 ports and its length
 * (so an egress MTU too small shows as NOT_FORWARDED). A VLAN-tagged packet is looked up as
 * received on the untagged ingress interface. Offsets count from the Ethernet header. */
struct dns_steer_meta {
  __u32 egress_ifindex; /* where the packet goes next, per the kernel FIB */
  __u8 next_hop_mac[6]; /* destination MAC to write */
  __u8 egress_mac[6];   /* source MAC to write (the egress interface's) */
  __u16 l3_offset;      /* bytes from packet start to the IP header */
  __u16 dns_offset;     /* bytes from packet start to the DNS header */
  __u8 fib_status;      /* enum dns_steer_fib_status */
  __u8 flags;           /* DNS_STEER_META_* */
  __u16 vlan_tci;       /* host order; valid with DNS_STEER_META_VLAN */
};

/* ---- Maps owned by the agent, mirrored by the proxy into policy snapshots. ---- */

/* Address families as stored in the keys below (AF_INET / AF_INET6 values, fixed here so BPF
 * code needs no libc header). */
#define DNSPROXY_FAMILY_V4 2
#define DNSPROXY_FAMILY_V6 10

/* Endpoint table key: one local endpoint (pod) address. IPv4 uses addr[0..3], the rest zero. */
struct endpoint_key {
  __u8 addr[16];
  __u8 family;
  __u8 pad[3];
};

struct endpoint_value {
  __u32 endpoint_id; /* the agent's endpoint id; policy rules are keyed by it */
  __u32 identity;    /* the endpoint's security identity */
};

/* ipcache key for a BPF_MAP_TYPE_LPM_TRIE holding IPv4 and IPv6 prefixes together: the family
 * byte is part of the matched data, so prefixlen = 32 (family + pad) + address prefix bits. */
struct ipcache_key {
  __u32 prefixlen;
  __u8 family;
  __u8 pad[3];
  __u8 addr[16];
};
#define DNSPROXY_IPCACHE_PREFIX_BASE 32

struct ipcache_value {
  __u32 identity; /* security identity of every address in the prefix */
  __u32 flags;    /* reserved, zero */
};

/* Change counters for the maps above: a BPF_MAP_TYPE_ARRAY, __u32 index -> __u64 counter, one
 * slot per enum value. The agent bumps a map's counter after each batch of changes to it; the
 * proxy re-reads a map only when its counter moved, so an idle million-prefix ipcache costs one
 * lookup per poll instead of a full walk. Append only. */
enum dnsproxy_policy_generation {
  DNSPROXY_GENERATION_ENDPOINTS = 0,
  DNSPROXY_GENERATION_IPCACHE,
  DNSPROXY_GENERATION_IPCACHE_LOG_LOST, /* ipcache writes the change log had no room for */
  DNSPROXY_GENERATION__COUNT,
};

/* ipcache change log: a BPF_MAP_TYPE_QUEUE (no key, value struct ipcache_change) of the ipcache
 * writes the agent made, so the proxy applies them as deltas instead of walking a million-prefix
 * trie (LPM tries have no batch reads). Each entry carries the value written: a lookup in an LPM
 * trie is a longest-prefix match, so the proxy cannot read one exact key back (after a /32 is
 * deleted, looking it up returns its covering /24).
 *
 * Protocol. The agent, the log's only writer, for every ipcache write:
 *   1. updates or deletes the key in the trie;
 *   2. pushes the change to the log; if the push fails (log full), adds 1 to
 *      DNSPROXY_GENERATION_IPCACHE_LOG_LOST;
 *   3. bumps DNSPROXY_GENERATION_IPCACHE (once per batch is enough, after all its pushes).
 * The proxy, the log's only reader (popping consumes), on each poll:
 *   1. reads the counters;
 *   2. at its first poll, or when LOG_LOST moved: pops every entry and drops it, then walks the
 *      whole trie;
 *   3. else, when IPCACHE moved: pops the entries and applies them in order.
 * Why the proxy ends with the trie's content: the log is FIFO from one writer, so entries come
 * in write order and the last one for a key is its current state; a write whose IPCACHE bump the
 * proxy saw was pushed before that bump, so it is popped in that poll, or counted lost, which the
 * proxy sees now or at the next poll (the loss is counted before IPCACHE moves) and answers with
 * a walk. Entries dropped in step 2 are in the trie before the walk starts; entries pushed after
 * the drop are applied after the walk, in order, so they can only bring a key up to date. An agent
 * without a log pins none, and the proxy walks the trie on every IPCACHE change. */
enum ipcache_change_op {
  IPCACHE_CHANGE_UPSERT = 1, /* key now maps to value */
  IPCACHE_CHANGE_DELETE = 2, /* key removed; value unused (zero) */
};

struct ipcache_change {
  struct ipcache_key key;
  struct ipcache_value value;
  __u32 op; /* enum ipcache_change_op */
  __u32 pad;
};

/* ---- Policed sources: map dns_steer_sources, owned by dnsproxyd (written from the policy in
 * force, endpoint address -> what XDP enforces on that endpoint's traffic). dns_steer reads it
 * for TCP DNS, l3_guard for the L3 toFQDNs check. An address not in the map is not policed. ---- */
#define DNS_STEER_MAX_SOURCES 65536
#define DNSPROXY_SOURCE_DNS_RULES                              \
  0x01 /* the endpoint has DNS rules: its TCP to a DNS port is \
        * dropped (until TCP DNS is policed; a load-time setting) */
#define DNSPROXY_SOURCE_TO_FQDNS                             \
  0x02 /* the endpoint has toFQDNs rules: l3_guard drops its \
        * non-DNS traffic to addresses not in its allow map */
struct policed_source {
  __u32 endpoint_id;
  __u32 flags; /* DNSPROXY_SOURCE_* */
};

/* ---- The L3 allow map (dnsproxy_fqdn_allow), owned by the agent (embedded or external): the
 * (endpoint, destination address) pairs the agent plumbed for toFQDNs rules, each until an
 * expiry (the DNS TTL plus the agent's grace period) on CLOCK_MONOTONIC, the clock of
 * bpf_ktime_get_ns and of std::chrono::steady_clock. A stand-in for Cilium's policy map, so that
 * "plumbed before released" is enforced and testable end to end. The agent removes expired
 * entries; l3_guard also treats them as absent until then. ---- */
#define DNSPROXY_FQDN_ALLOW_MAX 262144
struct fqdn_allow_key {
  __u32 endpoint_id;
  __u8 family; /* DNSPROXY_FAMILY_* */
  __u8 pad[3];
  __u8 addr[16]; /* IPv4 uses addr[0..3], the rest zero */
};

struct fqdn_allow_value {
  __u64 expires_ns; /* CLOCK_MONOTONIC nanoseconds */
};

/* ---- l3_guard counters (map l3_guard_stats, per CPU): every packet counts RX and exactly one
 * verdict. Append only: user space names each slot. ---- */
enum l3_guard_stat {
  L3_GUARD_STAT_RX = 0,           /* every packet dns_steer handed on */
  L3_GUARD_STAT_PASS_NOT_IP,      /* not IPv4/IPv6, or a header too short to police */
  L3_GUARD_STAT_PASS_NOT_POLICED, /* source is no endpoint with toFQDNs rules */
  L3_GUARD_STAT_PASS_LINK_SCOPE,  /* to a multicast, broadcast or IPv6 link-local address, or
                                   * ICMPv6 neighbour / router discovery: never policed */
  L3_GUARD_STAT_PASS_DNS,         /* to a DNS port (TCP DNS is dns_steer's to decide) */
  L3_GUARD_STAT_PASS_ALLOWED,     /* destination plumbed for the source endpoint, unexpired */
  L3_GUARD_STAT_DROP_NOT_PLUMBED, /* destination not in the endpoint's allow map */
  L3_GUARD_STAT_DROP_EXPIRED,     /* in the allow map, past its expiry */
  L3_GUARD_STAT__COUNT,
};

/* l3_guard's load-time settings, in its .rodata. */
struct l3_guard_config {
  __u16 ports[DNS_STEER_MAX_PORTS]; /* DNS ports (TCP and UDP), network byte order */
  __u8 port_count;
  __u8 pad[3];
};

/* ---- dnsproxy-loadgen's program (datapath/bpf/loadgen_rx.bpf.c). ----
 * Load-time settings, in its .rodata: UDP from the server port to one of the load generator's
 * source ports goes to the AF_XDP socket of its receive queue (loadgen_xsks[rx queue]); all other
 * traffic passes to the kernel. With --tx xdp it also builds queries (below). */
#define LOADGEN_MAX_QUEUES 64
struct loadgen_rx_config {
  __u16 server_port; /* network byte order */
  __u16 first_port;  /* host byte order: the load generator's source ports are */
  __u16 port_count;  /* first_port .. first_port + port_count - 1 */
  __u16 pad;
  __u32 ids_per_port;   /* DNS IDs per source port: query k uses slot k % (ports * ids) */
  __u32 template_count; /* entries of loadgen_templates (0: the program only receives) */
};

/* --tx xdp: a frame whose XDP metadata starts with this (only the load generator's test_run
 * frames carry metadata; nothing received from the wire does) is turned into query number
 * loadgen_tx_next++ and sent with XDP_TX. */
#define LOADGEN_TX_SEED 0x6c677478u /* "lgtx" */
/* One query frame per entry of loadgen_templates, ready but for the source port, the DNS ID and
 * the UDP checksum; `partial_sum` is the checksum's sum over everything else (the pseudo-header
 * included), so the program adds the port and the ID and folds. */
#define LOADGEN_MAX_FRAME 512
struct loadgen_template {
  __u16 length;     /* bytes of frame[] in use */
  __u16 udp_offset; /* 34 (IPv4) or 54 (IPv6) */
  __u32 partial_sum;
  __u8 frame[LOADGEN_MAX_FRAME];
};

#endif /* DNSPROXY_DATAPATH_BPF_ABI_H */
