#include "tools/loadgen/generator.h"

#include <bpf/bpf.h>
#include <poll.h>
#include <time.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <nlohmann/json.hpp>

#include "datapath/bpf/dnsproxy_abi.h"
#include "tools/loadgen/napi.h"
#include "tools/loadgen/xdp_program.h"
#include "xsk/packet_io.h"
#include "xsk/socket.h"
#include "xsk/umem.h"

namespace dnsproxy::loadgen {
namespace {

constexpr size_t kEthernet = 14;
constexpr uint32_t kBatch = 64;
constexpr uint32_t kSlots = kPorts * kIdsPerPort;
constexpr const char* kRcodeNames[16] = {
    "NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN",  "NOTIMP",  "REFUSED", "YXDOMAIN", "YXRRSET",
    "NXRRSET", "NOTAUTH", "NOTZONE",  "DSOTYPENI", "RCODE12", "RCODE13", "RCODE14",  "RCODE15"};

uint64_t now_ns() noexcept {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000u + static_cast<uint64_t>(ts.tv_nsec);
}

uint32_t sum16(const uint8_t* data, size_t length) noexcept {
  uint32_t sum = 0;
  for (size_t i = 0; i + 1 < length; i += 2)
    sum += static_cast<uint32_t>(data[i] << 8 | data[i + 1]);
  if (length % 2 == 1) sum += static_cast<uint32_t>(data[length - 1] << 8);
  return sum;
}

uint16_t fold(uint32_t sum) noexcept {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(sum);
}

void put16(uint8_t* at, uint16_t value) noexcept {
  at[0] = static_cast<uint8_t>(value >> 8);
  at[1] = static_cast<uint8_t>(value);
}

// A query frame, ready but for the source port, the DNS ID and the UDP checksum, with the UDP
// checksum's sum over everything else (pseudo-header included) precomputed.
struct Template {
  std::vector<uint8_t> frame;
  size_t udp = 0;  // offset of the UDP header
  uint32_t partial_sum = 0;
};

Template build_template(const Path& path, const IpAddress& server, uint16_t port,
                        const std::vector<uint8_t>& message) {
  const bool v4 = server.family == AF_INET;
  const size_t ip_length = v4 ? 20 : 40;
  const size_t udp_length = 8 + message.size();
  Template t;
  t.udp = kEthernet + ip_length;
  t.frame.assign(t.udp + udp_length, 0);
  uint8_t* f = t.frame.data();
  std::memcpy(f, path.next_hop_mac.data(), 6);
  std::memcpy(f + 6, path.source_mac.data(), 6);
  put16(f + 12, v4 ? 0x0800 : 0x86dd);
  uint8_t* ip = f + kEthernet;
  if (v4) {
    ip[0] = 0x45;
    put16(ip + 2, static_cast<uint16_t>(20 + udp_length));
    put16(ip + 6, 0x4000);  // DF
    ip[8] = 64;
    ip[9] = 17;
    std::memcpy(ip + 12, path.source.bytes.data(), 4);
    std::memcpy(ip + 16, server.bytes.data(), 4);
    put16(ip + 10, static_cast<uint16_t>(~fold(sum16(ip, 20))));
  } else {
    ip[0] = 0x60;
    put16(ip + 4, static_cast<uint16_t>(udp_length));
    ip[6] = 17;
    ip[7] = 64;
    std::memcpy(ip + 8, path.source.bytes.data(), 16);
    std::memcpy(ip + 24, server.bytes.data(), 16);
  }
  uint8_t* udp = f + t.udp;
  put16(udp + 2, port);
  put16(udp + 4, static_cast<uint16_t>(udp_length));
  std::memcpy(udp + 8, message.data(), message.size());
  // Pseudo-header (addresses, protocol, UDP length) + the UDP header and payload as they are now
  // (source port, checksum and ID still 0).
  const size_t address = v4 ? 4 : 16;
  t.partial_sum = sum16(path.source.bytes.data(), address) + sum16(server.bytes.data(), address) +
                  17 + static_cast<uint32_t>(udp_length) + sum16(udp, udp_length);
  return t;
}

struct Slot {
  uint64_t sent_ns = 0;
  enum State : uint8_t { kFree, kInFlight, kTimedOut } state = kFree;
};

class Engine {
 public:
  // `xdp_tx`: send through it (--tx xdp) instead of the AF_XDP sockets' TX rings.
  Engine(const Config& config, std::vector<Template> templates, xsk::XskPacketIo& io,
         xsk::Umem& umem, XdpProgram* xdp_tx)
      : config_(config),
        templates_(std::move(templates)),
        io_(io),
        umem_(umem),
        xdp_tx_(xdp_tx),
        slots_(kSlots),
        timeout_ns_(static_cast<uint64_t>(config.timeout_seconds * 1e9)) {}

