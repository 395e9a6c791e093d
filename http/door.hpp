#pragma once

// What the routes of every HTTP protocol share besides the gate: the actors
// and options they talk to, the ask helpers, and the one prediction path
// (the model's predictor asked with the request's deadline, the request
// withdrawn when its client goes away).

#include <atomic>
#include <chrono>
#include <memory>
#include <string>

#include <caf/actor_system.hpp>
#include <caf/expected.hpp>
#include <httplib.h>

#include "actors/predictor_directory.hpp"
#include "config/server_options.hpp"
#include "http/gate.hpp"
#include "messages/error.hpp"
#include "messages/interfaces.hpp"
#include "protocols/codec_support.hpp"

namespace actorserve {

/// Budget for control-plane asks (listings, health) that carry no deadline.
inline constexpr std::chrono::milliseconds control_timeout{5000};

/// Extra time a door waits beyond a request's deadline, so that the batcher's
/// own deadline_exceeded answer (which drops the queued work) arrives first.
inline constexpr std::chrono::milliseconds reply_grace{250};

/// Budget for loading a model (admin load, reload): its versions' loads and
/// warm-ups, and the control-plane ask around them.
inline std::chrono::milliseconds model_load_timeout(const server_options& options) {
  return std::chrono::seconds{options.load_timeout_s} + control_timeout;
}

/// Everything a protocol's routes need, valid while the server lives.
struct route_context {
  caf::actor_system& system;
  registry_actor registry;
  std::shared_ptr<const predictor_directory> directory;
  const server_options& options;
  const std::atomic<bool>& draining;
  request_limits limits;
  gatekeeper gate;
  size_t max_body;
};

template <class T> T value_or_throw(caf::expected<T>&& result) {
  if (!result)
    throw to_api_error(result.error());
  return std::move(*result);
}

/// A version pinned by a client (path or header): empty, or a version name;
/// anything else is version_not_found.
void check_pinned_version(const std::string& pinned);

/// A key naming one prediction to the actors that may withdraw it (see
/// predict_request::cancel_key): never 0, unique across a cluster's nodes.
uint64_t next_cancel_key();

/// How long a request may still take: at least 1 ms.
std::chrono::milliseconds remaining(std::chrono::steady_clock::time_point deadline);

/// Asks the model's predictor for `request` within its timeout_ms (plus a
/// grace that lets the batcher's own deadline answer arrive first); a client
/// that leaves meanwhile withdraws it. The input is digested for a model
/// whose response cache is on. Errors are thrown as api_error.
predict_reply ask_prediction(caf::actor_system& system, const directory_entry& model,
                             predict_request request);

/// X-Model-Version, X-Cache ("hit" or "miss") for a model whose response
/// cache is on and, in a cluster, X-Served-By of a reply.
void set_reply_headers(httplib::Response& res, const predict_reply& reply);

/// The model's status, from the registry (model_not_found when unknown).
model_status status_of(const route_context& context, const std::string& model);

/// The names of the model's versions, ascending, each once (a version hosted
/// by several nodes appears once per node in a status).
std::vector<std::string> version_names(const model_status& status);

/// A version named by a client ("" = none) must be one of the model's:
/// version_not_found otherwise.
void check_version(const model_status& status, const std::string& version);

/// The model's status, once `version` ("" = none) is known to be one of its
/// versions: what a route on a model's or a version's path starts with.
model_status status_with_version(const route_context& context, const std::string& model,
                                 const std::string& version);

/// The version part of a route matched as (model)[/versions/(version)]: ""
/// when the path has none.
std::string path_version(const httplib::Request& req);

/// Every model's status, from the registry.
std::vector<model_status> list_models(const route_context& context);

/// Every model's status when the server is ready; throws unavailable while
/// draining and model_loading while a model has no serving version: the
/// readiness of every door.
std::vector<model_status> require_ready(const route_context& context);

} // namespace actorserve
