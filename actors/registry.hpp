#pragma once

// The registry: one per node. It scans the model repository at start, spawns
// one router per model, publishes who serves each model (with the spec HTTP
// needs to pre- and post-process) in the predictor directory, and answers
// the status of every model. Whole models are loaded and unloaded at runtime
// (admin messages, or the repository poll when enabled).
//
// In a cluster it also holds the node's view of its peers: each peer's
// registry (monitored) and catalog, pulled every sync interval. A model that
// other nodes host gets a replica set that spreads requests over every
// node's router; admin messages go to every node hosting the model. Peers
// arrive through `join` (see actors/cluster.hpp) and leave on their down
// message.

#include <chrono>
#include <filesystem>

#include <caf/actor_system.hpp>

#include "actors/predictor_directory.hpp"
#include "config/compute_plan.hpp"
#include "messages/interfaces.hpp"
#include "telemetry/metrics.hpp"

namespace actorserve {

struct registry_settings {
  std::filesystem::path repository;
  std::chrono::seconds load_timeout{300};
  std::chrono::milliseconds status_timeout{5000}; // per router, for listings
  bool fault_injection = false;                   // see instance_settings
  compute_defaults compute; // each version's instances and threads (router_settings)
  std::shared_ptr<metrics> stats;
  std::shared_ptr<predictor_directory> directory; // written by the registry only
  std::string node; // this node's name in listings and catalogs ("" alone)
  std::chrono::milliseconds sync_interval{1000};    // catalog pull from peers
  std::chrono::milliseconds replica_timeout{60000}; // see replica_set_settings
  /// Rescan of the repository (0 = off): new model and version folders load
  /// once settled, gone ones unload, a changed config.json reloads.
  std::chrono::seconds poll_interval{0};
  /// The node's response cache, for models that enable it; null: none.
  response_cache_actor cache;
};

/// Scans the repository (throws config_error if it is unreadable) and spawns
/// the registry with one router per model found.
registry_actor spawn_registry(caf::actor_system& system,
                              const registry_settings& settings);

} // namespace actorserve
