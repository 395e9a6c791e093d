// The CPU budget read from fake cgroup trees (v1 and v2) and the real machine.

#include "config/cpu_budget.hpp"

#include <fstream>
#include <thread>

#include <gtest/gtest.h>
#include <unistd.h>

namespace actorserve {
namespace {

namespace fs = std::filesystem;

/// A fake /proc/self/cgroup and cgroup mount under a fresh temporary folder.
class fake_cgroups {
public:
  explicit fake_cgroups(const std::string& proc_self_cgroup) {
    static int counter = 0;
    dir_ = fs::temp_directory_path() / ("cpu_budget_test_" + std::to_string(getpid()) +
                                        "_" + std::to_string(++counter));
    fs::create_directories(dir_ / "cgroup");
    write("proc_self_cgroup", proc_self_cgroup);
  }
  ~fake_cgroups() { fs::remove_all(dir_); }

  /// Writes `text` to `file`, relative to the cgroup mount.
  void cgroup_file(const std::string& file, const std::string& text) {
    write(fs::path("cgroup") / file, text);
  }

  cpu_budget budget(int32_t affinity_cpus) const {
    return find_cpu_budget({dir_ / "proc_self_cgroup", dir_ / "cgroup", affinity_cpus});
  }

  fs::path mount() const { return dir_ / "cgroup"; }

private:
  void write(const fs::path& file, const std::string& text) {
    auto path = dir_ / file;
    fs::create_directories(path.parent_path());
    std::ofstream(path) << text;
  }

  fs::path dir_;
};

TEST(cpu_budget, parses_cgroup_v2_cpu_max) {
  EXPECT_FALSE(parse_cpu_max("max 100000\n"));
  EXPECT_DOUBLE_EQ(*parse_cpu_max("200000 100000\n"), 2.0);
  EXPECT_DOUBLE_EQ(*parse_cpu_max("150000 100000"), 1.5);
  EXPECT_FALSE(parse_cpu_max(""));
  EXPECT_FALSE(parse_cpu_max("200000"));
  EXPECT_FALSE(parse_cpu_max("lots 100000"));
  EXPECT_FALSE(parse_cpu_max("100000 0"));
}

TEST(cpu_budget, parses_cgroup_v1_quota_and_period) {
  EXPECT_FALSE(parse_cfs_quota("-1\n", "100000\n"));
  EXPECT_DOUBLE_EQ(*parse_cfs_quota("50000\n", "100000\n"), 0.5);
  EXPECT_DOUBLE_EQ(*parse_cfs_quota("300000", "100000"), 3.0);
  EXPECT_FALSE(parse_cfs_quota("300000", ""));
}

TEST(cpu_budget, v2_quota_bounds_the_affinity_rounded_up) {
  fake_cgroups fake("0::/kubepods/pod1\n");
  fake.cgroup_file("kubepods/pod1/cpu.max", "150000 100000\n");
  auto budget = fake.budget(8);
  EXPECT_EQ(budget.affinity_cpus, 8);
  ASSERT_TRUE(budget.quota_cpus);
  EXPECT_DOUBLE_EQ(*budget.quota_cpus, 1.5);
  EXPECT_EQ(budget.cpus, 2);
  EXPECT_EQ(fs::path(budget.quota_file), fake.mount() / "kubepods/pod1/cpu.max");
}

TEST(cpu_budget, the_tightest_ancestor_quota_wins) {
  fake_cgroups fake("0::/kubepods/pod1/container\n");
  fake.cgroup_file("kubepods/pod1/container/cpu.max", "max 100000\n");
  fake.cgroup_file("kubepods/pod1/cpu.max", "300000 100000\n");
  fake.cgroup_file("kubepods/cpu.max", "100000 100000\n");
  auto budget = fake.budget(16);
  EXPECT_EQ(budget.cpus, 1);
  EXPECT_EQ(fs::path(budget.quota_file), fake.mount() / "kubepods/cpu.max");
}

TEST(cpu_budget, no_quota_leaves_the_affinity) {
  fake_cgroups fake("0::/user.slice\n");
  fake.cgroup_file("user.slice/cpu.max", "max 100000\n");
  auto budget = fake.budget(3);
  EXPECT_FALSE(budget.quota_cpus);
  EXPECT_EQ(budget.cpus, 3);
}

TEST(cpu_budget, the_affinity_bounds_a_larger_quota) {
  fake_cgroups fake("0::/\n");
  fake.cgroup_file("cpu.max", "400000 100000\n");
  EXPECT_EQ(fake.budget(2).cpus, 2);
}

TEST(cpu_budget, a_quota_below_one_cpu_still_gives_one) {
  fake_cgroups fake("0::/small\n");
  fake.cgroup_file("small/cpu.max", "20000 100000\n");
  EXPECT_EQ(fake.budget(4).cpus, 1);
}

TEST(cpu_budget, v1_quota_through_the_cpu_controller_mount) {
  fake_cgroups fake("12:memory:/docker/abc\n4:cpu,cpuacct:/docker/abc\n0::/\n");
  fake.cgroup_file("cpu,cpuacct/docker/abc/cpu.cfs_quota_us", "300000\n");
  fake.cgroup_file("cpu,cpuacct/docker/abc/cpu.cfs_period_us", "100000\n");
  auto budget = fake.budget(8);
  ASSERT_TRUE(budget.quota_cpus);
  EXPECT_DOUBLE_EQ(*budget.quota_cpus, 3.0);
  EXPECT_EQ(budget.cpus, 3);
}

TEST(cpu_budget, v1_unlimited_quota_is_no_limit) {
  fake_cgroups fake("4:cpu,cpuacct:/\n");
  fake.cgroup_file("cpu/cpu.cfs_quota_us", "-1\n");
  fake.cgroup_file("cpu/cpu.cfs_period_us", "100000\n");
  EXPECT_EQ(fake.budget(6).cpus, 6);
}

// Inside a container without a cgroup namespace, /proc/self/cgroup names the
// host's path; the container's mount holds its own cgroup at its root.
TEST(cpu_budget, a_host_path_missing_from_the_mount_falls_back_to_its_root) {
  fake_cgroups fake("4:cpu,cpuacct:/docker/0123abcd\n");
  fake.cgroup_file("cpu/cpu.cfs_quota_us", "200000\n");
  fake.cgroup_file("cpu/cpu.cfs_period_us", "100000\n");
  EXPECT_EQ(fake.budget(8).cpus, 2);
}

TEST(cpu_budget, unreadable_sources_leave_the_affinity) {
  auto budget = find_cpu_budget({"/nonexistent/cgroup", "/nonexistent/fs", 5});
  EXPECT_FALSE(budget.quota_cpus);
  EXPECT_EQ(budget.cpus, 5);
}

TEST(cpu_budget, the_real_process_gets_between_one_and_its_affinity) {
  auto budget = find_cpu_budget();
  cpu_set_t set;
  ASSERT_EQ(sched_getaffinity(0, sizeof set, &set), 0);
  EXPECT_EQ(budget.affinity_cpus, CPU_COUNT(&set));
  EXPECT_GE(budget.cpus, 1);
  EXPECT_LE(budget.cpus, budget.affinity_cpus);
}

} // namespace
} // namespace actorserve
