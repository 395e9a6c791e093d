#pragma once

// The job store: one per node. Async jobs live here from submission until
// their result expires: id -> state, request and result. At most
// max_running jobs are in the routers at once; the rest wait here in order,
// so a cancelled queued job never runs. Bounded by count and bytes: when full,
// submissions are refused (503) and nothing stored is dropped early. Finished
// jobs expire ttl after they finished, swept by a timer. At shutdown, drain
// refuses new jobs and answers once the queued and running ones finished.

#include <chrono>
#include <cstdint>
#include <memory>

#include <caf/actor_system.hpp>

#include "messages/interfaces.hpp"

namespace actorserve {

class metrics;

struct job_store_settings {
  std::chrono::seconds ttl{600};
  int32_t max_jobs = 10000;
  int64_t max_bytes = 256 * 1024 * 1024; // inputs and results held at once
  int32_t max_running = 32;
  std::chrono::milliseconds sweep_interval{1000};
  std::shared_ptr<metrics> stats; // actorserve_jobs_total; may be null
};

job_store_actor spawn_job_store(caf::actor_system& system, job_store_settings settings);

/// 128 random bits from the OS's CSPRNG, as 32 hex digits.
std::string make_job_id();

} // namespace actorserve
