#include "protocols/status_json.hpp"

namespace actorserve {

nlohmann::json to_json(const version_status& status) {
  nlohmann::json result{{"version", status.version},
                        {"state", to_string(status.state)},
                        {"load_time_ms", status.load_time_ms}};
  if (status.instances > 0) {
    result["instances"] = status.instances;
    result["threads"] = status.threads;
  }
  if (!status.error.empty())
    result["error"] = status.error;
  if (!status.node.empty())
    result["node"] = status.node;
  return result;
}

nlohmann::json to_json(const model_status& status) {
  auto versions = nlohmann::json::array();
  for (const auto& version : status.versions)
    versions.push_back(to_json(version));
  auto traffic = nlohmann::json::object();
  for (const auto& [version, weight] : status.traffic)
    traffic[version] = weight;
  return {{"name", status.name},
          {"default_version", status.default_version},
          {"traffic", traffic},
          {"ready", is_serving(status)},
          {"versions", versions}};
}

} // namespace actorserve
