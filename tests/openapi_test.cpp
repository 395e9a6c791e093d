// The OpenAPI document (http/openapi.json, served at GET /openapi.json) against
// the server's real routes, both ways: every route the server installs is a
// path and method of the document, and every operation of the document is a
// route of the server. The routes come from a real http_server built in
// process (edge_server records each route it installs). The document is then
// validated by a real validator (@apidevtools/swagger-parser, under node).

#include <gtest/gtest.h>

#include <set>
#include <utility>

#include <caf/actor_system.hpp>

#include "actors/predictor_directory.hpp"
#include "http/auth.hpp"
#include "http/edge_server.hpp"
#include "http/embedded_files.hpp"
#include "http/server.hpp"
#include "telemetry/metrics.hpp"
#include "tests/deploy_support.hpp"

namespace actorserve {
namespace {

using nlohmann::json;
using route_set = std::set<std::pair<std::string, std::string>>; // method, template

/// cpp-httplib's pattern as an OpenAPI path: each group "([^/]+)" becomes a
/// parameter named after the segment before it (models/ -> {model},
/// versions/ -> {version}, jobs/ -> {job_id}).
std::string openapi_path(const std::string& pattern) {
  static const std::map<std::string, std::string> names{
      {"models", "{model}"}, {"versions", "{version}"}, {"jobs", "{job_id}"}};
  std::string path;
  for (size_t i = 0; i < pattern.size(); ++i) {
    if (pattern[i] != '(') {
      path += pattern[i];
      continue;
    }
    auto end = pattern.find(')', i);
    auto segment_start = path.rfind('/', path.size() - 2) + 1;
    auto segment = path.substr(segment_start, path.size() - segment_start - 1);
    auto name = names.find(segment);
    path += name == names.end() ? "{unnamed after " + segment + "}" : name->second;
    i = end;
  }
  return path;
}

/// A concrete path of a template, for the metrics' route_template().
std::string example_path(std::string path) {
  for (auto [param, value] :
       {std::pair{"{model}", "m"}, {"{version}", "1"}, {"{job_id}", "j"}})
    for (auto at = path.find(param); at != std::string::npos; at = path.find(param))
      path.replace(at, std::string{param}.size(), value);
  return path;
}

route_set server_routes() {
  caf::actor_system system{testing::registered_actor_config()};
  http_server server{
      system,
      registry_actor{},
      std::make_shared<predictor_directory>(),
      job_store_actor{},
      std::make_shared<key_store>(std::vector<std::string>{}, std::vector<std::string>{}),
      std::make_shared<metrics>(),
      server_options{}};
  route_set routes;
  for (const auto& route : server.routes())
    routes.insert({route.method, openapi_path(route.pattern)});
  return routes;
}

route_set document_routes() {
  auto document = json::parse(openapi_document());
  route_set routes;
  for (const auto& [path, item] : document["paths"].items())
    for (const auto& [method, operation] : item.items())
      if (method != "parameters" && method != "summary" && method != "description") {
        std::string upper;
        for (char c : method)
          upper += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
        routes.insert({upper, path});
      }
  return routes;
}

TEST(openapi, the_pattern_to_path_mapping_names_each_parameter) {
  EXPECT_EQ(openapi_path(R"(/api/v1/models/([^/]+)/versions/([^/]+)/predict)"),
            "/api/v1/models/{model}/versions/{version}/predict");
  EXPECT_EQ(openapi_path(R"(/v1/models/([^/:]+):predict)"), "/v1/models/{model}:predict");
  EXPECT_EQ(openapi_path(R"(/api/v1/jobs/([^/]+))"), "/api/v1/jobs/{job_id}");
  EXPECT_EQ(openapi_path("/health"), "/health");
}

TEST(openapi, every_server_route_is_documented) {
  auto documented = document_routes();
  auto served = server_routes();
  ASSERT_GT(served.size(), 30u);
  for (const auto& [method, path] : served)
    EXPECT_TRUE(documented.count({method, path}))
        << method << " " << path << " is served but not in http/openapi.json";
}

TEST(openapi, every_documented_operation_is_served) {
  auto served = server_routes();
  for (const auto& route : document_routes())
    EXPECT_TRUE(served.count(route)) << route.first << " " << route.second
                                     << " is in http/openapi.json but not served";
}

TEST(openapi, every_server_route_has_its_own_metrics_route_template) {
  for (const auto& [method, path] : server_routes())
    EXPECT_EQ(route_template(method, example_path(path)), path)
        << method << " " << path << ": add it to telemetry/metrics' route_templates";
}

TEST(openapi, the_document_passes_a_real_openapi_3_1_validator) {
  auto node = testing::find_tool("node");
  ASSERT_FALSE(node.empty()) << "node not found: deploy/install-deps.sh installs nodejs";
  testing::temp_dir dir;
  auto file = dir.path() / "openapi.json";
  testing::write_file(file, std::string{openapi_document()});
  auto script =
      std::filesystem::path{ACTORSERVE_SOURCE_DIR} / "tests/browser/validate_openapi.mjs";
  auto modules = std::filesystem::path{ACTORSERVE_BUILD_DIR} / "browser/node_modules";
  auto result = testing::run_command(
      "ACTORSERVE_NODE_MODULES=" + testing::quote(modules.string()) + " " + node + " " +
      testing::quote(script.string()) + " " + testing::quote(file.string()));
  EXPECT_EQ(result.code, 0) << result.output;
  EXPECT_NE(result.output.find("valid: OpenAPI 3.1"), std::string::npos) << result.output;
  std::printf("%s", result.output.c_str());
}

TEST(openapi, the_document_is_openapi_3_1_with_the_contract_s_security) {
  auto document = json::parse(openapi_document());
  EXPECT_EQ(document["openapi"], "3.1.0");
  EXPECT_EQ(document["components"]["securitySchemes"]["ApiKey"]["name"], "X-API-Key");
  // Anyone may read the document and the probes.
  for (auto path : {"/openapi.json", "/health", "/ready", "/v2/health/live"})
    EXPECT_EQ(document["paths"][path]["get"]["security"], json::array({json::object()}))
        << path;
}

} // namespace
} // namespace actorserve
