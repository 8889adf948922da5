// How much memory this process may use: the machine's (/proc/meminfo) or, inside a container or
// a memory cgroup, its cgroup's (v2 memory.max / memory.current, v1 memory.limit_in_bytes /
// memory.usage_in_bytes; the group's inactive file pages count as available, as MemAvailable
// counts the page cache), whichever is smaller.
// Thread-safety: free functions reading files; call from any thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace loom {

struct SystemMemory {
  uint64_t total = 0;      // MemTotal, or the cgroup limit when lower
  uint64_t available = 0;  // MemAvailable, or what the cgroup limit leaves when lower
  bool cgroup_limited = false;
};

// Zeros when nothing can be read (not Linux).
SystemMemory read_system_memory();

// The parts of read_system_memory, from the files' text (for tests). `limit` is the cgroup's
// limit file ("max" or a huge v1 value: no limit), `usage` its usage file and `stat` its
// memory.stat ("inactive_file N" in v2, "total_inactive_file N" in v1); empty when absent.
SystemMemory system_memory_from(std::string_view meminfo, std::string_view limit,
                                std::string_view usage, std::string_view stat);

// The directory of this process's memory cgroup, from /proc/self/cgroup: v1 ("N:memory:/path",
// under /sys/fs/cgroup/memory; `v1` set) or v2 ("0::/path", under /sys/fs/cgroup). Inside a
// container the namespace makes the path "/" and the files are at the mount's root. Empty when
// there is none.
std::string memory_cgroup_dir(bool& v1);

// Whether `bytes` more can be held in memory with room to spare (an eighth of the total, at
// least 512 MiB, stays free for the KV cache, activations and everything else), by `mem`.
// True when nothing could be read (no figures: assume it fits, as before).
bool fits_in_memory(uint64_t bytes, const SystemMemory& mem);

}  // namespace loom
