#include "config/cpu_budget.hpp"

#include <sched.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>
#include <thread>
#include <vector>

namespace actorserve {

namespace {

namespace fs = std::filesystem;

std::optional<std::string> read_file(const fs::path& file) {
  std::ifstream in(file);
  if (!in)
    return std::nullopt;
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

std::optional<double> positive_number(const std::string& text) {
  try {
    size_t used = 0;
    double value = std::stod(text, &used);
    if (used == 0 || !(value > 0) || !std::isfinite(value))
      return std::nullopt;
    return value;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

int32_t affinity_count() {
  // A set for up to 4096 CPUs; hosts with more are rare enough.
  constexpr int max_cpus = 4096;
  cpu_set_t* set = CPU_ALLOC(max_cpus);
  if (set == nullptr)
    return 0;
  size_t size = CPU_ALLOC_SIZE(max_cpus);
  CPU_ZERO_S(size, set);
  int count = sched_getaffinity(0, size, set) == 0 ? CPU_COUNT_S(size, set) : 0;
  CPU_FREE(set);
  return count;
}

/// A cgroup's path and each of its ancestors up to the root, under `base`.
std::vector<fs::path> path_and_ancestors(const fs::path& base, const std::string& path) {
  std::vector<fs::path> result;
  fs::path relative = fs::path(path).relative_path();
  while (true) {
    result.push_back(base / relative);
    if (relative.empty())
      break;
    relative = relative.parent_path();
  }
  return result;
}

struct quota_reading {
  double cpus;
  fs::path file;
};

/// The tightest quota along `dirs`; a folder without the files sets none.
/// `read` turns a folder into its quota, if it has one.
template <class Read>
std::optional<quota_reading> tightest(const std::vector<fs::path>& dirs, Read read) {
  std::optional<quota_reading> best;
  for (const auto& dir : dirs)
    if (auto reading = read(dir); reading && (!best || reading->cpus < best->cpus))
      best = reading;
  return best;
}

std::optional<quota_reading> v2_quota(const fs::path& dir) {
  auto file = dir / "cpu.max";
  auto text = read_file(file);
  if (!text)
    return std::nullopt;
  if (auto cpus = parse_cpu_max(*text))
    return quota_reading{*cpus, file};
  return std::nullopt;
}

std::optional<quota_reading> v1_quota(const fs::path& dir) {
  auto quota = read_file(dir / "cpu.cfs_quota_us");
  auto period = read_file(dir / "cpu.cfs_period_us");
  if (!quota || !period)
    return std::nullopt;
  if (auto cpus = parse_cfs_quota(*quota, *period))
    return quota_reading{*cpus, dir / "cpu.cfs_quota_us"};
  return std::nullopt;
}

bool names_cpu_controller(const std::string& controllers) {
  std::istringstream list(controllers);
  std::string name;
  while (std::getline(list, name, ','))
    if (name == "cpu")
      return true;
  return false;
}

/// Every quota that applies to this process, read through /proc/self/cgroup
/// ("0::/path" for v2, "N:cpu,cpuacct:/path" for v1). Inside a container the
/// path may be the host's, absent from the container's mount: its ancestors
/// end at the mount's root, which is then the container's own cgroup.
std::optional<quota_reading> cgroup_quota(const cpu_budget_sources& sources) {
  auto table = read_file(sources.proc_self_cgroup);
  if (!table)
    return std::nullopt;
  std::optional<quota_reading> best;
  auto keep = [&](std::optional<quota_reading> reading) {
    if (reading && (!best || reading->cpus < best->cpus))
      best = reading;
  };
  std::istringstream lines(*table);
  std::string line;
  while (std::getline(lines, line)) {
    auto first = line.find(':');
    auto second = first == std::string::npos ? first : line.find(':', first + 1);
    if (second == std::string::npos)
      continue;
    auto id = line.substr(0, first);
    auto controllers = line.substr(first + 1, second - first - 1);
    auto path = line.substr(second + 1);
    if (id == "0" && controllers.empty()) {
      keep(tightest(path_and_ancestors(sources.cgroup_root, path), v2_quota));
    } else if (names_cpu_controller(controllers)) {
      for (const auto& mount : {fs::path("cpu"), fs::path(controllers)})
        keep(tightest(path_and_ancestors(sources.cgroup_root / mount, path), v1_quota));
    }
  }
  return best;
}

} // namespace

std::optional<double> parse_cpu_max(const std::string& text) {
  std::istringstream in(text);
  std::string quota, period;
  if (!(in >> quota >> period) || quota == "max")
    return std::nullopt;
  auto q = positive_number(quota);
  auto p = positive_number(period);
  if (!q || !p)
    return std::nullopt;
  return *q / *p;
}

std::optional<double> parse_cfs_quota(const std::string& quota,
                                      const std::string& period) {
  auto q = positive_number(quota); // -1: no limit
  auto p = positive_number(period);
  if (!q || !p)
    return std::nullopt;
  return *q / *p;
}

cpu_budget find_cpu_budget(const cpu_budget_sources& sources) {
  cpu_budget budget;
  int32_t affinity = sources.affinity_cpus > 0 ? sources.affinity_cpus : affinity_count();
  if (affinity <= 0)
    affinity = static_cast<int32_t>(std::max(1u, std::thread::hardware_concurrency()));
  budget.affinity_cpus = affinity;
  budget.cpus = affinity;
  if (auto quota = cgroup_quota(sources)) {
    budget.quota_cpus = quota->cpus;
    budget.quota_file = quota->file.string();
    // A quota of 1.5 CPUs lets 2 threads run most of the time: round up.
    auto quota_cpus = static_cast<int32_t>(std::ceil(quota->cpus - 1e-9));
    budget.cpus = std::min(affinity, std::max(1, quota_cpus));
  }
  return budget;
}

} // namespace actorserve
