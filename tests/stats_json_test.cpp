// GET /api/v1/stats's body (http/stats_json): model statuses joined with a real
// metrics registry's snapshot, without sockets or actors.

#include <gtest/gtest.h>

#include "http/stats_json.hpp"
#include "telemetry/metrics.hpp"

namespace actorserve {
namespace {

using nlohmann::json;

model_status digits_status(const std::string& node = "") {
  model_status status;
  status.name = "digits";
  status.default_version = "2";
  status.versions = {{"1", version_state::available, "", 10, node},
                     {"2", version_state::available, "", 12, node}};
  return status;
}

const json& model_named(const json& stats, const std::string& name) {
  for (const auto& model : stats["models"])
    if (model["name"] == name)
      return model;
  throw std::runtime_error("no model " + name + " in " + stats.dump());
}

TEST(stats_json, a_model_joins_its_versions_states_and_cumulative_counters) {
  metrics stats;
  stats.observe_model_request("digits", 200, 0.002);
  stats.observe_model_request("digits", 200, 0.004);
  stats.observe_model_request("digits", 503, 0.0001);
  stats.observe_model_request("digits", 400, 0.0001);
  stats.observe_inference("digits", "1", 0.001, 3, 0.0005);
  stats.observe_inference("digits", "2", 0.001, 5, 0.0005);
  stats.set_queue_depth("digits", "1", 4);
  stats.set_queue_depth("digits", "2", 1);
  stats.count_cancelled("digits", "client_gone");

  auto body = stats_json({"1.2.3", "", 12.5, 1700000000000, false, 3}, {digits_status()},
                         stats.snapshot());

  EXPECT_EQ(body["server"]["version"], "1.2.3");
  EXPECT_EQ(body["server"]["timestamp_ms"], 1700000000000);
  EXPECT_EQ(body["server"]["open_connections"], 3);
  const auto& digits = model_named(body, "digits");
  EXPECT_EQ(digits["ready"], true);
  EXPECT_EQ(digits["default_version"], "2");
  ASSERT_EQ(digits["versions"].size(), 2u);
  EXPECT_EQ(digits["versions"][0]["state"], "available");
  EXPECT_EQ(digits["versions"][0]["queue_depth"], 4);
  EXPECT_EQ(digits["queue_depth"], 5);
  EXPECT_EQ(digits["requests"]["2xx"], 2);
  EXPECT_EQ(digits["requests"]["4xx"], 1);
  EXPECT_EQ(digits["requests"]["5xx"], 1);
  EXPECT_EQ(digits["requests"]["total"], 4);
  EXPECT_EQ(digits["batches"], 2);
  EXPECT_EQ(digits["batched_rows"], 8);
  EXPECT_EQ(digits["cancelled"], 1);

  // Buckets are cumulative and end below +Inf; count holds everything.
  const auto& latency = digits["latency_seconds"];
  ASSERT_EQ(latency["le"].size(), latency["cumulative"].size());
  ASSERT_FALSE(latency["le"].empty());
  EXPECT_EQ(latency["count"], 4);
  EXPECT_NEAR(latency["sum"].get<double>(), 0.0062, 1e-9);
  uint64_t previous = 0;
  for (size_t i = 0; i < latency["le"].size(); ++i) {
    EXPECT_GE(latency["cumulative"][i].get<uint64_t>(), previous);
    previous = latency["cumulative"][i];
    auto bound = latency["le"][i].get<double>();
    if (bound >= 0.0001 && bound < 0.002) {
      EXPECT_EQ(previous, 2u) << bound;
    }
    if (bound >= 0.005) {
      EXPECT_EQ(previous, 4u) << bound;
    }
  }
  // Inference adds the versions up.
  EXPECT_EQ(digits["inference_seconds"]["count"], 2);
}

TEST(stats_json, a_model_without_traffic_or_cache_reports_zeros_and_a_null_cache) {
  metrics stats;
  auto body = stats_json({}, {digits_status()}, stats.snapshot());
  const auto& digits = model_named(body, "digits");
  EXPECT_EQ(digits["requests"]["total"], 0);
  EXPECT_EQ(digits["latency_seconds"]["count"], 0);
  EXPECT_EQ(digits["queue_depth"], 0);
  EXPECT_TRUE(digits["cache"].is_null());
}

TEST(stats_json, cache_lookups_are_reported_per_model_when_the_series_exist) {
  metrics_snapshot snapshot;
  metric_sample hit, miss, other;
  hit.labels = {{"model", "digits"}, {"result", "hit"}};
  hit.value = 30;
  miss.labels = {{"model", "digits"}, {"result", "miss"}};
  miss.value = 10;
  other.labels = {{"model", "affine"}, {"result", "hit"}};
  other.value = 99;
  snapshot["actorserve_cache_requests_total"] = {hit, miss, other};
  auto body = stats_json({}, {digits_status()}, snapshot);
  const auto& cache = model_named(body, "digits")["cache"];
  EXPECT_EQ(cache["hit"], 30);
  EXPECT_EQ(cache["miss"], 10);
}

TEST(stats_json, nodes_are_this_node_first_then_every_peer_named_by_a_version) {
  auto local = digits_status("a:1");
  model_status remote;
  remote.name = "affine";
  remote.versions = {{"1", version_state::available, "", 5, "b:2"}};
  auto both = digits_status("a:1");
  both.versions.push_back({"1", version_state::available, "", 5, "b:2"});
  metrics stats;

  auto body = stats_json({"", "a:1"}, {both, remote}, stats.snapshot());
  ASSERT_EQ(body["nodes"].size(), 2u) << body["nodes"];
  EXPECT_EQ(body["nodes"][0]["name"], "a:1");
  EXPECT_EQ(body["nodes"][0]["local"], true);
  EXPECT_EQ(body["nodes"][0]["models"], json::array({"digits"}));
  EXPECT_EQ(body["nodes"][1]["name"], "b:2");
  EXPECT_EQ(body["nodes"][1]["local"], false);
  EXPECT_EQ(body["nodes"][1]["models"], json::array({"affine", "digits"}));

  // Alone: one node, "local", hosting every model.
  auto alone = stats_json({}, {digits_status()}, stats.snapshot());
  ASSERT_EQ(alone["nodes"].size(), 1u);
  EXPECT_EQ(alone["nodes"][0]["name"], "local");
  EXPECT_EQ(alone["nodes"][0]["local"], true);
  EXPECT_EQ(alone["nodes"][0]["models"], json::array({"digits"}));
}

TEST(stats_json, totals_count_every_http_request_by_status_class_and_rejections) {
  metrics stats;
  stats.observe_request("GET", "/health", 200, 0.001);
  stats.observe_request("POST", "/api/v1/models/{model}/predict", 404, 0.001);
  stats.observe_request("POST", "/api/v1/models/{model}/predict", 429, 0.001);
  stats.count_rejection("rate_limited");
  auto body = stats_json({}, {}, stats.snapshot());
  EXPECT_EQ(body["totals"]["http_requests"]["2xx"], 1);
  EXPECT_EQ(body["totals"]["http_requests"]["4xx"], 2);
  EXPECT_EQ(body["totals"]["rejected"]["rate_limited"], 1);
  EXPECT_EQ(body["totals"]["rejected"]["overloaded"], 0);
  EXPECT_TRUE(body["models"].empty());
}

} // namespace
} // namespace actorserve