  Report run(const std::atomic<bool>& stop) {
    const uint64_t start = now_ns();
    const uint64_t send_end = start + static_cast<uint64_t>(config_.seconds * 1e9);
    uint64_t now = start;
    while (now < send_end && !stop.load(std::memory_order_relaxed)) {
      io_.service();
      const uint64_t want = wanted(now - start);
      bool busy = false;
      if (want > 0) busy |= (xdp_tx_ != nullptr ? send_xdp(want, now) : send(want, now)) > 0;
      busy |= receive() > 0;
      io_.flush();
      now = now_ns();
      retire(now);
      if (!busy) wait(now - start, send_end - now);
      now = now_ns();
    }
    report_.interrupted = stop.load(std::memory_order_relaxed);
    report_.elapsed_seconds = static_cast<double>(now - start) / 1e9;
    // Drain: answers still on their way get the timeout to arrive.
    const uint64_t drain_end = now + timeout_ns_;
    while (in_flight_ > 0 && now < drain_end) {
      io_.service();
      if (receive() == 0) wait_for_rx(1);
      now = now_ns();
      retire(now);
    }
    for (uint64_t k = tail_; k < head_; ++k) {
      Slot& slot = slots_[k % kSlots];
      if (slot.state == Slot::kInFlight) ++report_.lost;
      slot.state = Slot::kFree;
    }
    in_flight_ = 0;
    report_.offered_rate = config_.rate;
    if (config_.rate > 0)
      report_.rate_reached =
          static_cast<double>(report_.sent) >= 0.99 * config_.rate * report_.elapsed_seconds;
    (void)io_.drain_tx(1000);
    return std::move(report_);
  }

 private:
  // How many queries to send now: open loop, what the schedule says is due; closed loop, what
  // the window has room for. Never more than the slots that are not in flight.
  uint64_t wanted(uint64_t since_start) const noexcept {
    uint64_t want;
    if (config_.rate > 0) {
      const auto due =
          static_cast<uint64_t>(static_cast<double>(since_start) * config_.rate / 1e9) + 1;
      want = due > report_.sent ? due - report_.sent : 0;
    } else {
      want = window_room() >= closed_loop_batch() ? window_room() : 0;
    }
    return std::min<uint64_t>(want, kSlots - (head_ - tail_));
  }

  uint64_t window_room() const noexcept {
    return in_flight_ < config_.max_outstanding ? config_.max_outstanding - in_flight_ : 0;
  }

  // The fewest queries the closed loop sends at once. Through XDP every transmit() call costs
  // the kernel a page pool's setup and teardown (as much as a few dozen queries), so the window
  // is topped up a batch at a time; through the AF_XDP ring a query is worth sending alone.
  uint64_t closed_loop_batch() const noexcept {
    return xdp_tx_ != nullptr ? std::min<uint64_t>(kBatch, config_.max_outstanding) : 1;
  }

