#include <chrono>

#include "http/edge_server.hpp"
#include "http/embedded_files.hpp"
#include "http/routes.hpp"
#include "http/stats_json.hpp"
#include "telemetry/metrics.hpp"

namespace actorserve {

namespace {

using clock = std::chrono::steady_clock;

/// This node's name in a cluster (as actors/cluster.cpp names it), "" alone.
std::string cluster_node_name(const server_options& options) {
  if (options.cluster_port == 0)
    return "";
  if (!options.node_name.empty())
    return options.node_name;
  return options.cluster_host + ":" + std::to_string(options.cluster_port);
}

int64_t unix_time_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

} // namespace

void install_operator_routes(edge_server& server, const route_context& context,
                             const metrics& stats, access viewer) {
  const auto& gate = context.gate;
  auto started = clock::now();
  server.Get("/api/v1/stats",
             guarded(gate, viewer,
                     [&context, &stats, &server, started](const httplib::Request&,
                                                          httplib::Response& res) {
                       server_facts facts{
                           ACTORSERVE_VERSION,
                           cluster_node_name(context.options),
                           std::chrono::duration<double>(clock::now() - started).count(),
                           unix_time_ms(),
                           context.draining.load(),
                           static_cast<int64_t>(server.open_connections())};
                       auto models = list_models(context);
                       write_json(res, 200, stats_json(facts, models, stats.snapshot()));
                     }));
  server.Get("/dashboard",
             guarded(gate, viewer, [](const httplib::Request&, httplib::Response& res) {
               res.set_header("Cache-Control", "no-cache");
               res.set_content(std::string{dashboard_html()}, "text/html; charset=utf-8");
             }));
  server.Get("/openapi.json",
             probe(gate, [](const httplib::Request&, httplib::Response& res) {
               res.set_content(std::string{openapi_document()}, "application/json");
             }));
}

} // namespace actorserve
