#pragma once

// What GET /health says about the models (any serving, how many), asked of
// the registry at most once per refresh interval and shared by every HTTP
// thread in between. A liveness probe answers from this view, so polling it
// (orchestrators, load balancers, benchmarks) costs no actor round trip per
// request; the view is at most one interval old. /ready still asks every
// time: it gates traffic.

#include <chrono>
#include <cstddef>
#include <mutex>

#include <caf/actor_system.hpp>

#include "messages/interfaces.hpp"

namespace actorserve {

struct model_health {
  bool model_loaded = false; // some model has a serving version
  size_t models = 0;
};

class model_health_view {
public:
  model_health_view(caf::actor_system& system, registry_actor registry,
                    std::chrono::milliseconds refresh_interval);

  /// The current view; refreshed first when older than the interval. A
  /// failed refresh keeps the last view (and is retried on the next call).
  /// Thread-safe; one caller refreshes while the others wait for it.
  model_health current();

private:
  using clock = std::chrono::steady_clock;

  caf::actor_system& system_;
  registry_actor registry_;
  const std::chrono::milliseconds refresh_interval_;
  std::mutex mutex_;
  model_health view_;
  clock::time_point refreshed_{};
};

} // namespace actorserve
