#pragma once

// Async jobs kept in Redis, shared by every node: the calls the Redis job
// store actor (actors/redis_job_store.hpp) makes, each one round trip over
// its redis_connection, each atomic in Redis (actors/redis_job_scripts.hpp
// holds the scripts and the key layout). Not thread-safe: used by the thread
// that owns the connection. Errors are values: `unavailable` while Redis is
// unreachable or slow, `internal` for a reply it cannot read.
//
// The reliable-queue pattern: a job taken is leased; the node running it
// renews the lease; a lease that lapses (its node died) puts the job back at
// the front of its queue, so another node runs it (at least once).

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include <caf/expected.hpp>

#include "actors/redis_connection.hpp"
#include "messages/interfaces.hpp"

namespace actorserve {

struct redis_job_limits {
  int64_t max_jobs = 10000;
  int64_t max_bytes = 256 * 1024 * 1024; // inputs and results held at once
  std::chrono::milliseconds ttl{600'000};
  std::chrono::milliseconds lease{30'000};
};

/// A job this node took: run `request` (its timeout_ms is what is left of the
/// deadline; 0 or less: already passed) on `model`.
struct taken_job {
  std::string id;
  std::string model;
  predict_request request;
};

class redis_job_queue {
public:
  redis_job_queue(redis_connection& redis, redis_job_limits limits);

  /// Stores and queues a job under `id`; false when the store is full.
  caf::expected<bool> submit(const std::string& id, const job_submission& job);
  /// Takes and leases up to `count` queued jobs of `models`, in turns.
  caf::expected<std::vector<taken_job>> take(const std::vector<std::string>& models,
                                             int32_t count);
  /// Extends the leases of `ids`; replies with those no longer leased.
  caf::expected<std::vector<std::string>> renew(const std::vector<std::string>& ids);
  /// Stores a job's result or error (ignored when it was cancelled, expired
  /// or finished already); true when stored.
  caf::expected<bool> succeed(const std::string& id, const predict_reply& reply);
  caf::expected<bool> fail(const std::string& id, const caf::error& error);
  /// Puts running jobs back at the front of their queues, in the order of
  /// `ids` (this node could not run them now); replies with how many were
  /// running.
  caf::expected<int64_t> release(const std::vector<std::string>& ids);
  /// The job as it is now; job_not_found when unknown or expired.
  caf::expected<job_view> view(const std::string& id);
  /// Removes a queued job from its queue and forgets any job; false when
  /// there is no such job.
  caf::expected<bool> cancel(const std::string& id);
  /// Requeues the jobs whose lease lapsed and purges expired ones; replies
  /// with the number requeued.
  caf::expected<int64_t> reap();
  /// The number of jobs held (queued, running or finished), on every node.
  caf::expected<int64_t> count();

private:
  caf::expected<redis_reply> script(const std::string& body,
                                    const std::vector<std::string>& args);
  caf::expected<bool> store_outcome(const std::string& id, const char* state,
                                    const std::string& result, const std::string& code,
                                    const std::string& message);

  redis_connection& redis_;
  redis_job_limits limits_;
};

/// True for what make_job_id() makes (32 lowercase hex digits): anything else
/// cannot name a job, so it needs no look-up.
bool looks_like_job_id(const std::string& id);

} // namespace actorserve
