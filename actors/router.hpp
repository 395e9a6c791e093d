#pragma once

// The router: one per model. It owns the version table (version -> batcher,
// state), picks a version for each request and delegates to its batcher, so
// the router is not on the reply path. A model whose config.json enables the
// response cache goes through the node's cache actor instead, keyed by the
// chosen version and the digest of the model.pt its batcher loaded. The table
// is actor state, changed only inside the router's own handlers: no locks.

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include <caf/actor_system.hpp>

#include "config/compute_plan.hpp"
#include "config/model_config.hpp"
#include "messages/interfaces.hpp"
#include "telemetry/metrics.hpp"

namespace actorserve {

struct router_settings {
  std::string model;
  std::string node;                // this node's name, shown beside each version's status
  std::filesystem::path directory; // the model's folder in the repository
  model_config config;
  std::vector<std::string> versions; // version folders to load at start
  std::chrono::seconds load_timeout{300};
  bool fault_injection = false; // see instance_settings
  compute_defaults compute;     // the CPU budget and flags behind each version's plan
  std::shared_ptr<metrics> stats;
  /// The node's response cache, asked instead of the batcher when the
  /// model's config.json enables it; null: no cache.
  response_cache_actor cache;
  /// When set, config.json could not be used: every version is failed with
  /// this reason and nothing is loaded.
  std::string config_error;
};

/// Spawns a router; it starts loading every version at once.
router_actor spawn_router(caf::actor_system& system, router_settings settings);

} // namespace actorserve
