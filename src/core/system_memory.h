// How much memory this process may use: the machine's (/proc/meminfo) or, inside a container,
// its cgroup's (cgroup v2 memory.max / memory.current), whichever is smaller.
// Thread-safety: a free function reading files; call from any thread.
#pragma once

#include <cstdint>

namespace loom {

struct SystemMemory {
  uint64_t total = 0;      // MemTotal, or the cgroup limit when lower
  uint64_t available = 0;  // MemAvailable, or what the cgroup limit leaves when lower
  bool cgroup_limited = false;
};

// Zeros when nothing can be read (not Linux).
SystemMemory read_system_memory();

}  // namespace loom