  // Builds and queues up to `want` queries, a batch per socket in turn. Returns how many went.
  uint64_t send(uint64_t want, uint64_t now) noexcept {
    uint64_t sent = 0;
    std::array<uint64_t, kBatch> frames{};
    std::array<xsk::Packet, kBatch> packets{};
    while (sent < want) {
      const uint32_t n =
          umem_.pool().allocate(std::span(frames.data(), std::min<uint64_t>(kBatch, want - sent)),
                                xsk::FramePlace::kWorker);
      if (n == 0) {
        ++report_.send_stalls;
        break;
      }
      for (uint32_t i = 0; i < n; ++i) packets[i] = build(frames[i], head_ + i);
      const size_t port = next_port_++ % io_.port_count();
      const uint32_t queued = io_.transmit(port, std::span(packets.data(), n));
      for (uint32_t i = queued; i < n; ++i) io_.release(packets[i]);
      mark_sent(queued, now);
      sent += queued;
      if (queued < n) {
        ++report_.send_stalls;
        break;
      }
    }
    return sent;
  }

  // The same through the XDP transmit path: the kernel builds the frames, nothing to reclaim.
  uint64_t send_xdp(uint64_t want, uint64_t now) noexcept {
    const uint64_t sent = xdp_tx_->transmit(head_, want);
    mark_sent(sent, now);
    if (sent < want) ++report_.send_stalls;
    return sent;
  }

  // Queries head_ .. head_ + count - 1 left at `now`.
  void mark_sent(uint64_t count, uint64_t now) noexcept {
    for (uint64_t i = 0; i < count; ++i) {
      Slot& slot = slots_[(head_ + i) % kSlots];
      slot.sent_ns = now;
      slot.state = Slot::kInFlight;
    }
    head_ += count;
    in_flight_ += count;
    report_.sent += count;
  }

  xsk::Packet build(uint64_t frame, uint64_t k) noexcept {
    const Template& t = templates_[k % templates_.size()];
    const uint32_t slot = static_cast<uint32_t>(k % kSlots);
    const uint16_t port = static_cast<uint16_t>(kFirstPort + slot % kPorts);
    const uint16_t id = static_cast<uint16_t>(slot / kPorts);
    uint8_t* f = reinterpret_cast<uint8_t*>(umem_.data(frame));
    std::memcpy(f, t.frame.data(), t.frame.size());
    uint8_t* udp = f + t.udp;
    put16(udp, port);
    put16(udp + 8, id);
    uint16_t check = static_cast<uint16_t>(~fold(t.partial_sum + port + id));
    put16(udp + 6, check == 0 ? 0xffff : check);
    return xsk::Packet{frame, static_cast<uint32_t>(t.frame.size())};
  }

  uint32_t receive() noexcept {
    uint32_t total = 0;
    std::array<xsk::Packet, kBatch> packets{};
    for (size_t port = 0; port < io_.port_count(); ++port) {
      const uint32_t n = io_.receive(port, packets);
      if (n == 0) continue;
      const uint64_t now = now_ns();
      for (uint32_t i = 0; i < n; ++i) {
        answer(io_.bytes(packets[i]), now);
        io_.release(packets[i]);
      }
      total += n;
    }
    return total;
  }

  // One answer: its slot from the destination port and the DNS ID (the XDP program only lets
  // UDP from the server port to our ports through).
  void answer(std::span<std::byte> bytes, uint64_t now) noexcept {
    const auto* f = reinterpret_cast<const uint8_t*>(bytes.data());
    const size_t l3 = kEthernet;
    if (bytes.size() < l3 + 1) return void(++report_.unmatched);
    const size_t udp = l3 + ((f[l3] >> 4) == 4 ? (f[l3] & 0x0f) * 4u : 40u);
    if (bytes.size() < udp + 8 + 12) return void(++report_.unmatched);
    const uint16_t port = static_cast<uint16_t>(f[udp + 2] << 8 | f[udp + 3]);
    const uint16_t id = static_cast<uint16_t>(f[udp + 8] << 8 | f[udp + 9]);
    const uint8_t flags = f[udp + 8 + 2];
    if ((flags & 0x80) == 0 || port < kFirstPort || port >= kFirstPort + kPorts ||
        id >= kIdsPerPort)
      return void(++report_.unmatched);
    Slot& slot = slots_[id * kPorts + (port - kFirstPort)];
    if (slot.state == Slot::kInFlight) {
      ++report_.completed;
      ++report_.rcodes[f[udp + 8 + 3] & 0x0f];
      report_.latency.record(now - slot.sent_ns);
      --in_flight_;
    } else if (slot.state == Slot::kTimedOut) {
      ++report_.timed_out;
      --report_.lost;
    } else {
      ++report_.unmatched;
      return;
    }
    slot.state = Slot::kFree;
  }

