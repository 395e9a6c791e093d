#pragma once

// The CPUs this process may use: the CPUs of its affinity mask, bounded by
// the CPU quota of its cgroup (v2 cpu.max, v1 cpu.cfs_quota_us /
// cpu.cfs_period_us, the tightest along the cgroup's path up to the
// hierarchy's root), rounded up, at least 1. Not the host's core count: a
// container limited to 2 CPUs on a 64-core host gets 2. Plain functions over
// files whose paths can be replaced (tests feed fake cgroup trees); read once
// at start, on the main thread.

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

namespace actorserve {

/// Where the budget is read from.
struct cpu_budget_sources {
  std::filesystem::path proc_self_cgroup = "/proc/self/cgroup";
  std::filesystem::path cgroup_root =
      "/sys/fs/cgroup"; // v2 mount, or the v1 mounts' parent
  /// CPUs in the affinity mask; 0 = ask sched_getaffinity.
  int32_t affinity_cpus = 0;
};

struct cpu_budget {
  int32_t affinity_cpus = 1;        // CPUs in the affinity mask
  std::optional<double> quota_cpus; // quota / period, when a cgroup limits it
  std::string quota_file;           // the file that set quota_cpus
  int32_t cpus = 1;                 // min(affinity, ceil(quota)), at least 1
};

/// Reads the affinity mask and the cgroup quota. Missing or unreadable files
/// mean "no quota"; never throws.
cpu_budget find_cpu_budget(const cpu_budget_sources& sources = {});

/// CPUs of a cgroup v2 `cpu.max` text ("max 100000" -> none, "150000 100000" -> 1.5);
/// none for text that is not one of these.
std::optional<double> parse_cpu_max(const std::string& text);

/// CPUs of cgroup v1 quota and period texts ("-1" quota -> none).
std::optional<double> parse_cfs_quota(const std::string& quota,
                                      const std::string& period);

} // namespace actorserve
