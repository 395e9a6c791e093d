#pragma once

// The registry: one per node. It scans the model repository at start, spawns
// one router per model and answers which router serves a model (with the
// spec HTTP needs to pre- and post-process), and the status of every model.

#include <chrono>
#include <filesystem>

#include <caf/actor_system.hpp>

#include "http/metrics.hpp"
#include "messages/interfaces.hpp"

namespace actorserve {

struct registry_settings {
  std::filesystem::path repository;
  std::chrono::seconds load_timeout{300};
  std::chrono::milliseconds status_timeout{5000}; // per router, for listings
  bool fault_injection = false;                   // see instance_settings
  std::shared_ptr<metrics> stats;
};

/// Scans the repository (throws config_error if it is unreadable) and spawns
/// the registry with one router per model found.
registry_actor spawn_registry(caf::actor_system& system,
                              const registry_settings& settings);

} // namespace actorserve
