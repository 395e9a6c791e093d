// The operator pages end to end: the real binary serves /api/v1/stats,
// /dashboard and /openapi.json while a client thread sends it predictions;
// Debian's chromium (headless, driven by playwright-core under node) loads the
// dashboard, checks its numbers move between refreshes and saves a screenshot
// in the build dir (dashboard.png).

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "http/embedded_files.hpp"
#include "tests/deploy_support.hpp"
#include "tests/served_suite.hpp"

namespace actorserve {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

/// Sends digit predictions until stopped (at most `limit` requests or 120 s),
/// with a pause between requests so the page sees a steady rate.
class prediction_traffic {
public:
  explicit prediction_traffic(const testing::server_process& server, int limit = 20000)
      : thread_{[this, &server, limit] {
          auto client = server.client();
          auto body = testing::first_digit_body();
          auto until = std::chrono::steady_clock::now() + 120s;
          for (int i = 0; i < limit && !stop_ && std::chrono::steady_clock::now() < until;
               ++i) {
            auto answer =
                testing::post_json(client, "/api/v1/models/digits/predict", body);
            if (answer.status == 200)
              ++succeeded_;
            std::this_thread::sleep_for(5ms);
          }
        }} {}
  ~prediction_traffic() {
    stop_ = true;
    thread_.join();
  }
  int succeeded() const { return succeeded_; }

private:
  std::atomic<bool> stop_{false};
  std::atomic<int> succeeded_{0};
  std::thread thread_;
};

class operator_pages : public testing::served_suite<operator_pages> {
public: // read by served_suite
  static std::vector<std::string> digit_versions() { return {}; }
};

const json& model_named(const json& stats, const std::string& name) {
  for (const auto& model : stats["models"])
    if (model["name"] == name)
      return model;
  throw std::runtime_error("no model " + name + " in " + stats.dump());
}

TEST_F(operator_pages, stats_counts_predictions_per_model_between_two_snapshots) {
  auto client = server().client();
  auto before = testing::get_json(client, "/api/v1/stats");
  ASSERT_EQ(before.status, 200);
  for (int i = 0; i < 5; ++i)
    ASSERT_EQ(testing::post_json(client, "/api/v1/models/digits/predict",
                                 testing::first_digit_body())
                  .status,
              200);
  ASSERT_EQ(testing::post_json(client, "/api/v1/models/digits/predict", "{").status, 400);
  auto after = testing::get_json(client, "/api/v1/stats");
  ASSERT_EQ(after.status, 200);

  const auto& digits_before = model_named(before.body, "digits");
  const auto& digits = model_named(after.body, "digits");
  EXPECT_EQ(digits["requests"]["2xx"].get<double>() -
                digits_before["requests"]["2xx"].get<double>(),
            5);
  EXPECT_EQ(digits["requests"]["4xx"].get<double>() -
                digits_before["requests"]["4xx"].get<double>(),
            1);
  EXPECT_EQ(digits["latency_seconds"]["count"].get<int>() -
                digits_before["latency_seconds"]["count"].get<int>(),
            6);
  EXPECT_GE(digits["batches"].get<int>() - digits_before["batches"].get<int>(), 1);
  EXPECT_EQ(digits["versions"].size(), 2u);
  EXPECT_EQ(digits["versions"][0]["state"], "available");
  EXPECT_TRUE(digits["cache"].is_null()); // no response cache yet
  EXPECT_GE(after.body["server"]["timestamp_ms"].get<int64_t>(),
            before.body["server"]["timestamp_ms"].get<int64_t>());
  EXPECT_GT(after.body["server"]["uptime_s"].get<double>(), 0);
  ASSERT_EQ(after.body["nodes"].size(), 1u);
  EXPECT_EQ(after.body["nodes"][0]["models"], json::array({"affine", "digits"}));

  // An unknown model adds no series.
  testing::post_json(client, "/api/v1/models/nosuch/predict",
                     testing::first_digit_body());
  auto later = testing::get_json(client, "/api/v1/stats");
  EXPECT_EQ(later.body["models"].size(), 2u);
  auto metrics = client.Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_EQ(metrics->body.find("model=\"nosuch\""), std::string::npos);
  EXPECT_NE(metrics->body.find(
                "actorserve_model_requests_total{code=\"2xx\",model=\"digits\"}"),
            std::string::npos);
}

TEST_F(operator_pages,
       the_dashboard_and_the_openapi_document_are_served_as_they_were_built) {
  auto client = server().client();
  auto page = client.Get("/dashboard");
  ASSERT_TRUE(page);
  EXPECT_EQ(page->status, 200);
  EXPECT_EQ(page->get_header_value("Content-Type"), "text/html; charset=utf-8");
  EXPECT_EQ(page->body, dashboard_html());
  // Self-contained: nothing is loaded from elsewhere.
  for (auto outside : {"http://", "https://", "src=\"//", "href=\"//"})
    EXPECT_EQ(page->body.find(outside), std::string::npos) << outside;

  auto document = client.Get("/openapi.json");
  ASSERT_TRUE(document);
  EXPECT_EQ(document->status, 200);
  EXPECT_EQ(document->get_header_value("Content-Type"), "application/json");
  EXPECT_EQ(json::parse(document->body), json::parse(openapi_document()));
}

TEST(operator_pages_guard, stats_and_dashboard_need_a_key_where_metrics_does) {
  testing::temp_dir repository;
  testing::copy_model("affine", repository.path());
  testing::server_process server{
      {"--model-repository", repository.path().string(), "--metrics-require-key"},
      {{"ACTORSERVE_API_KEYS", "viewer-key"}}};
  auto client = server.client();
  for (auto path : {"/metrics", "/api/v1/stats", "/dashboard"}) {
    auto anonymous = client.Get(path);
    ASSERT_TRUE(anonymous);
    EXPECT_EQ(anonymous->status, 401) << path;
    auto keyed = client.Get(path, {{"X-API-Key", "viewer-key"}});
    ASSERT_TRUE(keyed);
    EXPECT_EQ(keyed->status, 200) << path;
  }
  auto document = client.Get("/openapi.json");
  ASSERT_TRUE(document);
  EXPECT_EQ(document->status, 200); // anyone
}

TEST_F(operator_pages, the_dashboard_in_a_real_browser_shows_numbers_that_move) {
  auto node = testing::find_tool("node");
  ASSERT_FALSE(node.empty()) << "node not found: deploy/install-deps.sh installs nodejs";
  ASSERT_TRUE(std::filesystem::exists("/usr/bin/chromium"))
      << "chromium not found: deploy/install-deps.sh installs it";
  prediction_traffic traffic{server()};
  auto screenshot = std::filesystem::path{ACTORSERVE_BUILD_DIR} / "dashboard.png";
  std::filesystem::remove(screenshot);
  auto script =
      std::filesystem::path{ACTORSERVE_SOURCE_DIR} / "tests/browser/dashboard_test.mjs";
  auto modules = std::filesystem::path{ACTORSERVE_BUILD_DIR} / "browser/node_modules";
  auto result = testing::run_command(
      "ACTORSERVE_NODE_MODULES=" + testing::quote(modules.string()) + " " + node + " " +
      testing::quote(script.string()) + " " +
      testing::quote("http://127.0.0.1:" + std::to_string(server().port())) + " " +
      testing::quote(screenshot.string()));
  EXPECT_EQ(result.code, 0) << result.output;
  EXPECT_NE(result.output.find("every check passed"), std::string::npos) << result.output;
  EXPECT_TRUE(std::filesystem::exists(screenshot));
  EXPECT_GT(traffic.succeeded(), 0);
  std::printf("%s\nscreenshot: %s\n", result.output.c_str(), screenshot.c_str());
}

} // namespace
} // namespace actorserve
