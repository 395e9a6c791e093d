#pragma once

// The Redis job store: one per node, the same interface as the in-memory one
// (actors/job_store.hpp), chosen with `--job-store redis`. Jobs are kept and
// queued in Redis (actors/redis_job_queue.hpp), so any node reads, cancels
// and runs them, and they outlive the node that took them.
//
// Detached (its own thread): it owns one blocking redis_connection, each call
// bounded by the Redis timeout, so neither a scheduler thread nor an HTTP
// thread ever waits on Redis. On a timer it takes queued jobs of the models
// in this node's predictor directory (at most max_running at once, and right
// after a local submission), renews the leases of the jobs it runs, and
// requeues jobs whose lease lapsed (any node does). While Redis is away
// every job call answers `unavailable` and the store keeps retrying; an
// outcome Redis did not take is kept and stored once it is back.
//
// At shutdown, drain refuses new jobs, stops taking queued ones (they stay
// in Redis for the other nodes or the next start) and answers once the jobs
// this node runs have finished.

#include <chrono>
#include <cstdint>
#include <memory>

#include <caf/actor_system.hpp>

#include "actors/predictor_directory.hpp"
#include "actors/redis_connection.hpp"
#include "actors/redis_job_queue.hpp"

namespace actorserve {

class metrics;

struct redis_job_store_settings {
  redis_settings redis;
  redis_job_limits limits;
  int32_t max_running = 32;
  std::chrono::milliseconds poll_interval{50};
  std::shared_ptr<const predictor_directory> directory;
  std::shared_ptr<metrics> stats; // actorserve_jobs_total; may be null
};

job_store_actor spawn_redis_job_store(caf::actor_system& system,
                                      redis_job_store_settings settings);

} // namespace actorserve
