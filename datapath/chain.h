// Chaining dns_steer into a program array someone else owns (dnsproxyd --chain-into): an L3AF
// root program, or the previous program of an l3afd chain, tail-calls slot 0 of a program array it
// pinned (e.g. /sys/fs/bpf/<iface>/xdp-root/<version>/xdp_root_array); dns_steer takes that slot
// instead of attaching to the interface.
//
// Order: dns_steer goes in front of whatever the slot held, and that program becomes dns_steer's
// next (its dns_steer_next slot), so the chain behind the insertion point runs exactly as before
// for everything dns_steer passes. At stop the slot gets its old program back. Both switches are
// one map update each, after the next program is in place, so no packet meets a half-built chain.
//
// Crash recovery: a dns_steer found in the slot is the remains of a dead run (the caller holds the
// pin_dir lock, as for a direct attach): its own next program is what the slot held before it,
// so that is what we chain to and restore. Until insert() replaces it, the stale program keeps
// passing to that next program (we hold its next map open while its pins are removed), and our
// maps are pinned before insert(), so a crash at any point leaves a chain the next run repairs.
//
// Control thread only; every call is a few bpf() syscalls.
#pragma once

#include <cstdint>
#include <string>

#include "common/result.h"

namespace dnsproxy::datapath {

class ChainSlot {
 public:
  // Opens the pinned program array at `path` (a BPF_MAP_TYPE_PROG_ARRAY on a bpf filesystem)
  // and finds the program to chain to: what the slot holds, or behind a stale dns_steer what that
  // one chained to. Nothing is changed yet.
  static Result<ChainSlot> open(const std::string& path);

  ChainSlot(ChainSlot&& other) noexcept;
  ChainSlot& operator=(ChainSlot&&) = delete;
  ChainSlot(const ChainSlot&) = delete;
  ChainSlot& operator=(const ChainSlot&) = delete;
  ~ChainSlot();  // closes fds only: restore() is the caller's explicit step

  // The program dns_steer must tail-call for what it passes (-1: none, the slot was empty).
  int next_fd() const { return next_fd_; }
  uint32_t next_id() const { return next_id_; }
  bool replaced_stale() const { return stale_id_ != 0; }
  uint32_t stale_id() const { return stale_id_; }
  const std::string& path() const { return path_; }

  // Puts `prog_fd` (dns_steer, its next already installed) into slot 0 in one update.
  Result<void> insert(int prog_fd);
  // Puts the next program back into slot 0 (or empties it), but only while slot 0 still holds
  // what insert() put there: a chain rearranged since (by l3afd or an operator) is left alone,
  // and that is not an error. Idempotent.
  Result<void> restore();

 private:
  ChainSlot() = default;

  std::string path_;
  int map_fd_ = -1;
  int next_fd_ = -1;  // owned: keeps the next program alive while only we reference it
  uint32_t next_id_ = 0;
  uint32_t stale_id_ = 0;       // id of a dead run's dns_steer found in the slot, 0 if none
  int stale_next_map_fd_ = -1;  // that one's dns_steer_next, kept filled until insert()
  uint32_t inserted_id_ = 0;    // what insert() put in the slot, 0 if nothing
};

// The program in slot 0 of the program array `map_fd` (0 if empty).
Result<uint32_t> prog_array_slot0(int map_fd);

}  // namespace dnsproxy::datapath
