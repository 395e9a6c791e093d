#pragma once

// Token buckets per client (issue 5, "Rate limiting"). A client is an API key
// (bucket per key, with its role's rate) or, without a valid key, a client IP
// (the anonymous rate). Called on the HTTP threads: thread-safe, one mutex
// around a hash map; no CAF and no httplib here.
//
// Memory is bounded: a bucket that has refilled to its burst is the same as no
// bucket, so it is dropped by a sweep (every sweep_interval, and when the table
// is full); at most max_clients buckets are tracked. When the table is full of
// buckets that are still refilling, new clients share one overflow bucket per
// role, with that role's rate and burst: clients already tracked keep their
// own limits, and the newcomers together cannot exceed one client's rate
// (fails closed, memory stays bounded).

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include "http/auth.hpp" // role

namespace actorserve {

/// Requests per second and bucket size; per_s == 0 turns the limit off.
struct rate_limit {
  double per_s = 0;
  double burst = 0;
};

struct rate_limiter_options {
  rate_limit predict;   // clients with a predict key
  rate_limit admin;     // clients with an admin key
  rate_limit anonymous; // clients without a valid key, by IP
  size_t max_clients = 100000;
  std::chrono::seconds sweep_interval{10};
};

class rate_limiter {
public:
  using clock = std::chrono::steady_clock;
  using now_function = std::function<clock::time_point()>;

  explicit rate_limiter(rate_limiter_options options, now_function now = clock::now);

  /// Takes one token from `client`'s bucket (role::none: the anonymous rate).
  /// nullopt when the request may pass; else how long until a token is
  /// available, in whole seconds rounded up (at least 1).
  std::optional<std::chrono::seconds> acquire(const std::string& client, role caller);

  /// Buckets tracked now (overflow buckets not counted).
  size_t tracked_clients() const;

private:
  struct bucket {
    double tokens = 0;
    clock::time_point updated;
  };
  struct tracked_bucket {
    bucket state;
    role caller = role::none;
  };

  const rate_limit& limit_for(role caller) const;
  /// Drops buckets that have refilled to their burst. Caller holds mutex_.
  void sweep_locked(clock::time_point now);
  /// The bucket of `client`, a new full one, or the role's overflow bucket
  /// when the table is full. Caller holds mutex_.
  bucket& bucket_for_locked(const std::string& client, role caller,
                            const rate_limit& limit, clock::time_point now);

  rate_limiter_options options_;
  now_function now_;

  mutable std::mutex mutex_;
  std::unordered_map<std::string, tracked_bucket> buckets_; // guarded by mutex_
  std::array<bucket, 3> overflow_; // index: role; guarded by mutex_
  clock::time_point last_sweep_;   // guarded by mutex_
};

} // namespace actorserve
