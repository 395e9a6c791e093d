#include "http/server.hpp"

#include <chrono>
#include <string_view>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "http/auth.hpp"
#include "http/bridge.hpp"
#include "http/client_address.hpp"
#include "http/edge_server.hpp"
#include "http/model_health.hpp"
#include "http/rate_limiter.hpp"
#include "http/routes.hpp"
#include "telemetry/logging.hpp"
#include "telemetry/metrics.hpp"

namespace actorserve {

namespace {

using json = nlohmann::json;
using clock = std::chrono::steady_clock;

/// How old /health's view of the models may be.
constexpr std::chrono::milliseconds health_refresh{250};

/// How errors are written for a request to `path`: the standard protocols'
/// {"error": "message"} under /v2 and /v1/, our API's body elsewhere.
error_body_writer error_body_for_path(std::string_view path) {
  bool standard =
      path == "/v2" || path.rfind("/v2/", 0) == 0 || path.rfind("/v1/", 0) == 0;
  return standard ? write_standard_error_body : write_v1_error_body;
}

rate_limiter_options rate_limits_of(const server_options& options) {
  rate_limiter_options limits;
  limits.predict = {double(options.predict_rate_per_s), double(options.predict_burst)};
  limits.admin = {double(options.admin_rate_per_s), double(options.admin_burst)};
  limits.anonymous = {double(options.anonymous_rate_per_s),
                      double(options.anonymous_burst)};
  limits.max_clients = static_cast<size_t>(options.rate_limit_max_clients);
  return limits;
}

edge_limits edge_limits_of(const server_options& options) {
  edge_limits limits;
  limits.worker_threads = static_cast<size_t>(options.http_threads);
  limits.max_pending_requests = static_cast<size_t>(options.max_pending_connections);
  limits.max_connections = static_cast<size_t>(options.max_connections);
  limits.max_header_bytes = static_cast<size_t>(options.max_header_bytes);
  limits.header_timeout = std::chrono::seconds{options.read_timeout_s};
  limits.request_timeout = std::chrono::seconds{options.request_timeout_s};
  limits.read_timeout = std::chrono::seconds{options.read_timeout_s};
  limits.write_timeout = std::chrono::seconds{options.write_timeout_s};
  limits.idle_timeout = std::chrono::seconds{options.keep_alive_timeout_s};
  limits.max_requests_per_connection = static_cast<size_t>(options.keep_alive_max_count);
  return limits;
}

/// The protocol of a route template, for the access log: "v1" (our API),
/// "oip" (Open Inference Protocol), "tfserving", or "server" (probes,
/// metrics and everything else).
std::string_view protocol_of(std::string_view route) {
  auto starts = [&](std::string_view prefix) {
    return route.substr(0, prefix.size()) == prefix;
  };
  if (starts("/api/v1/"))
    return "v1";
  if (starts("/v2"))
    return "oip";
  if (starts("/v1/models/"))
    return "tfserving";
  return "server";
}

/// The access log line and metrics of a request.
void record_access(metrics& stats, const std::string& request_id,
                   const std::string& client_ip, const std::string& method,
                   const std::string& route, const std::string& model,
                   const std::string& version, int status, double seconds,
                   size_t input_bytes) {
  stats.observe_request(method, route, status, seconds);
  if (!spdlog::should_log(spdlog::level::info))
    return; // building the fields costs a dozen allocations, logged or not
  log_event(spdlog::level::info, "access",
            {{"request_id", request_id},
             {"protocol", protocol_of(route)},
             {"client_ip", client_ip},
             {"method", route == "unmatched" ? "-" : method},
             {"route", route},
             {"model", model},
             {"version", version},
             {"status", status},
             {"latency_ms", seconds * 1000.0},
             {"input_bytes", input_bytes}});
}

} // namespace

http_server::http_server(caf::actor_system& system, registry_actor registry,
                         std::shared_ptr<const predictor_directory> directory,
                         job_store_actor jobs, std::shared_ptr<const key_store> keys,
                         std::shared_ptr<metrics> stats, server_options options)
    : system_(system), registry_(std::move(registry)), directory_(std::move(directory)),
      jobs_(std::move(jobs)), keys_(std::move(keys)), stats_(std::move(stats)),
      options_(std::move(options)),
      server_(std::make_unique<edge_server>(
          edge_limits_of(options_),
          [stats = stats_](int status, const std::string& client) {
            record_access(*stats, "", client, "-", "unmatched", "", "", status, 0.0, 0);
          })),
      limiter_(std::make_unique<rate_limiter>(rate_limits_of(options_))),
      clients_(std::make_unique<client_address_resolver>(options_.trusted_proxies)),
      health_(std::make_unique<model_health_view>(system_, registry_, health_refresh)) {
  server_->set_payload_max_length(static_cast<size_t>(options_.max_body_bytes));
  install_routes();
}

http_server::~http_server() = default;

int http_server::bind() {
  auto port = options_.port == 0 ? server_->bind_to_any_port(options_.host)
              : server_->bind_to_port(options_.host, options_.port) ? options_.port
                                                                    : -1;
  if (port > 0 && !server_->set_backlog(options_.listen_backlog))
    return -1;
  return port;
}

bool http_server::serve() {
  return server_->listen_after_bind();
}

void http_server::stop() {
  server_->stop();
}

void http_server::install_routes() {
  auto& server = *server_;
  context_ = std::make_unique<route_context>(route_context{
      system_, registry_, directory_, options_, draining_,
      request_limits{options_.max_instances_per_request, options_.max_image_pixels,
                     options_.default_timeout_ms, options_.max_timeout_ms},
      gatekeeper{*keys_, *limiter_, *clients_, *stats_},
      static_cast<size_t>(options_.max_body_bytes)});
  const auto& gate = context_->gate;
  server.set_pre_routing_handler([this](const httplib::Request& req,
                                        httplib::Response& res) {
    res.set_header(request_id_header, request_id_for(req));
    if (auto refused = framing_error(req, options_.max_header_count,
                                     static_cast<uint64_t>(options_.max_body_bytes))) {
      write_error(res, *refused, error_body_for_path(req.path));
      close_after_response(res);
      return httplib::Server::HandlerResponse::Handled;
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });
  server.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
    if (res.body.empty())
      write_error(res, error_for_status(res.status), error_body_for_path(req.path));
  });
  server.set_logger([this, gate](const httplib::Request& req,
                                 const httplib::Response& res) {
    auto body_bytes = take_request_body_bytes();
    if (edge_server::refusal_status() != 0)
      return; // the edge answered and recorded it
    auto seconds =
        std::chrono::duration<double>(clock::now() - edge_server::request_started())
            .count();
    // The route template, not the raw path: no ids or junk in the logs.
    auto route = route_template(req.method, req.path);
    auto model = route.find("{model}") != std::string::npos && req.matches.size() > 1
                     ? std::string{req.matches[1]}.substr(0, 128)
                     : std::string{};
    record_access(*stats_, res.get_header_value(request_id_header), gate.client_ip(req),
                  req.method, route, model, res.get_header_value("X-Model-Version"),
                  res.status, seconds, body_bytes);
  });

