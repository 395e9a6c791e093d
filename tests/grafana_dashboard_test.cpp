// deploy/grafana/actorserve-dashboard.json: every panel's query (and every
// variable's selector) is valid PromQL, checked by promtool on a rule file
// that records each one, and names only metrics the server exports.

#include <gtest/gtest.h>

#include <regex>
#include <set>

#include "telemetry/cache_metrics.hpp"
#include "telemetry/metrics.hpp"
#include "tests/deploy_support.hpp"

namespace actorserve {
namespace {

using nlohmann::json;

json dashboard() {
  return json::parse(
      testing::read_file(testing::deploy_dir() / "grafana/actorserve-dashboard.json"));
}

/// Grafana's variables and macros as Prometheus would see them once expanded.
std::string expanded(std::string query) {
  for (auto [from, to] : {std::pair{"$__rate_interval", "5m"},
                          {"$__interval", "1m"},
                          {"$instance", ".*"},
                          {"$model", ".*"}})
    for (auto at = query.find(from); at != std::string::npos; at = query.find(from))
      query.replace(at, std::string{from}.size(), to);
  return query;
}

/// name -> PromQL: every panel target, and the selector inside every
/// variable's label_values(...).
std::map<std::string, std::string> queries(const json& board) {
  std::map<std::string, std::string> found;
  std::function<void(const json&)> visit = [&](const json& panels) {
    for (const auto& panel : panels) {
      for (const auto& target : panel.value("targets", json::array()))
        found["panel_" + std::to_string(panel["id"].get<int>()) + "_" +
              target["refId"].get<std::string>()] = expanded(target["expr"]);
      visit(panel.value("panels", json::array()));
    }
  };
  visit(board["panels"]);
  std::regex label_values{R"(label_values\((.*),\s*\w+\))"};
  for (const auto& variable : board["templating"]["list"]) {
    if (variable["type"] != "query")
      continue;
    std::smatch match;
    std::string definition = variable["definition"];
    if (std::regex_match(definition, match, label_values))
      found["variable_" + variable["name"].get<std::string>()] = expanded(match[1]);
    else
      ADD_FAILURE() << "variable " << variable["name"] << ": not label_values(...)";
  }
  return found;
}

/// A rule file recording each query, as promtool reads it (JSON is YAML).
std::string rule_file(const std::map<std::string, std::string>& exprs) {
  json rules = json::array();
  for (const auto& [name, expr] : exprs)
    rules.push_back({{"record", "grafana:" + name}, {"expr", expr}});
  return json{{"groups", {{{"name", "grafana_dashboard"}, {"rules", rules}}}}}.dump(2);
}

testing::command_result promtool_check(const std::string& rules) {
  testing::temp_dir dir;
  auto file = dir.path() / "dashboard_rules.yml";
  testing::write_file(file, rules);
  return testing::run_command("promtool check rules " + testing::quote(file.string()));
}

TEST(grafana_dashboard, every_query_passes_promtool) {
  if (testing::find_tool("promtool").empty())
    GTEST_SKIP() << "promtool not found: install the Debian package 'prometheus'";
  auto exprs = queries(dashboard());
  ASSERT_GE(exprs.size(), 15u);
  auto checked = promtool_check(rule_file(exprs));
  EXPECT_EQ(checked.code, 0) << checked.output;
  EXPECT_NE(
      checked.output.find("SUCCESS: " + std::to_string(exprs.size()) + " rules found"),
      std::string::npos)
      << checked.output;

  // The check can fail: a broken query is refused.
  auto broken = promtool_check(rule_file({{"broken", "sum(rate(x[5m])"}}));
  EXPECT_NE(broken.code, 0) << broken.output;
}

TEST(grafana_dashboard, queries_name_only_metrics_the_server_exports) {
  metrics stats; // one series of every family, so that each is rendered
  stats.observe_request("GET", "/health", 200, 0.001);
  stats.observe_model_request("m", 200, 0.001);
  stats.observe_inference("m", "1", 0.001, 1, 0.001);
  stats.set_queue_depth("m", "1", 0);
  stats.count_load("m", "1", true);
  stats.count_load("m", "1", false);
  stats.count_restart("m", "1");
  stats.count_cancelled("m", "client_gone");
  cache_metrics cache{*stats.registry()};
  cache.count("m", cache_result::hit);
  auto exported = stats.render();

  std::regex metric_name{
      R"(\b((?:actorserve_|request_)[a-z_]+?)(?:_bucket|_sum|_count)?\b(?=[{\[ )]))"};
  std::set<std::string> used;
  for (const auto& [name, expr] : queries(dashboard()))
    for (std::sregex_iterator it{expr.begin(), expr.end(), metric_name}, end; it != end;
         ++it)
      used.insert((*it)[1]);
  ASSERT_GE(used.size(), 10u);
  for (const auto& name : used) {
    bool is_exported = exported.find("# TYPE " + name + " ") != std::string::npos;
    EXPECT_TRUE(is_exported) << name << " is not a metric the server exports";
  }
}

TEST(grafana_dashboard,
     panels_have_unique_ids_fit_the_grid_and_use_the_datasource_variable) {
  auto board = dashboard();
  std::set<int> ids;
  for (const auto& panel : board["panels"]) {
    EXPECT_TRUE(ids.insert(panel["id"].get<int>()).second) << panel["id"];
    const auto& grid = panel["gridPos"];
    EXPECT_LE(grid["x"].get<int>() + grid["w"].get<int>(), 24) << panel["title"];
    if (panel["type"] != "row") {
      EXPECT_FALSE(panel["targets"].empty()) << panel["title"];
      EXPECT_EQ(panel["datasource"]["uid"], "${datasource}") << panel["title"];
    }
  }
}

} // namespace
} // namespace actorserve
