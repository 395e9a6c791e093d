#pragma once

// The response cache: one actor per node, asked by the routers of models
// that enable it in config.json (`"response_cache": {"enable": true}`),
// instead of the batcher of the version they chose. A stored answer is
// returned at once: no batcher, no forward call. Otherwise the batcher is
// asked (the request keeps its cancel key, so a client that leaves still
// withdraws it from the batcher's queue) and a successful answer is stored.
//
// Two stores (--cache): "memory", an LRU bounded in bytes (response_lru)
// held by a cooperative actor; "redis", shared by every process that uses
// the same Redis, held by detached actors that own one connection each (their
// calls block their own thread for at most --redis-timeout-ms), taking
// requests in turn. When Redis
// fails, the cache is bypassed: the request goes to the batcher, is answered
// as a miss and counted as an error; the connection is dialled again after
// its backoff.

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>

#include <caf/actor_system.hpp>
#include <caf/typed_response_promise.hpp>

#include "actors/redis_connection.hpp"
#include "messages/interfaces.hpp"
#include "telemetry/cache_metrics.hpp"

namespace actorserve {

struct response_cache_settings {
  std::string store = "memory";          // "memory" or "redis"
  int64_t max_bytes = 256 * 1024 * 1024; // memory store bound
  std::chrono::seconds ttl{600};         // Redis entries' lifetime
  redis_settings redis;
  int32_t redis_connections = 4; // Redis calls in flight at once (one thread each)
  /// The longest wait for a batcher's answer when a request has no timeout
  /// of its own; otherwise its timeout_ms plus batcher_grace.
  std::chrono::milliseconds max_wait{300000};
  std::shared_ptr<cache_metrics> stats; // may be null in tests
};

/// Extra wait beyond a request's timeout, so that the batcher's own
/// deadline_exceeded answer arrives first.
inline constexpr std::chrono::milliseconds batcher_grace{250};

/// Spawns the cache with the store of `settings.store`.
response_cache_actor spawn_response_cache(caf::actor_system& system,
                                          response_cache_settings settings);

/// The batchers of the misses in flight by cancel key, so that a cancel
/// reaches the batcher after the request (the router's direct cancel to its
/// batchers may overtake a request that went through the cache). Part of a
/// store actor's state.
using pending_misses = std::unordered_map<uint64_t, batcher_actor>;

/// The miss path of every store: asks `batcher` for `request` (remembered in
/// `pending` while it runs, when it can be cancelled), hands a successful
/// answer to `store` (when set), and delivers it marked "miss"; an error is
/// delivered as it came.
void answer_from_batcher(response_cache_actor::pointer self, pending_misses& pending,
                         const batcher_actor& batcher, predict_request request,
                         std::chrono::milliseconds max_wait,
                         std::function<void(const tensor&)> store,
                         caf::typed_response_promise<predict_reply> promise);

/// The cancel handler of every store: the batcher of the pending miss with
/// this key, if any, withdraws it.
void cancel_miss(response_cache_actor::pointer self, const pending_misses& pending,
                 uint64_t cancel_key);

} // namespace actorserve