  install_v1_routes(server, *context_, jobs_);
  install_oip_routes(server, *context_);
  install_tfserving_routes(server, *context_);

  server.Get("/metrics",
             guarded(gate, options_.metrics_require_key ? access::predict : access::open,
                     [this](const httplib::Request&, httplib::Response& res) {
                       if (auto jobs = ask<int64_t>(system_, jobs_, control_timeout,
                                                    atom::stats_v))
                         stats_->set_job_store_size(std::get<0>(*jobs));
                       stats_->set_open_connections(
                           static_cast<int64_t>(server_->open_connections()));
                       res.set_content(stats_->render(), "text/plain; version=0.0.4");
                     }));

  server.Get("/health",
             probe(gate, [this](const httplib::Request&, httplib::Response& res) {
               // Liveness: answers 200 whenever the process serves
               // HTTP.
               auto models = health_->current();
               write_json(res, 200,
                          {{"status", "healthy"},
                           {"model_loaded", models.model_loaded},
                           {"models", models.models},
                           {"draining", draining_.load()},
                           {"version", ACTORSERVE_VERSION}});
             }));

  server.Get("/ready",
             probe(gate, [this](const httplib::Request&, httplib::Response& res) {
               auto statuses = require_ready(*context_);
               write_json(res, 200, {{"status", "ready"}, {"models", statuses.size()}});
             }));
}

} // namespace actorserve
