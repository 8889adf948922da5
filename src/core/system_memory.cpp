#include "core/system_memory.h"

#include <algorithm>
#include <fstream>
#include <sstream>
#include <string>

namespace loom {

namespace {

// "MemTotal:       24523924 kB" -> bytes.
uint64_t meminfo_field(const std::string& text, const std::string& key) {
  const size_t at = text.find(key + ":");
  if (at == std::string::npos) return 0;
  std::istringstream in(text.substr(at + key.size() + 1));
  uint64_t kb = 0;
  in >> kb;
  return kb * 1024;
}

bool read_u64(const char* path, uint64_t& out) {
  std::ifstream f(path);
  std::string s;
  if (!(f >> s) || s == "max") return false;
  try {
    out = std::stoull(s);
  } catch (const std::exception&) {
    return false;
  }
  return true;
}

}  // namespace

SystemMemory read_system_memory() {
  SystemMemory m;
  std::ifstream f("/proc/meminfo");
  std::stringstream buf;
  buf << f.rdbuf();
  const std::string text = buf.str();
  m.total = meminfo_field(text, "MemTotal");
  m.available = meminfo_field(text, "MemAvailable");
  uint64_t limit = 0, current = 0;
  if (read_u64("/sys/fs/cgroup/memory.max", limit) && (m.total == 0 || limit < m.total)) {
    m.total = limit;
    m.cgroup_limited = true;
    if (read_u64("/sys/fs/cgroup/memory.current", current)) {
      const uint64_t left = limit > current ? limit - current : 0;
      m.available = m.available == 0 ? left : std::min(m.available, left);
    }
  }
  return m;
}

}  // namespace loom
