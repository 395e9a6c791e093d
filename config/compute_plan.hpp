#pragma once

// How many model instances a version gets, and how many intra-op threads
// each instance's forward calls use: config.json first (`instances`,
// `threads`), then the server flags (--instances, --torch-threads), then a
// rule over the process's CPU budget (config/cpu_budget.hpp) and the size of
// the version's TorchScript archive. Plain functions; called by the router
// when it spawns a version.

#include <cstdint>

namespace actorserve {

/// What one version got.
struct compute_plan {
  int32_t instances = 1;
  int32_t threads = 1; // intra-op threads of each instance
};

/// The server-wide part: the budget and the flags (0 = let the rule decide).
struct compute_defaults {
  int32_t cpus = 1;      // CPUs the process may use (find_cpu_budget)
  int32_t instances = 0; // --instances
  int32_t threads = 0;   // --torch-threads
};

/// Archives at least this large hold a "large" model (see plan_compute).
constexpr uint64_t large_model_bytes = 16ull * 1024 * 1024;

/// Intra-op threads of each instance of a large model, by default.
constexpr int32_t large_model_threads = 2;

/// The plan of one version. `config_instances` and `config_threads` are
/// config.json's (0 = not set), `model_bytes` the size of its model.pt.
compute_plan plan_compute(const compute_defaults& defaults, int32_t config_instances,
                          int32_t config_threads, uint64_t model_bytes);

} // namespace actorserve