  // Oldest first: in-flight slots past the timeout become timed out (counted lost until a late
  // answer turns them into timed_out); the tail moves past everything no longer in flight.
  void retire(uint64_t now) noexcept {
    while (tail_ < head_) {
      Slot& slot = slots_[tail_ % kSlots];
      if (slot.state == Slot::kInFlight) {
        if (now - slot.sent_ns < timeout_ns_) break;
        slot.state = Slot::kTimedOut;
        ++report_.lost;
        --in_flight_;
      }
      ++tail_;
    }
  }

  // Nothing to do right now: sleep until the next query is due (open loop), or until an answer
  // arrives (closed loop without room for a batch), at most 1 ms and at least 50 us.
  void wait(uint64_t since_start, uint64_t left_ns) noexcept {
    uint64_t sleep_ns = 1000000;
    if (config_.rate > 0) {
      const double next = static_cast<double>(report_.sent) * 1e9 / config_.rate;
      const double until = next - static_cast<double>(since_start);
      sleep_ns =
          until <= 50000 ? 50000 : std::min<uint64_t>(sleep_ns, static_cast<uint64_t>(until));
    } else if (window_room() >= closed_loop_batch()) {
      return;
    }
    wait_for_rx(std::min(sleep_ns, left_ns));
  }

  void wait_for_rx(uint64_t ns) noexcept {
    std::array<pollfd, xsk::kMinFillShare> fds{};
    const size_t n = std::min(io_.port_count(), fds.size());
    for (size_t p = 0; p < n; ++p)
      fds[p] = pollfd{.fd = io_.socket(p).fd(), .events = POLLIN, .revents = 0};
    const timespec timeout{.tv_sec = static_cast<time_t>(ns / 1000000000u),
                           .tv_nsec = static_cast<long>(ns % 1000000000u)};
    (void)ppoll(fds.data(), n, &timeout, nullptr);
  }

