#pragma once

// The batcher: one per model version. It owns the version's model instances
// (detached, linked, monitored; all running one shared module) and a
// batch_queue. Requests from any number
// of clients wait in the queue; whenever an instance is idle and a batch is
// due (full, or the oldest request waited max_queue_delay_us), the batcher
// cuts a batch, sends it to that instance, and answers every request from its
// own slice of the output. A request sent with a cancel key can be withdrawn
// by it (its client went away): it leaves the queue, or its running rows'
// results are discarded. It runs on the cooperative scheduler and never
// blocks: forward calls run on the instances' own threads.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include <caf/local_actor.hpp>

#include "actors/model_instance.hpp"
#include "config/model_config.hpp"
#include "messages/interfaces.hpp"
#include "telemetry/metrics.hpp"

namespace actorserve {

/// How the batcher supervises its instances: a crashed instance is replaced
/// after initial_backoff, doubling per recent crash up to max_backoff; more
/// than max_restarts crashes within `window` fail the version.
struct restart_policy {
  int32_t max_restarts = 5;
  std::chrono::milliseconds window{60000};
  std::chrono::milliseconds initial_backoff{50};
  std::chrono::milliseconds max_backoff{2000};
};

struct batcher_settings {
  std::string model;
  std::string version;
  batching_config batching;
  int32_t instances = 1;
  instance_settings instance;
  restart_policy restarts;
  std::shared_ptr<metrics> stats; // shared, thread-safe; may be null in tests
};

/// Spawns a batcher linked to `parent`: it exits when the parent does, and the
/// parent hears of its exit. Its instances are spawned at once and loaded on
/// `load`.
batcher_actor spawn_linked_batcher(caf::local_actor* parent, batcher_settings settings);

} // namespace actorserve
