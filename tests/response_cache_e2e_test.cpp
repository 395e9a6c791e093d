// End-to-end: the response cache through the real binary. Memory store: a
// repeat is a hit with an equal body, the HTTP doors share one entry per
// input, a model without the flag has no X-Cache, the metrics and the stats
// count it, a reload of a changed model.pt or a new version misses first.
// Redis store (a real redis-server): two processes share entries; Redis
// stopped mid-run leaves predictions succeeding (bypassed, counted as
// errors) and the cache comes back with Redis.

#include <gtest/gtest.h>

#include <fstream>
#include <thread>

#include "tests/redis_server.hpp"
#include "tests/test_support.hpp"

namespace actorserve {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

std::string v1_body(const std::string& png, json parameters = json::object()) {
  return json{{"instances", {{{"image", png}}}}, {"parameters", parameters}}.dump();
}

std::string oip_body(const std::string& png) {
  return json{
      {"inputs",
       {{{"name", "image"}, {"shape", {1}}, {"datatype", "BYTES"}, {"data", {png}}}}}}
      .dump();
}

/// Turns the response cache of a copied model on.
void enable_cache(const fs::path& model_folder) {
  auto config = json::parse(testing::read_file(model_folder / "config.json"));
  config["response_cache"] = {{"enable", true}};
  testing::write_file(model_folder / "config.json", config.dump(2));
}

std::string header(const testing::http_answer& answer, const std::string& name) {
  auto found = answer.headers.find(name);
  return found == answer.headers.end() ? "" : found->second;
}

/// actorserve_cache_requests_total{model,result}, 0 without a series.
double cache_count(const testing::server_process& server, const std::string& model,
                   const std::string& result) {
  auto client = server.client();
  auto metrics = client.Get("/metrics");
  if (!metrics)
    return -1;
  auto series = "actorserve_cache_requests_total{model=\"" + model + "\",result=\"" +
                result + "\"} ";
  auto at = metrics->body.find(series);
  return at == std::string::npos ? 0
                                 : std::stod(metrics->body.substr(at + series.size()));
}

std::vector<std::string> server_args(const fs::path& repository,
                                     std::vector<std::string> more = {}) {
  std::vector<std::string> args{"--model-repository",
                                repository.string(),
                                "--log-level",
                                "warn",
                                "--anonymous-rate-per-s",
                                "0"};
  args.insert(args.end(), more.begin(), more.end());
  return args;
}

const std::string digits_predict = "/api/v1/models/digits/predict";

TEST(response_cache_e2e, memory_cache_answers_repeats_across_doors_and_counts_them) {
  testing::temp_dir repository;
  testing::copy_model("digits", repository.path(), {"1"});
  testing::copy_model("affine", repository.path());
  enable_cache(repository.path() / "digits");
  testing::server_process server{server_args(repository.path())};
  auto client = server.client();

  auto png = testing::holdout_pngs(1).at(0);
  auto first = testing::post_json(client, digits_predict, v1_body(png));
  ASSERT_EQ(first.status, 200) << first.body.dump();
  EXPECT_EQ(header(first, "X-Cache"), "miss");
  auto second = testing::post_json(client, digits_predict, v1_body(png));
  ASSERT_EQ(second.status, 200);
  EXPECT_EQ(header(second, "X-Cache"), "hit");
  EXPECT_EQ(second.body, first.body);
  EXPECT_EQ(header(second, "X-Model-Version"), "1");
  // Output options are applied after the cache: a hit with its own top_k.
  auto top2 = testing::post_json(client, digits_predict, v1_body(png, {{"top_k", 2}}));
  EXPECT_EQ(header(top2, "X-Cache"), "hit");
  EXPECT_EQ(top2.body["predictions"][0]["top_k"].size(), 2u) << top2.body.dump();

  // Another digit: asked through v1 first, then OIP and TF Serving hit its entry.
  auto other = testing::holdout_pngs(2).at(1);
  auto raw =
      testing::post_json(client, digits_predict, v1_body(other, {{"raw_output", true}}));
  EXPECT_EQ(header(raw, "X-Cache"), "miss");
  auto oip = testing::post_json(client, "/v2/models/digits/infer", oip_body(other));
  ASSERT_EQ(oip.status, 200) << oip.body.dump();
  EXPECT_EQ(header(oip, "X-Cache"), "hit");
  EXPECT_EQ(oip.body["outputs"][0]["data"], raw.body["predictions"][0]["output"]);
  auto tf = testing::post_json(client, "/v1/models/digits:predict",
                               json{{"instances", {{{"b64", other}}}}}.dump());
  ASSERT_EQ(tf.status, 200) << tf.body.dump();
  EXPECT_EQ(header(tf, "X-Cache"), "hit");

  // A model without the flag: no cache, no header, no series.
  auto affine = testing::post_json(client, "/api/v1/models/affine/predict",
                                   R"({"instances": [{"data": [[1, 2], [3, 4]]}]})");
  ASSERT_EQ(affine.status, 200) << affine.body.dump();
  EXPECT_EQ(header(affine, "X-Cache"), "");

  EXPECT_EQ(cache_count(server, "digits", "hit"), 4);
  EXPECT_EQ(cache_count(server, "digits", "miss"), 2);
  EXPECT_EQ(cache_count(server, "digits", "error"), 0);
  auto stats = testing::get_json(client, "/api/v1/stats");
  ASSERT_EQ(stats.status, 200);
  for (const auto& model : stats.body["models"]) {
    if (model["name"] == "digits") {
      EXPECT_EQ(model["cache"]["hit"], 4) << model.dump();
      EXPECT_EQ(model["cache"]["miss"], 2) << model.dump();
    } else {
      EXPECT_TRUE(model["cache"].is_null()) << model.dump();
    }
  }
}

TEST(response_cache_e2e, a_reload_of_a_changed_model_or_a_new_version_misses_first) {
  testing::temp_dir repository;
  testing::copy_model("digits", repository.path());
  auto digits = repository.path() / "digits";
  enable_cache(digits);
  testing::server_process server{server_args(repository.path())};
  auto client = server.client();
  auto body = v1_body(testing::holdout_pngs(1).at(0));
  auto ask = [&] {
    auto answer = testing::post_json(client, digits_predict, body);
    EXPECT_EQ(answer.status, 200) << answer.body.dump();
    return header(answer, "X-Model-Version") + "/" + header(answer, "X-Cache");
  };
  EXPECT_EQ(ask(), "2/miss");
  EXPECT_EQ(ask(), "2/hit");

  // The same archive loaded again is the same model: its entries still hold.
  auto reload = [&](const std::string& version) {
    auto answer = testing::post_json(client, "/api/v1/models/digits/reload",
                                     json{{"version", version}}.dump());
    ASSERT_EQ(answer.status, 200) << answer.body.dump();
  };
  reload("2");
  EXPECT_EQ(ask(), "2/hit");

  // Version 2 re-deployed with another model.pt: never the old answer.
  fs::copy_file(digits / "1" / "model.pt", digits / "2" / "model.pt",
                fs::copy_options::overwrite_existing);
  reload("2");
  EXPECT_EQ(ask(), "2/miss");
  EXPECT_EQ(ask(), "2/hit");

  // A new version folder becomes the default: its first answer is its own.
  fs::copy(digits / "1", digits / "3", fs::copy_options::recursive);
  auto rescan = testing::post_json(client, "/api/v1/models/digits/reload", "{}");
  ASSERT_EQ(rescan.status, 200) << rescan.body.dump();
  EXPECT_EQ(ask(), "3/miss");
  EXPECT_EQ(ask(), "3/hit");
}

TEST(response_cache_e2e, redis_cache_is_shared_by_processes_and_survives_redis_leaving) {
  testing::redis_server redis{"cache-secret"};
  testing::temp_dir repository;
  testing::copy_model("digits", repository.path(), {"1"});
  enable_cache(repository.path() / "digits");
  auto args = server_args(repository.path(), {"--cache", "redis", "--redis-url",
                                              redis.url(), "--redis-timeout-ms", "300"});
  testing::server_process a{args};
  testing::server_process b{args};
  auto client_a = a.client();
  auto client_b = b.client();
  auto body = v1_body(testing::holdout_pngs(3).at(2));

  auto on_a = testing::post_json(client_a, digits_predict, body);
  ASSERT_EQ(on_a.status, 200) << on_a.body.dump();
  EXPECT_EQ(header(on_a, "X-Cache"), "miss");
  auto on_b = testing::post_json(client_b, digits_predict, body);
  ASSERT_EQ(on_b.status, 200) << on_b.body.dump();
  EXPECT_EQ(header(on_b, "X-Cache"), "hit"); // stored by A
  EXPECT_EQ(on_b.body, on_a.body);
  EXPECT_EQ(cache_count(b, "digits", "hit"), 1);

  redis.stop();
  for (int i = 0; i < 5; ++i) {
    auto answer = testing::post_json(client_a, digits_predict, body);
    ASSERT_EQ(answer.status, 200) << answer.body.dump();
    EXPECT_NE(header(answer, "X-Cache"), "hit");
    EXPECT_EQ(answer.body, on_a.body);
  }
  EXPECT_GE(cache_count(a, "digits", "error"), 1);

  redis.start(); // empty: a miss stores the answer again, then it hits
  // Each process finds its connection gone on its first call after the
  // restart (bypassed), dials again after its backoff, then hits.
  auto hits_again = [&](httplib::Client& client) {
    std::string outcome;
    for (auto until = std::chrono::steady_clock::now() + 30s;
         outcome != "hit" && std::chrono::steady_clock::now() < until;) {
      auto answer = testing::post_json(client, digits_predict, body);
      EXPECT_EQ(answer.status, 200) << answer.body.dump();
      outcome = header(answer, "X-Cache");
      if (outcome != "hit")
        std::this_thread::sleep_for(100ms);
    }
    return outcome;
  };
  EXPECT_EQ(hits_again(client_a), "hit");
  EXPECT_EQ(hits_again(client_b), "hit");
  EXPECT_EQ(redis.cli("DBSIZE"), "1\n");
}

} // namespace
} // namespace actorserve
