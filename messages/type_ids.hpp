#pragma once

// The one place message types are registered. A type that is not registered
// is sent to a remote node as an empty message (CAF 0.17), so every payload
// and every handle that may cross nodes is listed here, and
// tests/messages_test.cpp round-trips each of them.

#include <caf/actor_system_config.hpp>
#include <caf/type_id.hpp>

#include "messages/interfaces.hpp"

CAF_BEGIN_TYPE_ID_BLOCK(actorserve, caf::first_custom_type_id)

CAF_ADD_TYPE_ID(actorserve, (actorserve::tensor))
CAF_ADD_TYPE_ID(actorserve, (actorserve::model_spec))
CAF_ADD_TYPE_ID(actorserve, (actorserve::predict_request))
CAF_ADD_TYPE_ID(actorserve, (actorserve::predict_reply))
CAF_ADD_TYPE_ID(actorserve, (actorserve::version_status))
CAF_ADD_TYPE_ID(actorserve, (actorserve::model_status))
CAF_ADD_TYPE_ID(actorserve, (std::vector<actorserve::model_status>))
CAF_ADD_TYPE_ID(actorserve, (actorserve::batcher_stats))
CAF_ADD_TYPE_ID(actorserve, (actorserve::output_options))
CAF_ADD_TYPE_ID(actorserve, (actorserve::traffic_split))
CAF_ADD_TYPE_ID(actorserve, (actorserve::job_submission))
CAF_ADD_TYPE_ID(actorserve, (actorserve::job_view))
CAF_ADD_TYPE_ID(actorserve, (actorserve::instance_actor))
CAF_ADD_TYPE_ID(actorserve, (actorserve::batcher_actor))
CAF_ADD_TYPE_ID(actorserve, (actorserve::router_actor))
CAF_ADD_TYPE_ID(actorserve, (actorserve::registry_actor))
CAF_ADD_TYPE_ID(actorserve, (actorserve::job_store_actor))
CAF_ADD_TYPE_ID(actorserve, (actorserve::predictor_actor))
CAF_ADD_TYPE_ID(actorserve, (actorserve::replica_set_actor))
CAF_ADD_TYPE_ID(actorserve, (actorserve::hosted_model))
CAF_ADD_TYPE_ID(actorserve, (actorserve::node_catalog))
CAF_ADD_TYPE_ID(actorserve, (actorserve::replica))
CAF_ADD_TYPE_ID(actorserve, (std::vector<actorserve::replica>))
CAF_ADD_TYPE_ID(actorserve, (actorserve::response_cache_key))
CAF_ADD_TYPE_ID(actorserve, (actorserve::response_cache_actor))

CAF_END_TYPE_ID_BLOCK(actorserve)

namespace actorserve {

/// Registers every message type and the error category with `cfg`.
void register_message_types(caf::actor_system_config& cfg);

} // namespace actorserve