  const Config& config_;
  std::vector<Template> templates_;
  xsk::XskPacketIo& io_;
  xsk::Umem& umem_;
  XdpProgram* xdp_tx_;
  std::vector<Slot> slots_;
  uint64_t timeout_ns_;
  uint64_t head_ = 0, tail_ = 0, in_flight_ = 0;
  size_t next_port_ = 0;
  Report report_;
};

// --tx xdp: the templates as the XDP program takes them.
Result<std::vector<loadgen_template>> xdp_templates(const std::vector<Template>& templates) {
  std::vector<loadgen_template> entries(templates.size());
  for (size_t i = 0; i < templates.size(); ++i) {
    const Template& t = templates[i];
    if (t.frame.size() > LOADGEN_MAX_FRAME)
      return fail("--tx xdp takes frames of up to ", std::to_string(LOADGEN_MAX_FRAME),
                  " bytes; query ", std::to_string(i + 1), " needs ",
                  std::to_string(t.frame.size()));
    entries[i].length = static_cast<uint16_t>(t.frame.size());
    entries[i].udp_offset = static_cast<uint16_t>(t.udp);
    entries[i].partial_sum = t.partial_sum;
    std::memcpy(entries[i].frame, t.frame.data(), t.frame.size());
  }
  return entries;
}

}  // namespace

Result<Report> run(const Config& config, const std::atomic<bool>& stop) {
  auto path = resolve_path(config.interface, config.server);
  if (!path) return tl::unexpected(path.error());
  std::vector<Template> templates;
  templates.reserve(config.queries.size());
  for (const auto& message : config.queries) {
    if (message.size() > 1400)
      return fail("a query of ", std::to_string(message.size()), " bytes does not fit a frame");
    templates.push_back(build_template(*path, config.server, config.port, message));
  }

  uint32_t queues = config.queues;
  if (queues == 0) {
    auto count = xsk::receive_queue_count(config.interface);
    if (!count) return tl::unexpected(count.error());
    queues = std::min<uint32_t>(*count, LOADGEN_MAX_QUEUES);
  }
  XdpProgramConfig program_config{.ifindex = path->ifindex,
                                  .server_port = config.port,
                                  .first_port = kFirstPort,
                                  .port_count = kPorts,
                                  .ids_per_port = kIdsPerPort,
                                  .generic = config.generic_xdp};
  if (config.tx == TxPath::kXdp) {
    auto entries = xdp_templates(templates);
    if (!entries) return tl::unexpected(entries.error());
    program_config.templates = std::move(*entries);
  }
  auto program = XdpProgram::attach(program_config);
  if (!program) return tl::unexpected(program.error());
  std::unique_ptr<ThreadedNapi> threaded_napi;  // destroyed before `program` detaches
  if (config.threaded_napi) {
    auto enabled = ThreadedNapi::enable(config.interface);
    if (!enabled) return tl::unexpected(enabled.error());
    threaded_napi = std::move(*enabled);
  }
  auto umem = xsk::Umem::create(xsk::UmemConfig{
      .frame_count = 8192 * std::max(queues, 1u) > 65536 ? 65536 : 8192 * std::max(queues, 1u),
      .frame_size = 2048,
      .ring_size = 2048});
  if (!umem) return tl::unexpected(umem.error());
  xsk::Umem& umem_ref = **umem;
  std::vector<xsk::SocketConfig> sockets;
  for (uint32_t q = 0; q < queues; ++q)
    sockets.push_back(xsk::SocketConfig{.interface = config.interface, .queue = q});
  auto io = xsk::XskPacketIo::create(std::move(*umem), sockets);
  if (!io) return tl::unexpected(io.error());
  // Half of the UMEM for the fill rings (answers), the other half stays free for queries.
  for (size_t p = 0; p < (*io)->port_count(); ++p) {
    (*io)->socket(p).set_fill_share(umem_ref.config().frame_count / 2 / queues);
    (void)(*io)->socket(p).refill();
    const uint32_t key = (*io)->socket(p).queue();
    const int fd = (*io)->socket(p).fd();
    if (bpf_map_update_elem((*program)->xsks_fd(), &key, &fd, 0) != 0)
      return fail("cannot insert the AF_XDP socket of queue ", std::to_string(key),
                  " into loadgen_xsks: ", std::strerror(errno));
  }

  XdpProgram* xdp_tx = config.tx == TxPath::kXdp ? program->get() : nullptr;
  Engine engine(config, std::move(templates), **io, umem_ref, xdp_tx);
  Report report = engine.run(stop);
  if (xdp_tx != nullptr) {
    report.xdp_build_failures = xdp_tx->build_failures();
    report.xdp_run_errors = xdp_tx->run_errors();
  }
  report.setup = config.interface + ": " + std::to_string(queues) + " AF_XDP socket(s), " +
                 ((*io)->socket(0).zero_copy() ? "zero-copy" : "copy") + " mode, XDP " +
                 ((*program)->generic() ? "generic" : "native") +
                 (threaded_napi ? ", threaded NAPI" : "") +
                 (xdp_tx != nullptr ? ", TX by XDP frames" : ", TX by the AF_XDP ring") + "; " +
                 to_string(path->source) + " -> " + to_string(config.server) + " port " +
                 std::to_string(config.port) + " via " + to_string(path->next_hop);
  return report;
}

std::string text_report(const Report& r) {
  auto us = [](uint64_t ns) { return static_cast<double>(ns) / 1000.0; };
  std::string rcodes;
  for (size_t i = 0; i < r.rcodes.size(); ++i)
    if (r.rcodes[i] > 0)
      rcodes += std::string(" ") + kRcodeNames[i] + "=" + std::to_string(r.rcodes[i]);
  char text[2048];
  std::snprintf(
      text, sizeof(text),
      "  %s\n"
      "  Queries sent:        %llu\n"
      "  Queries completed:   %llu (%.2f%%)\n"
      "  Queries lost:        %llu (no answer)\n"
      "  Answers timed out:   %llu (answered after the timeout)\n"
      "  Answers unmatched:   %llu\n"
      "  Response codes:     %s\n"
      "  Run time (s):        %.3f%s\n"
      "  Offered rate (q/s):  %s\n"
      "  Queries per second:  %.0f completed, %.0f sent\n"
      "  Latency (us):        p50 %.1f  p90 %.1f  p99 %.1f  p99.9 %.1f  max %.1f  mean %.1f\n",
      r.setup.c_str(), static_cast<unsigned long long>(r.sent),
      static_cast<unsigned long long>(r.completed),
      r.sent ? 100.0 * static_cast<double>(r.completed) / static_cast<double>(r.sent) : 0.0,
      static_cast<unsigned long long>(r.lost), static_cast<unsigned long long>(r.timed_out),
      static_cast<unsigned long long>(r.unmatched), rcodes.empty() ? " none" : rcodes.c_str(),
      r.elapsed_seconds, r.interrupted ? " (interrupted)" : "",
      r.offered_rate > 0 ? (std::to_string(static_cast<uint64_t>(r.offered_rate)) +
                            (r.rate_reached ? "" : " NOT REACHED: the generator fell behind"))
                               .c_str()
                         : "unlimited (closed loop)",
      static_cast<double>(r.completed) / r.elapsed_seconds,
      static_cast<double>(r.sent) / r.elapsed_seconds, us(r.latency.percentile(0.5)),
      us(r.latency.percentile(0.9)), us(r.latency.percentile(0.99)),
      us(r.latency.percentile(0.999)), us(r.latency.max()), r.latency.mean() / 1000.0);
  return text;
}

std::string json_report(const Report& r) {
  auto us = [](uint64_t ns) { return static_cast<double>(ns) / 1000.0; };
  nlohmann::json rcodes = nlohmann::json::object();
  for (size_t i = 0; i < r.rcodes.size(); ++i)
    if (r.rcodes[i] > 0) rcodes[kRcodeNames[i]] = r.rcodes[i];
  nlohmann::json histogram = nlohmann::json::array();
  for (unsigned i = 0; i < LatencyHistogram::kBuckets; ++i)
    if (const uint64_t n = r.latency.bucket_count(i); n > 0)
      histogram.push_back({us(LatencyHistogram::lower_bound(i)), n});
  const nlohmann::json out = {
      {"setup", r.setup},
      {"sent", r.sent},
      {"completed", r.completed},
      {"lost", r.lost},
      {"timed_out", r.timed_out},
      {"unmatched", r.unmatched},
      {"send_stalls", r.send_stalls},
      {"xdp_build_failures", r.xdp_build_failures},
      {"xdp_run_errors", r.xdp_run_errors},
      {"rcodes", rcodes},
      {"seconds", r.elapsed_seconds},
      {"interrupted", r.interrupted},
      {"offered_qps", r.offered_rate > 0 ? nlohmann::json(r.offered_rate) : nlohmann::json()},
      {"rate_reached", r.rate_reached},
      {"sent_qps", static_cast<double>(r.sent) / r.elapsed_seconds},
      {"completed_qps", static_cast<double>(r.completed) / r.elapsed_seconds},
      {"latency_us",
       {{"p50", us(r.latency.percentile(0.5))},
        {"p90", us(r.latency.percentile(0.9))},
        {"p99", us(r.latency.percentile(0.99))},
        {"p99.9", us(r.latency.percentile(0.999))},
        {"max", us(r.latency.max())},
        {"mean", r.latency.mean() / 1000.0}}},
      {"histogram_us", histogram}};
  return out.dump();
}

}  // namespace dnsproxy::loadgen
