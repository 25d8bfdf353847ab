// The L3 allow map (dnsproxy_fqdn_allow in datapath/bpf/dnsproxy_abi.h): the (endpoint,
// destination) pairs an agent plumbed for toFQDNs rules, each until an expiry. The agent owns and
// writes it; l3_guard reads it. Control plane only: every call is a syscall.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

#include "common/result.h"
#include "datapath/abi.h"
#include "datapath/policy_mirror.h"  // Fd
#include "policy/ip_address.h"

namespace dnsproxy::datapath::agent {

// The map's expiries are CLOCK_MONOTONIC nanoseconds, the clock of bpf_ktime_get_ns; libstdc++'s
// steady_clock reads the same clock, so a time_point converts by its count alone.
using Clock = std::chrono::steady_clock;

class AllowMap {
 public:
  [[nodiscard]] static Result<AllowMap> create(uint32_t max_entries = DNSPROXY_FQDN_ALLOW_MAX);
  // Opens a map another process pinned, checking its type and key / value sizes.
  [[nodiscard]] static Result<AllowMap> open_pinned(const std::string& path);
  [[nodiscard]] Result<void> pin(const std::string& path) const;

  // (endpoint, ip) allowed until `expires`; an entry that already allows longer keeps its expiry.
  [[nodiscard]] Result<void> allow(uint32_t endpoint_id, const policy::IpAddress& ip,
                                   Clock::time_point expires) const;
  // Whether (endpoint, ip) is allowed at `now`.
  [[nodiscard]] Result<bool> allows(uint32_t endpoint_id, const policy::IpAddress& ip,
                                    Clock::time_point now) const;
  // Deletes (endpoint, ip) if its expiry is at or before `now`; returns whether it did (false
  // when it was extended meanwhile, or is gone).
  [[nodiscard]] Result<bool> remove_if_expired(uint32_t endpoint_id, const policy::IpAddress& ip,
                                               Clock::time_point now) const;
  // visit(endpoint_id, ip, expires) for every entry (a walk: one syscall per entry).
  [[nodiscard]] Result<void> for_each(const std::function<void(uint32_t, const policy::IpAddress&,
                                                               Clock::time_point)>& visit) const;
  [[nodiscard]] Result<size_t> size() const;

  [[nodiscard]] int fd() const noexcept { return fd_.get(); }

 private:
  explicit AllowMap(Fd fd) : fd_(std::move(fd)) {}
  Fd fd_;
};

}  // namespace dnsproxy::datapath::agent
