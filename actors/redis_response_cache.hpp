#pragma once

// The Redis store of the response cache (see actors/response_cache.hpp):
// redis_connections detached workers, each owning one redis_connection,
// behind a front actor that hands them requests in turn. GET on every request; on a
// miss the batcher's answer is stored with SET ... PX ttl. A failed GET
// bypasses the cache for that request (counted as an error); a failed SET
// only loses the entry. Failures and recoveries are logged once each.

#include <caf/actor_system.hpp>

#include "actors/response_cache.hpp"

namespace actorserve {

response_cache_actor spawn_redis_response_cache(caf::actor_system& system,
                                                response_cache_settings settings);

} // namespace actorserve
