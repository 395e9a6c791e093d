#include <chrono>

#include <nlohmann/json.hpp>

#include "config/model_repository.hpp" // is_version_name
#include "http/bridge.hpp"
#include "http/edge_server.hpp"
#include "http/routes.hpp"
#include "protocols/status_json.hpp"
#include "protocols/v1_codec.hpp"

namespace actorserve {

namespace {

using json = nlohmann::json;
using clock = std::chrono::steady_clock;

/// Bodies must be JSON: a declared non-JSON content type is refused.
void require_json_body(const httplib::Request& req) {
  auto type = req.get_header_value("Content-Type");
  if (type.empty())
    return;
  auto media = type.substr(0, type.find(';'));
  media.erase(media.find_last_not_of(" \t") + 1);
  std::transform(media.begin(), media.end(), media.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  if (media != "application/json")
    throw api_error{ec::unsupported_media_type,
                    "the body must be application/json, not " + media, "Content-Type"};
}

/// An admin body: a JSON object with only `allowed` keys ("" = `{}`).
json parse_admin_body(const httplib::Request& req, const std::string& text,
                      std::initializer_list<std::string_view> allowed) {
  require_json_body(req);
  if (text.find_first_not_of(" \t\r\n") == std::string::npos)
    return json::object();
  auto body = json::parse(text, nullptr, false);
  if (body.is_discarded())
    throw api_error{ec::invalid_json, "the body is not valid JSON", {}};
  if (!body.is_object())
    throw api_error{ec::invalid_request, "the body must be a JSON object", {}};
  for (const auto& [key, value] : body.items())
    if (std::find(allowed.begin(), allowed.end(), key) == allowed.end())
      throw api_error{ec::invalid_request, "unknown key", key.substr(0, 100)};
  return body;
}

/// A version named by an admin: a positive integer, as string or number.
std::string version_field(const json& value, const std::string& field) {
  std::string text;
  if (value.is_string())
    text = value.get<std::string>();
  else if (value.is_number_unsigned())
    text = std::to_string(value.get<uint64_t>());
  if (!is_version_name(text))
    throw api_error{ec::version_not_found,
                    "a version is a positive integer naming a folder of the model",
                    field};
  return text;
}

traffic_split parse_traffic(const json& body) {
  traffic_split split;
  if (body.contains("default"))
    split.default_version = version_field(body["default"], "default");
  if (body.contains("weights")) {
    const auto& weights = body["weights"];
    if (!weights.is_object())
      throw api_error{ec::invalid_request, "weights must be an object", "weights"};
    for (const auto& [version, weight] : weights.items()) {
      auto field = "weights." + version.substr(0, 20);
      if (!weight.is_number_integer() || weight.get<int64_t>() < 0 ||
          weight.get<int64_t>() > 1'000'000)
        throw api_error{ec::invalid_request, "a weight is an integer from 0 to 1000000",
                        field};
      split.weights[version_field(version, field)] = weight.get<int32_t>();
    }
  }
  return split;
}

/// A validated prediction, ready to send: its model's directory entry, the
/// request, and how to format the answer.
struct prepared_call {
  std::shared_ptr<const directory_entry> model;
  predict_request request;
  output_options output;
};

} // namespace

void install_v1_routes(edge_server& server, const route_context& context,
                       const job_store_actor& jobs) {
  auto& gate = context.gate;
  auto max_body = context.max_body;
  // Everything a predict call and a job submission share: validation, the
  // model's predictor (router or replica set) and spec from the directory,
  // and the preprocessed input batch.
  auto prepare = [&context](const httplib::Request& req, const std::string& text,
                            const std::string& model, const std::string& pinned) {
    require_json_body(req);
    check_pinned_version(pinned);
    auto body = parse_predict_body(text, context.limits);
    auto deadline = clock::now() + std::chrono::milliseconds{body.parameters.timeout_ms};
    auto model_entry = value_or_throw(context.directory->find(model));
    auto input = build_input_batch(body, model_entry->spec.input, context.limits);
    predict_request request{pinned, std::move(input), remaining(deadline).count()};
    request.priority = body.parameters.priority;
    return prepared_call{std::move(model_entry), std::move(request),
                         body.parameters.output};
  };

  auto predict = [&context, prepare](const httplib::Request& req, const std::string& body,
                                     httplib::Response& res, const std::string& model,
                                     const std::string& pinned) {
    auto call = prepare(req, body, model, pinned);
    auto reply = ask_prediction(context.system, *call.model, std::move(call.request));
    set_reply_headers(res, reply);
    write_json(res, 200, format_answer(reply, call.model->spec, call.output));
  };

  auto submit_job = [&context, &jobs,
                     prepare](const httplib::Request& req, const std::string& body,
                              httplib::Response& res, const std::string& model,
                              const std::string& pinned) {
    auto call = prepare(req, body, model, pinned);
    job_submission job{call.model->predictor, call.model->spec, std::move(call.request),
                       call.output};
    auto [id] = value_or_throw(ask<std::string>(context.system, jobs, control_timeout,
                                                atom::submit_v, std::move(job)));
    auto location = "/api/v1/jobs/" + id;
    res.set_header("Location", location);
    write_json(res, 202, {{"job_id", id}, {"status", "queued"}, {"location", location}});
  };

  server.Post(
      R"(/api/v1/models/([^/]+)/predict)",
      guarded_with_body(gate, access::predict, max_body,
                        [predict](const httplib::Request& req, const std::string& body,
                                  httplib::Response& res) {
                          predict(req, body, res, req.matches[1],
                                  req.get_header_value("X-Model-Version"));
                        }));
  server.Post(
      R"(/api/v1/models/([^/]+)/versions/([^/]+)/predict)",
      guarded_with_body(gate, access::predict, max_body,
                        [predict](const httplib::Request& req, const std::string& body,
                                  httplib::Response& res) {
                          predict(req, body, res, req.matches[1], req.matches[2]);
                        }));
  server.Post(
      R"(/api/v1/models/([^/]+)/jobs)",
      guarded_with_body(gate, access::predict, max_body,
                        [submit_job](const httplib::Request& req, const std::string& body,
                                     httplib::Response& res) {
                          submit_job(req, body, res, req.matches[1],
                                     req.get_header_value("X-Model-Version"));
                        }));
  server.Get(
      R"(/api/v1/jobs/([^/]+))",
      guarded(gate, access::predict,
              [&context, &jobs](const httplib::Request& req, httplib::Response& res) {
                auto [job] = value_or_throw(ask<job_view>(context.system, jobs,
                                                          control_timeout, atom::get_v,
                                                          std::string{req.matches[1]}));
                json body{{"job_id", job.id}, {"status", to_string(job.state)}};
                switch (job.state) {
                  case job_state::queued:
                  case job_state::running:
                    write_json(res, 202, body);
                    return;
                  case job_state::succeeded:
                    body["result"] = format_answer(job.reply, job.spec, job.output);
                    break;
                  case job_state::failed: {
                    auto error = to_api_error(job.error);
                    body["error"] = {{"code", code_name(error.code)},
                                     {"message", error.message}};
                    break;
                  }
                }
                write_json(res, 200, body);
              }));
  server.Delete(
      R"(/api/v1/jobs/([^/]+))",
      guarded(gate, access::predict,
              [&context, &jobs](const httplib::Request& req, httplib::Response& res) {
                value_or_throw(ask<bool>(context.system, jobs, control_timeout,
                                         atom::cancel_v, std::string{req.matches[1]}));
                res.status = 204;
              }));

  // Admin routes. A reload answers once the new versions serve (or failed).
  auto admin_timeout = model_load_timeout(context.options);
  server.Post(
      R"(/api/v1/models/([^/]+)/reload)",
      guarded_with_body(
          gate, access::admin, max_body,
          [&context, admin_timeout](const httplib::Request& req, const std::string& text,
                                    httplib::Response& res) {
            auto body = parse_admin_body(req, text, {"version"});
            auto version = body.contains("version")
                               ? version_field(body["version"], "version")
                               : std::string{};
            auto [status] = value_or_throw(
                ask<model_status>(context.system, context.registry, admin_timeout,
                                  atom::reload_v, std::string{req.matches[1]}, version));
            write_json(res, 200, to_json(status));
          }));
  server.Post(R"(/api/v1/models/([^/]+)/versions/([^/]+)/unload)",
              guarded_with_body(
                  gate, access::admin, max_body,
                  [&context](const httplib::Request& req, const std::string& text,
                             httplib::Response& res) {
                    parse_admin_body(req, text, {});
                    auto version = version_field(std::string{req.matches[2]}, "version");
                    auto [status] = value_or_throw(ask<model_status>(
                        context.system, context.registry, control_timeout, atom::unload_v,
                        std::string{req.matches[1]}, version));
                    write_json(res, 200, to_json(status));
                  }));
  // Whole models: load answers once the model serves (or failed), unload at
  // once (the model drains in the background).
  server.Post(R"(/api/v1/models/([^/]+)/load)",
              guarded_with_body(gate, access::admin, max_body,
                                [&context, admin_timeout](const httplib::Request& req,
                                                          const std::string& text,
                                                          httplib::Response& res) {
                                  parse_admin_body(req, text, {});
                                  auto [status] = value_or_throw(ask<model_status>(
                                      context.system, context.registry, admin_timeout,
                                      atom::load_v, std::string{req.matches[1]}));
                                  write_json(res, 200, to_json(status));
                                }));
  server.Post(
      R"(/api/v1/models/([^/]+)/unload)",
      guarded_with_body(gate, access::admin, max_body,
                        [&context](const httplib::Request& req, const std::string& text,
                                   httplib::Response& res) {
                          parse_admin_body(req, text, {});
                          auto [status] = value_or_throw(ask<model_status>(
                              context.system, context.registry, control_timeout,
                              atom::unload_v, std::string{req.matches[1]}));
                          write_json(res, 200, to_json(status));
                        }));
  server.Put(R"(/api/v1/models/([^/]+)/traffic)",
             guarded_with_body(
                 gate, access::admin, max_body,
                 [&context](const httplib::Request& req, const std::string& text,
                            httplib::Response& res) {
                   auto split =
                       parse_traffic(parse_admin_body(req, text, {"default", "weights"}));
                   auto [status] = value_or_throw(ask<model_status>(
                       context.system, context.registry, control_timeout, atom::traffic_v,
                       std::string{req.matches[1]}, std::move(split)));
                   write_json(res, 200, to_json(status));
                 }));

  server.Get("/api/v1/models",
             guarded(gate, access::predict,
                     [&context](const httplib::Request&, httplib::Response& res) {
                       json models = json::array();
                       for (const auto& status : list_models(context))
                         models.push_back(to_json(status));
                       write_json(res, 200, {{"models", models}});
                     }));
  server.Get(R"(/api/v1/models/([^/]+))",
             guarded(gate, access::predict,
                     [&context](const httplib::Request& req, httplib::Response& res) {
                       write_json(res, 200, to_json(status_of(context, req.matches[1])));
                     }));
}

} // namespace actorserve
