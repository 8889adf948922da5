#include "core/system_memory.h"

#include <algorithm>
#include <charconv>
#include <fstream>
#include <sstream>
#include <string>

namespace loom {

namespace {

// The first unsigned number after `key` followed by `sep` at the start of a line ("MemTotal:
// 24523924 kB", "inactive_file 4096"); 0 when absent.
uint64_t field(std::string_view text, std::string_view key, char sep) {
  size_t at = 0;
  while (at < text.size()) {
    const size_t end = std::min(text.find('\n', at), text.size());
    std::string_view line = text.substr(at, end - at);
    if (line.size() > key.size() && line.substr(0, key.size()) == key && line[key.size()] == sep) {
      line.remove_prefix(key.size() + 1);
      while (!line.empty() && (line.front() == ' ' || line.front() == '\t')) line.remove_prefix(1);
      uint64_t v = 0;
      std::from_chars(line.data(), line.data() + line.size(), v);
      return v;
    }
    at = end + 1;
  }
  return 0;
}

// A limit or usage file: one number; "max" or nothing gives 0 (none).
uint64_t number(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\n')) text.remove_prefix(1);
  uint64_t v = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  return ec == std::errc() ? v : 0;
}

std::string slurp(const std::string& path) {
  std::ifstream f(path);
  std::stringstream buf;
  buf << f.rdbuf();
  return buf.str();
}

}  // namespace

SystemMemory system_memory_from(std::string_view meminfo, std::string_view limit,
                                std::string_view usage, std::string_view stat) {
  SystemMemory m;
  m.total = field(meminfo, "MemTotal", ':') * 1024;
  m.available = field(meminfo, "MemAvailable", ':') * 1024;
  const uint64_t cap = number(limit);
  // cgroup v1 writes "no limit" as the largest page-aligned signed value.
  if (cap == 0 || cap >= (uint64_t{1} << 62) || (m.total != 0 && cap >= m.total)) return m;
  m.total = cap;
  m.cgroup_limited = true;
  uint64_t used = number(usage);
  // v1's usage counts the group's children too, as its total_ figures do.
  uint64_t inactive_file = field(stat, "total_inactive_file", ' ');
  if (inactive_file == 0) inactive_file = field(stat, "inactive_file", ' ');
  used = used > inactive_file ? used - inactive_file : 0;
  const uint64_t left = cap > used ? cap - used : 0;
  m.available = m.available == 0 ? left : std::min(m.available, left);
  return m;
}

SystemMemory read_system_memory() {
  bool v1 = false;
  const std::string dir = memory_cgroup_dir(v1);
  std::string limit, usage, stat;
  if (!dir.empty()) {
    limit = slurp(dir + (v1 ? "/memory.limit_in_bytes" : "/memory.max"));
    usage = slurp(dir + (v1 ? "/memory.usage_in_bytes" : "/memory.current"));
    stat = slurp(dir + "/memory.stat");
  }
  return system_memory_from(slurp("/proc/meminfo"), limit, usage, stat);
}

std::string memory_cgroup_dir(bool& v1) {
  const std::string self = slurp("/proc/self/cgroup");
  std::istringstream in(self);
  std::string line;
  while (std::getline(in, line)) {
    const size_t a = line.find(':');
    const size_t b = a == std::string::npos ? a : line.find(':', a + 1);
    if (b == std::string::npos) continue;
    const std::string controllers = line.substr(a + 1, b - a - 1);
    const std::string path = line.substr(b + 1);
    if (controllers == "memory") {
      v1 = true;
      return "/sys/fs/cgroup/memory" + (path == "/" ? std::string() : path);
    }
    if (controllers.empty() && line.compare(0, a, "0") == 0) {
      v1 = false;
      return "/sys/fs/cgroup" + (path == "/" ? std::string() : path);
    }
  }
  return {};
}

bool fits_in_memory(uint64_t bytes, const SystemMemory& mem) {
  if (mem.total == 0 && mem.available == 0) return true;
  const uint64_t spare = std::max(uint64_t{512} << 20, mem.total / 8);
  return bytes <= mem.available && mem.available - bytes >= spare;
}

}  // namespace loom
