#include "http/door.hpp"

#include <algorithm>
#include <random>
#include <set>

#include <caf/send.hpp>

#include "config/model_repository.hpp" // is_version_name, version_order
#include "http/bridge.hpp"
#include "http/edge_server.hpp"
#include "messages/digest.hpp"

namespace actorserve {

uint64_t next_cancel_key() {
  // From a random start, so that keys of different nodes do not meet.
  static std::atomic<uint64_t> next{(uint64_t{std::random_device{}()} << 32) | 1};
  uint64_t key = next.fetch_add(1, std::memory_order_relaxed);
  return key == 0 ? next.fetch_add(1, std::memory_order_relaxed) : key;
}

void check_pinned_version(const std::string& pinned) {
  if (!pinned.empty() && !is_version_name(pinned))
    throw api_error{ec::version_not_found, "version '" + pinned + "' does not exist",
                    "version"};
}

std::chrono::milliseconds remaining(std::chrono::steady_clock::time_point deadline) {
  return std::max(std::chrono::duration_cast<std::chrono::milliseconds>(
                      deadline - std::chrono::steady_clock::now()),
                  std::chrono::milliseconds{1});
}

predict_reply ask_prediction(caf::actor_system& system, const directory_entry& model,
                             predict_request request) {
  auto timeout = std::chrono::milliseconds{request.timeout_ms} + reply_grace;
  // Digested here, on the door's thread, never on the scheduler's.
  if (model.spec.response_cache)
    request.input_digest = tensor_digest(request.input);
  // A client that leaves while its prediction waits withdraws it.
  request.cancel_key = next_cancel_key();
  edge_server::hangup_watch client_gone{
      [predictor = model.predictor, key = request.cancel_key] {
        caf::anon_send(predictor, atom::cancel_v, key);
      }};
  auto [reply] = value_or_throw(ask<predict_reply>(system, model.predictor, timeout,
                                                   atom::predict_v, std::move(request)));
  return reply;
}

void set_reply_headers(httplib::Response& res, const predict_reply& reply) {
  res.set_header("X-Model-Version", reply.version);
  if (!reply.node.empty())
    res.set_header("X-Served-By", reply.node);
  if (!reply.cache.empty())
    res.set_header("X-Cache", reply.cache);
}

model_status status_of(const route_context& context, const std::string& model) {
  auto [status] = value_or_throw(ask<model_status>(
      context.system, context.registry, control_timeout, atom::status_v, model));
  return status;
}

std::vector<std::string> version_names(const model_status& status) {
  std::set<std::string, version_order> names;
  for (const auto& version : status.versions)
    names.insert(version.version);
  return {names.begin(), names.end()};
}

void check_version(const model_status& status, const std::string& version) {
  auto names = version_names(status);
  if (!version.empty() && std::find(names.begin(), names.end(), version) == names.end())
    throw api_error{ec::version_not_found,
                    "model '" + status.name + "' has no version '" + version + "'",
                    "version"};
}

model_status status_with_version(const route_context& context, const std::string& model,
                                 const std::string& version) {
  auto status = status_of(context, model);
  check_version(status, version);
  return status;
}

std::string path_version(const httplib::Request& req) {
  return req.matches.size() > 2 ? std::string{req.matches[2]} : std::string{};
}

std::vector<model_status> list_models(const route_context& context) {
  auto [statuses] = value_or_throw(ask<std::vector<model_status>>(
      context.system, context.registry, control_timeout, atom::list_v));
  return statuses;
}

std::vector<model_status> require_ready(const route_context& context) {
  if (context.draining)
    throw api_error{ec::unavailable, "the server is shutting down", {}};
  auto statuses = list_models(context);
  for (const auto& status : statuses)
    if (!is_serving(status))
      throw api_error{
          ec::model_loading, "model " + status.name + " has no serving version", {}};
  return statuses;
}

} // namespace actorserve
