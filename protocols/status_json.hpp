#pragma once

// Model statuses as the JSON of the public API (GET /api/v1/models), shared
// by the HTTP server and the admin tool.

#include <nlohmann/json.hpp>

#include "messages/payloads.hpp"

namespace actorserve {

nlohmann::json to_json(const version_status& status);
nlohmann::json to_json(const model_status& status);

} // namespace actorserve
