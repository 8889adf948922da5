#include "core/system_memory.h"

#include <gtest/gtest.h>

namespace loom {
namespace {

constexpr const char* kMeminfo =
    "MemTotal:       24683748 kB\n"
    "MemFree:         1000000 kB\n"
    "MemAvailable:   22594272 kB\n"
    "Buffers:           12345 kB\n";
constexpr uint64_t kGiB = uint64_t{1} << 30;

TEST(SystemMemory, MachineFiguresWithoutACgroupLimit) {
  for (const char* limit : {"", "max\n", "9223372036854771712\n"}) {
    const SystemMemory m = system_memory_from(kMeminfo, limit, "5092806656\n", "");
    EXPECT_EQ(m.total, uint64_t{24683748} * 1024) << limit;
    EXPECT_EQ(m.available, uint64_t{22594272} * 1024) << limit;
    EXPECT_FALSE(m.cgroup_limited) << limit;
  }
}

// A limit above the machine's memory changes nothing; "MemAvailable" is not "MemAvailableX".
TEST(SystemMemory, LimitAboveTheMachineIsIgnored) {
  const SystemMemory m = system_memory_from(kMeminfo, "68719476736\n", "1000\n", "");
  EXPECT_FALSE(m.cgroup_limited);
  EXPECT_EQ(system_memory_from("MemAvailableX: 5 kB\nMemTotal: 10 kB\n", "", "", "").available, 0u);
}

TEST(SystemMemory, CgroupV2LimitLessItsUsageButNotItsInactiveFiles) {
  // 8 GiB limit, 5 GiB used of which 2 GiB are inactive page cache: 5 GiB left.
  const SystemMemory m = system_memory_from(kMeminfo, "8589934592\n", "5368709120\n",
                                            "anon 100\nfile 3000\ninactive_file 2147483648\n");
  EXPECT_TRUE(m.cgroup_limited);
  EXPECT_EQ(m.total, 8 * kGiB);
  EXPECT_EQ(m.available, 5 * kGiB);
}

TEST(SystemMemory, CgroupV1TotalInactiveFile) {
  const SystemMemory m =
      system_memory_from(kMeminfo, "4294967296", "4294967296",
                         "cache 10\ninactive_file 1\ntotal_inactive_file 1073741824\n");
  // v1's usage is hierarchical, as total_inactive_file is (the group's own inactive_file is
  // not what to subtract).
  EXPECT_EQ(m.total, 4 * kGiB);
  EXPECT_EQ(m.available, kGiB);
  const SystemMemory t =
      system_memory_from(kMeminfo, "4294967296", "4294967296", "total_inactive_file 1073741824\n");
  EXPECT_EQ(t.available, kGiB);
  // Usage above the limit (it happens briefly): nothing left, not a wrap-around.
  EXPECT_EQ(system_memory_from(kMeminfo, "4294967296", "5000000000", "").available, 0u);
}

TEST(SystemMemory, TheSmallerOfMachineAndCgroup) {
  // The cgroup leaves 7 GiB but the machine has only 1 GiB available.
  const SystemMemory m = system_memory_from("MemTotal: 16777216 kB\nMemAvailable: 1048576 kB\n",
                                            "8589934592", "1073741824", "");
  EXPECT_EQ(m.available, kGiB);
}

TEST(SystemMemory, FitsLeavesAnEighthOrHalfAGibibyteFree) {
  SystemMemory m;
  EXPECT_TRUE(fits_in_memory(100 * kGiB, m));  // nothing known: as before, copy
  m.total = 24 * kGiB;
  m.available = 22 * kGiB;
  EXPECT_TRUE(fits_in_memory(19 * kGiB, m));  // 3 GiB (an eighth) left
  EXPECT_FALSE(fits_in_memory(19 * kGiB + 1, m));
  EXPECT_FALSE(fits_in_memory(30 * kGiB, m));  // more than there is: no wrap-around
  m.total = 2 * kGiB;
  m.available = kGiB;
  EXPECT_TRUE(fits_in_memory(kGiB / 2, m));  // 512 MiB at least
  EXPECT_FALSE(fits_in_memory(kGiB / 2 + 1, m));
}

TEST(SystemMemory, ReadsThisMachine) {
  const SystemMemory m = read_system_memory();
  EXPECT_GT(m.total, 0u);
  EXPECT_GT(m.available, 0u);
  EXPECT_LE(m.available, m.total);
}

}  // namespace
}  // namespace loom
