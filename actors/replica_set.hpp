#pragma once

// The replica set: one per model that other nodes host too, spawned by the
// registry. It stays on the reply path of each request it forwards, so that
// when a node goes away (its router's down message) the requests pending on
// it are re-sent to another replica at once, or answered `unavailable` when
// none is left, instead of waiting for their own timeout (CAF 0.17 fails
// them only then). A cancel is answered here at once and passed on to the
// replica that holds the request.

#include <chrono>
#include <string>

#include <caf/actor_system.hpp>

#include "messages/interfaces.hpp"

namespace actorserve {

struct replica_set_settings {
  std::string model;
  /// Budget of a forwarded request that carries no timeout of its own.
  std::chrono::milliseconds default_timeout{60000};
};

replica_set_actor spawn_replica_set(caf::actor_system& system,
                                    replica_set_settings settings);

} // namespace actorserve
