// The /proc/self/maps line of the mapping that holds an address, for tests that check where
// memory lives (a file's mapping or anonymous memory).
#pragma once

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <string>

namespace loom::testing {

// "start-end perms offset dev inode path" of the mapping holding `p`; empty when none does.
inline std::string mapping_of(const void* p) {
  std::ifstream maps("/proc/self/maps");
  std::string line;
  const auto a = reinterpret_cast<uintptr_t>(p);
  while (std::getline(maps, line)) {
    uintptr_t start = 0, end = 0;
    if (std::sscanf(line.c_str(), "%lx-%lx", &start, &end) == 2 && a >= start && a < end)
      return line;
  }
  return {};
}

}  // namespace loom::testing
