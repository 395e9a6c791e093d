// TensorFlow Serving's REST API: ../shared/API.md "TensorFlow Serving REST".
// The codec (protocols/tfserving_codec.hpp) reads and writes the bodies;
// these routes add the gate, the model lookup and the prediction.

#include <chrono>

#include "http/edge_server.hpp"
#include "http/routes.hpp"
#include "protocols/tfserving_codec.hpp"

namespace actorserve {

namespace {

void predict(const route_context& context, const httplib::Request& req,
             const std::string& body, httplib::Response& res) {
  auto deadline = std::chrono::steady_clock::now() +
                  std::chrono::milliseconds{context.limits.default_timeout_ms};
  auto pinned = path_version(req);
  check_pinned_version(pinned);
  auto model = value_or_throw(context.directory->find(req.matches[1]));
  auto request = parse_tfserving_predict(body, model->spec, context.limits);
  auto reply = ask_prediction(
      context.system, *model,
      predict_request{pinned, std::move(request.input), remaining(deadline).count()});
  set_reply_headers(res, reply);
  write_json(res, 200, format_tfserving_predict(reply, request.format));
}

void install_model_routes(edge_server& server, const route_context& context,
                          const gatekeeper& gate, const std::string& model_path) {
  server.Post(
      model_path + ":predict",
      guarded_with_body(
          gate, access::predict, context.max_body,
          [&context](const httplib::Request& req, const std::string& body,
                     httplib::Response& res) { predict(context, req, body, res); }));
  server.Get(model_path,
             guarded(gate, access::predict,
                     [&context](const httplib::Request& req, httplib::Response& res) {
                       auto status = status_of(context, req.matches[1]);
                       write_json(res, 200,
                                  tfserving_model_status(status, path_version(req)));
                     }));
  server.Get(
      model_path + "/metadata",
      guarded(gate, access::predict,
              [&context](const httplib::Request& req, httplib::Response& res) {
                auto version = path_version(req);
                auto status = status_with_version(context, req.matches[1], version);
                auto model = value_or_throw(context.directory->find(status.name));
                write_json(res, 200, tfserving_model_metadata(model->spec, version));
              }));
}

} // namespace

void install_tfserving_routes(edge_server& server, const route_context& context) {
  auto gate = context.gate.speaking(write_standard_error_body);
  // A model name never holds ':', so that "m:predict" is not a model.
  install_model_routes(server, context, gate, R"(/v1/models/([^/:]+))");
  install_model_routes(server, context, gate, R"(/v1/models/([^/:]+)/versions/([^/:]+))");
}

} // namespace actorserve
