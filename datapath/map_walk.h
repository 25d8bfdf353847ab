// Walking a BPF hash or LPM trie map from user space, one key at a time (BPF_MAP_GET_NEXT_KEY,
// then a lookup), for the maps that have no batch operations or are small. Control plane only.
#pragma once

#include <bpf/bpf.h>

#include <cerrno>

namespace dnsproxy::datapath {

// Calls visit(key, value) for every entry; an entry deleted between its key and its lookup is
// skipped. Returns 0, or the errno of the call that failed (the walk stops there).
template <class Key, class Value, class Visit>
[[nodiscard]] int for_each_map_entry(int fd, Visit&& visit) {
  Key key{};
  Key next{};
  const Key* cursor = nullptr;  // null: the first key
  while (bpf_map_get_next_key(fd, cursor, &next) == 0) {
    key = next;
    cursor = &key;
    Value value{};
    if (bpf_map_lookup_elem(fd, &key, &value) != 0) {
      if (errno == ENOENT) continue;
      return errno;
    }
    visit(key, value);
  }
  return errno == ENOENT ? 0 : errno;
}

}  // namespace dnsproxy::datapath
