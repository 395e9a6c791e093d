// The Open Inference Protocol (KServe v2) over HTTP: ../shared/API.md
// "Standard protocols". The codec (protocols/oip_codec.hpp) reads and writes
// the bodies; these routes add the gate, the model lookup and the prediction.

#include <algorithm>
#include <chrono>
#include <optional>

#include <nlohmann/json.hpp>

#include "http/bridge.hpp"
#include "http/edge_server.hpp"
#include "http/routes.hpp"
#include "protocols/oip_codec.hpp"
#include "protocols/oip_repository.hpp"

namespace actorserve {

namespace {

using json = nlohmann::json;

constexpr auto header_length_field = "Inference-Header-Content-Length";

void infer(const route_context& context, const httplib::Request& req,
           const std::string& body, httplib::Response& res) {
  auto started = std::chrono::steady_clock::now();
  auto pinned = path_version(req);
  check_pinned_version(pinned);
  std::optional<size_t> json_length;
  if (req.has_header(header_length_field))
    json_length =
        parse_inference_header_length(req.get_header_value(header_length_field));
  auto model = value_or_throw(context.directory->find(req.matches[1]));
  auto request = parse_oip_infer_request(body, json_length, model->spec, context.limits);
  auto deadline = started + std::chrono::milliseconds{request.timeout_ms};
  predict_request call{pinned, std::move(request.input), remaining(deadline).count()};
  call.priority = request.priority;
  auto reply = ask_prediction(context.system, *model, std::move(call));
  set_reply_headers(res, reply);
  auto answer = format_oip_infer_reply(reply, model->spec, request);
  res.status = 200;
  if (!answer.json_length) {
    res.set_content(std::move(answer.body), "application/json");
    return;
  }
  res.set_header(header_length_field, std::to_string(*answer.json_length));
  res.set_content(std::move(answer.body), "application/octet-stream");
}

/// POST /v2/repository/index: every version folder of the repository.
json repository_index_json(const route_context& context) {
  json index = json::array();
  for (const auto& entry : repository_index(
           scan_repository(context.options.model_repository), list_models(context))) {
    json item{{"name", entry.name}, {"state", entry.state}, {"reason", entry.reason}};
    if (!entry.version.empty())
      item["version"] = entry.version;
    index.push_back(std::move(item));
  }
  return index;
}

void install_model_routes(edge_server& server, const route_context& context,
                          const gatekeeper& gate, const std::string& model_path) {
  server.Get(
      model_path,
      guarded(gate, access::predict,
              [&context](const httplib::Request& req, httplib::Response& res) {
                auto version = path_version(req);
                auto status = status_with_version(context, req.matches[1], version);
                auto model = value_or_throw(context.directory->find(status.name));
                write_json(res, 200,
                           oip_model_metadata(model->spec, version.empty()
                                                               ? version_names(status)
                                                               : std::vector{version}));
              }));
  server.Get(model_path + "/ready",
             guarded(gate, access::predict,
                     [&context](const httplib::Request& req, httplib::Response& res) {
                       auto version = path_version(req);
                       auto status =
                           status_with_version(context, req.matches[1], version);
                       if (!is_ready(status, version))
                         throw api_error{ec::model_loading,
                                         "model " + status.name + " is not ready",
                                         {}};
                       write_json(res, 200, {{"name", status.name}, {"ready", true}});
                     }));
  server.Post(
      model_path + "/infer",
      guarded_with_body(
          gate, access::predict, context.max_body,
          [&context](const httplib::Request& req, const std::string& body,
                     httplib::Response& res) { infer(context, req, body, res); }));
}

} // namespace

void install_oip_routes(edge_server& server, const route_context& context) {
  auto gate = context.gate.speaking(write_standard_error_body);
  server.Get("/v2/health/live",
             probe(gate, [](const httplib::Request&, httplib::Response& res) {
               write_json(res, 200, {{"live", true}});
             }));
  server.Get("/v2/health/ready",
             probe(gate, [&context](const httplib::Request&, httplib::Response& res) {
               require_ready(context);
               write_json(res, 200, {{"ready", true}});
             }));
  server.Get(
      "/v2",
      guarded(gate, access::predict, [](const httplib::Request&, httplib::Response& res) {
        write_json(res, 200, oip_server_metadata(ACTORSERVE_VERSION));
      }));
  install_model_routes(server, context, gate, R"(/v2/models/([^/]+))");
  install_model_routes(server, context, gate, R"(/v2/models/([^/]+)/versions/([^/]+))");
  // Repository load and unload (admin): the lifecycle routes of /api/v1.
  auto load_timeout = model_load_timeout(context.options);
  server.Post(R"(/v2/repository/models/([^/]+)/load)",
              guarded_with_body(
                  gate, access::admin, context.max_body,
                  [&context, load_timeout](const httplib::Request& req,
                                           const std::string&, httplib::Response& res) {
                    value_or_throw(ask<model_status>(context.system, context.registry,
                                                     load_timeout, atom::load_v,
                                                     std::string{req.matches[1]}));
                    write_json(res, 200, json::object());
                  }));
  server.Post(R"(/v2/repository/models/([^/]+)/unload)",
              guarded_with_body(gate, access::admin, context.max_body,
                                [&context](const httplib::Request& req,
                                           const std::string&, httplib::Response& res) {
                                  value_or_throw(ask<model_status>(
                                      context.system, context.registry, control_timeout,
                                      atom::unload_v, std::string{req.matches[1]}));
                                  write_json(res, 200, json::object());
                                }));
  server.Post("/v2/repository/index",
              guarded_with_body(gate, access::predict, context.max_body,
                                [&context](const httplib::Request&, const std::string&,
                                           httplib::Response& res) {
                                  write_json(res, 200, repository_index_json(context));
                                }));
}

} // namespace actorserve
