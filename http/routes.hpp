#pragma once

// The routes of each HTTP protocol, installed on the one edge server behind
// the same gate (http/gate.hpp) and prediction path (http/door.hpp).

#include "http/door.hpp"

namespace actorserve {

class edge_server;
class metrics;

/// Our own API (../shared/API.md): /api/v1/... predictions, jobs, models and
/// their administration.
void install_v1_routes(edge_server& server, const route_context& context,
                       const job_store_actor& jobs);

/// The Open Inference Protocol over HTTP: /v2/...
void install_oip_routes(edge_server& server, const route_context& context);

/// TensorFlow Serving REST: /v1/models/...
void install_tfserving_routes(edge_server& server, const route_context& context);

/// The operator pages: GET /api/v1/stats and /dashboard for `viewer` callers
/// (as /metrics), GET /openapi.json for anyone.
void install_operator_routes(edge_server& server, const route_context& context,
                             const metrics& stats, access viewer);

} // namespace actorserve
