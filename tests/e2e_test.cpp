// End-to-end: the real actorserve binary on a temporary repository (the
// generated digits and affine models), spoken to over HTTP.

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

#include "tests/served_suite.hpp"
#include "tests/test_support.hpp"

namespace actorserve {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

struct holdout_digit {
  int label;
  std::string png_base64;
};

std::vector<holdout_digit> load_holdout() {
  std::vector<holdout_digit> digits;
  for (const auto& item : testing::holdout_digits())
    digits.push_back({item["label"].get<int>(), item["png"].get<std::string>()});
  return digits;
}

std::string image_body(const std::string& base64) {
  return json{{"instances", {{{"image", base64}}}}}.dump();
}

class e2e_test : public testing::served_suite<e2e_test> {
protected:
  /// After every test, the server still serves a real prediction.
  void TearDown() override {
    auto client = server().client();
    auto answer = testing::post_json(client, "/api/v1/models/affine/predict",
                                     R"({"instances": [{"data": [[1, 2], [3, 4]]}]})");
    ASSERT_EQ(answer.status, 200) << "the server stopped serving; stderr:\n"
                                  << server().stderr_text();
    EXPECT_EQ(answer.body["predictions"][0]["output"], json({3.0, 5.0, 7.0, 9.0}));
  }

  void expect_error(const testing::http_answer& answer, int status,
                    const std::string& code, const std::string& field = {}) {
    EXPECT_EQ(answer.status, status) << answer.body.dump();
    ASSERT_TRUE(answer.body.is_object()) << "error bodies are JSON";
    EXPECT_EQ(answer.body["error"]["code"], code) << answer.body.dump();
    EXPECT_FALSE(answer.body["error"]["message"].get<std::string>().empty());
    if (!field.empty()) {
      EXPECT_EQ(answer.body["error"]["field"], field) << answer.body.dump();
    }
  }

  testing::http_answer predict(const std::string& model, const std::string& body,
                               const httplib::Headers& headers = {}) {
    auto client = server().client();
    return testing::post_json(client, "/api/v1/models/" + model + "/predict", body,
                              headers);
  }
};

TEST_F(e2e_test, held_out_digits_reach_the_tools_accuracy) {
  auto digits = load_holdout();
  ASSERT_EQ(digits.size(), 1000u);
  double tool_accuracy = std::stod(
      testing::read_file(testing::digits_holdout_file().string() + ".accuracy"));
  // Four clients at once, so requests share batches on the way.
  std::atomic<int> correct{0}, answered{0};
  std::vector<std::thread> clients;
  for (size_t first = 0; first < 4; ++first) {
    clients.emplace_back([&, first] {
      auto client = server().client();
      for (size_t i = first; i < digits.size(); i += 4) {
        auto answer = testing::post_json(client, "/api/v1/models/digits/predict",
                                         image_body(digits[i].png_base64));
        if (answer.status != 200)
          continue;
        answered += 1;
        if (answer.body["predictions"][0]["index"] == digits[i].label)
          correct += 1;
      }
    });
  }
  for (auto& client : clients)
    client.join();
  EXPECT_EQ(answered.load(), 1000);
  double accuracy = correct.load() / 1000.0;
  EXPECT_GE(accuracy, 0.96);
  // The server's preprocessing is the tool's: the same digits come out right.
  EXPECT_NEAR(accuracy, tool_accuracy, 0.0015)
      << "server " << accuracy << " vs tool " << tool_accuracy;
}

TEST_F(e2e_test, classification_answer_has_the_contract_shape) {
  auto digit = load_holdout().front();
  json body{{"instances", {{{"image", digit.png_base64}}}},
            {"parameters", {{"top_k", 3}, {"raw_output", true}}}};
  auto answer = predict("digits", body.dump(), {{"X-Request-Id", "client-id-42"}});
  ASSERT_EQ(answer.status, 200) << answer.body.dump();
  EXPECT_EQ(answer.body["model"], "digits");
  EXPECT_EQ(answer.body["version"], "1");
  auto prediction = answer.body["predictions"][0];
  EXPECT_EQ(prediction["top_k"].size(), 3u);
  EXPECT_EQ(prediction["label"], prediction["top_k"][0]["label"]);
  EXPECT_EQ(prediction["index"], prediction["top_k"][0]["index"]);
  EXPECT_EQ(prediction["label"], std::to_string(prediction["index"].get<int>()));
  EXPECT_GE(prediction["top_k"][0]["score"], prediction["top_k"][1]["score"]);
  EXPECT_EQ(prediction["output"].size(), 10u);
  auto headers = answer.headers;
  EXPECT_EQ(headers.find("X-Request-Id")->second, "client-id-42");
}

TEST_F(e2e_test, tensor_model_answers_exact_values_in_order) {
  json instances = json::array();
  for (int i = 0; i < 100; ++i)
    instances.push_back({{"data", {{i, -i}, {i * 0.5, 1}}}});
  auto answer = predict("affine", json{{"instances", instances}}.dump());
  ASSERT_EQ(answer.status, 200) << answer.body.dump();
  auto& predictions = answer.body["predictions"];
  ASSERT_EQ(predictions.size(), 100u);
  for (int i = 0; i < 100; ++i) {
    EXPECT_EQ(predictions[i]["shape"], json({2, 2}));
    EXPECT_EQ(predictions[i]["output"],
              json({2.0 * i + 1, -2.0 * i + 1, 2.0 * (i * 0.5) + 1, 3.0}))
        << "instance " << i;
  }
}

TEST_F(e2e_test, versions_are_pinned_by_path_or_header) {
  auto body = R"({"instances": [{"data": [[0, 0], [0, 0]]}]})";
  auto client = server().client();
  auto by_path =
      testing::post_json(client, "/api/v1/models/affine/versions/1/predict", body);
  EXPECT_EQ(by_path.status, 200);
  EXPECT_EQ(by_path.body["version"], "1");
  auto by_header = predict("affine", body, {{"X-Model-Version", "1"}});
  EXPECT_EQ(by_header.status, 200);
  expect_error(predict("affine", body, {{"X-Model-Version", "7"}}), 404,
               "version_not_found");
  expect_error(
      testing::post_json(client, "/api/v1/models/affine/versions/9/predict", body), 404,
      "version_not_found");
  // Path tricks never name a version.
  for (auto path : {"/api/v1/models/affine/versions/..%2f1/predict",
                    "/api/v1/models/affine/versions/%2e%2e/predict",
                    "/api/v1/models/affine/versions/01/predict"})
    EXPECT_EQ(testing::post_json(client, path, body).status, 404) << path;
}

TEST_F(e2e_test, malformed_requests_get_their_documented_errors) {
  auto png = load_holdout().front().png_base64;
  expect_error(predict("digits", "{not json"), 400, "invalid_json");
  expect_error(predict("digits", "{}"), 400, "invalid_request", "instances");
  expect_error(predict("digits", R"({"instances": []})"), 400, "invalid_request",
               "instances");
  expect_error(predict("digits", R"({"instances": {"image": "x"}})"), 400,
               "invalid_request", "instances");
  expect_error(predict("digits", R"({"instances": [42]})"), 400, "invalid_request",
               "instances[0]");
  expect_error(predict("digits", R"({"instances": [{"image": 42}]})"), 400,
               "invalid_request");
  expect_error(predict("digits", image_body("!!!not base64!!!")), 400, "invalid_input",
               "instances[0].image");
  expect_error(
      predict("digits", image_body(testing::base64_encode("plain text, no image"))), 415,
      "unsupported_media_type", "instances[0].image");
  expect_error(predict("digits", image_body(testing::base64_encode(std::string(
                                     "GIF89a\x01\x00\x01\x00\x00\x00\x00", 13)))),
               415, "unsupported_media_type", "instances[0].image");
  expect_error(predict("digits",
                       json{{"instances", {{{"image", png}}, {{"image", "@@"}}}}}.dump()),
               400, "invalid_input", "instances[1].image");
  expect_error(
      predict(
          "digits",
          json{{"instances", {{{"image", png}}}}, {"parameters", {{"bogus", 1}}}}.dump()),
      400, "invalid_request", "parameters.bogus");
  expect_error(predict("affine", R"({"instances": [{"data": [[1, 2, 3]]}]})"), 400,
               "invalid_input", "instances[0].data");
  expect_error(predict("affine", R"({"instances": [{"data": [[1, "2"], [3, 4]]}]})"), 400,
               "invalid_input", "instances[0].data");
  expect_error(predict("nosuchmodel", R"({"instances": [{"data": [[1, 2], [3, 4]]}]})"),
               404, "model_not_found");
}

TEST_F(e2e_test, non_json_bodies_and_oversized_bodies_are_refused) {
  auto client = server().client();
  auto text = client.Post("/api/v1/models/affine/predict", "instances", "text/plain");
  ASSERT_TRUE(text);
  EXPECT_EQ(text->status, 415);
  std::string huge =
      R"({"instances": [{"data": ")" + std::string(11 * 1024 * 1024, 'a') + R"("}]})";
  auto answer = client.Post("/api/v1/models/affine/predict", huge, "application/json");
  ASSERT_TRUE(answer);
  EXPECT_EQ(answer->status, 413);
  EXPECT_EQ(json::parse(answer->body)["error"]["code"], "payload_too_large");

  // Chunked framing is bounded too: the server keeps at most the limit
  // (cpp-httplib discards the rest) and answers 413.
  auto chunked_client = server().client();
  size_t sent = 0;
  auto chunked = chunked_client.Post(
      "/api/v1/models/affine/predict",
      [&sent](size_t, httplib::DataSink& sink) {
        if (sent >= 16u * 1024 * 1024) {
          sink.done(); // 16 MiB in all, over the 10 MiB limit
          return true;
        }
        std::string chunk(64 * 1024, 'a');
        sent += chunk.size();
        return sink.write(chunk.data(), chunk.size());
      },
      "application/json");
  ASSERT_TRUE(chunked);
  EXPECT_EQ(chunked->status, 413);
  EXPECT_EQ(json::parse(chunked->body)["error"]["code"], "payload_too_large");
}

TEST_F(e2e_test, ambiguous_framing_and_header_floods_are_refused) {
  auto body = R"({"instances": [{"data": [[1, 2], [3, 4]]}]})";
  {
    // The client adds its own Content-Length beside this Transfer-Encoding.
    auto client = server().client();
    expect_error(testing::post_json(client, "/api/v1/models/affine/predict", body,
                                    {{"Transfer-Encoding", "gzip"}}),
                 400, "invalid_request", "Transfer-Encoding");
  }
  {
    auto client = server().client();
    httplib::Headers many;
    for (int i = 0; i < 150; ++i)
      many.emplace("X-Filler-" + std::to_string(i), "x");
    expect_error(testing::post_json(client, "/api/v1/models/affine/predict", body, many),
                 431, "header_fields_too_large");
  }
}

TEST_F(e2e_test, unknown_routes_get_a_json_404_with_a_request_id) {
  auto client = server().client();
  auto answer = testing::get_json(client, "/no/such/route");
  EXPECT_EQ(answer.status, 404);
  EXPECT_EQ(answer.body["error"]["code"], "not_found");
  EXPECT_EQ(answer.headers.find("X-Request-Id")->second.size(), 32u);
}

TEST_F(e2e_test, health_ready_and_listing_describe_the_models) {
  auto client = server().client();
  auto health = testing::get_json(client, "/health");
  EXPECT_EQ(health.status, 200);
  EXPECT_EQ(health.body["status"], "healthy");
  EXPECT_EQ(health.body["model_loaded"], true);
  EXPECT_EQ(testing::get_json(client, "/ready").status, 200);
  auto listing = testing::get_json(client, "/api/v1/models");
  ASSERT_EQ(listing.status, 200);
  ASSERT_EQ(listing.body["models"].size(), 2u);
  EXPECT_EQ(listing.body["models"][0]["name"], "affine");
  auto digits = testing::get_json(client, "/api/v1/models/digits");
  ASSERT_EQ(digits.status, 200);
  EXPECT_EQ(digits.body["default_version"], "1");
  EXPECT_EQ(digits.body["versions"][0]["state"], "available");
  EXPECT_EQ(testing::get_json(client, "/api/v1/models/nothing").status, 404);
}

TEST_F(e2e_test, concurrent_clients_each_get_their_own_answer) {
  // The sequential answers first; then 200 clients at once must get exactly
  // the same (batched together, no cross-talk).
  auto digits = load_holdout();
  constexpr size_t clients = 200;
  std::vector<json> expected(clients);
  {
    auto client = server().client();
    for (size_t i = 0; i < clients; ++i)
      expected[i] = testing::post_json(client, "/api/v1/models/digits/predict",
                                       image_body(digits[i].png_base64))
                        .body["predictions"][0]["index"];
  }
  std::vector<json> got(clients);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < clients; ++i)
    threads.emplace_back([&, i] {
      auto client = server().client();
      auto answer = testing::post_json(client, "/api/v1/models/digits/predict",
                                       image_body(digits[i].png_base64));
      got[i] =
          answer.status == 200 ? answer.body["predictions"][0]["index"] : answer.body;
    });
  for (auto& thread : threads)
    thread.join();
  for (size_t i = 0; i < clients; ++i)
    EXPECT_EQ(got[i], expected[i]) << "client " << i;
}

TEST_F(e2e_test, metrics_pass_promtool_with_route_templates_as_labels) {
  auto client = server().client();
  predict("affine", R"({"instances": [{"data": [[1, 2], [3, 4]]}]})");
  testing::get_json(client, "/no/such/thing/" + std::string(5000, 'x'));
  auto metrics = client.Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_EQ(metrics->status, 200);
  EXPECT_NE(metrics->body.find(
                "request_count_total{endpoint=\"/api/v1/models/{model}/predict\""),
            std::string::npos);
  EXPECT_NE(metrics->body.find("actorserve_batch_size_bucket{model=\"affine\""),
            std::string::npos);
  EXPECT_EQ(metrics->body.find("xxxxx"), std::string::npos)
      << "raw paths never become labels";
  if (std::system("command -v promtool > /dev/null") != 0) {
    GTEST_SKIP() << "promtool (Debian package prometheus) is not installed";
  } else {
    testing::temp_dir dir;
    testing::write_file(dir.path() / "metrics.txt", metrics->body);
    auto command = "promtool check metrics < " + (dir.path() / "metrics.txt").string();
    EXPECT_EQ(std::system(command.c_str()), 0);
  }
}

TEST_F(e2e_test, every_log_line_is_a_json_object) {
  auto logs = server().stderr_text();
  std::istringstream lines{logs};
  std::string line;
  int count = 0;
  while (std::getline(lines, line)) {
    if (line.empty())
      continue;
    auto parsed = json::parse(line, nullptr, false);
    EXPECT_TRUE(parsed.is_object()) << line;
    count += 1;
  }
  EXPECT_GT(count, 0);
}

TEST(e2e_lifecycle, requests_in_flight_at_sigterm_finish_and_the_exit_code_is_zero) {
  // Batches wait 1.5 s to fill, so 12 requests are still in flight when
  // SIGTERM arrives; every one must still be answered 200.
  testing::temp_dir repository;
  testing::copy_model("affine", repository.path());
  auto config_file = repository.path() / "affine" / "config.json";
  auto config = json::parse(testing::read_file(config_file));
  config["batching"] = {{"max_batch_size", 64}, {"max_queue_delay_us", 1'500'000}};
  testing::write_file(config_file, config.dump());
  testing::server_process server{{"--model-repository", repository.path().string()}};
  std::vector<int> statuses(12);
  std::vector<std::thread> clients;
  for (size_t i = 0; i < statuses.size(); ++i)
    clients.emplace_back([&, i] {
      auto client = server.client();
      statuses[i] = testing::post_json(client, "/api/v1/models/affine/predict",
                                       R"({"instances": [{"data": [[1, 2], [3, 4]]}]})")
                        .status;
    });
  std::this_thread::sleep_for(std::chrono::milliseconds{400});
  EXPECT_EQ(server.terminate(), 0);
  for (auto& client : clients)
    client.join();
  EXPECT_EQ(statuses, std::vector<int>(12, 200));
}

TEST(e2e_lifecycle, sigterm_exits_cleanly_and_bad_config_is_refused) {
  testing::temp_dir repository;
  testing::copy_model("affine", repository.path());
  testing::server_process server{{"--model-repository", repository.path().string()}};
  EXPECT_EQ(server.terminate(), 0);
  EXPECT_NE(server.stderr_text().find("\"event\":\"shutdown\""), std::string::npos);

  // A typo in config.json fails that model's versions, naming the key.
  testing::write_file(repository.path() / "affine" / "config.json",
                      R"({"input": {"type": "tensor", "shape": [2, 2]}, "outptu": {}})");
  testing::server_process broken{{"--model-repository", repository.path().string()}};
  auto client = broken.client();
  auto status = testing::get_json(client, "/api/v1/models/affine");
  ASSERT_EQ(status.status, 200);
  EXPECT_EQ(status.body["versions"][0]["state"], "failed");
  EXPECT_NE(status.body["versions"][0]["error"].get<std::string>().find("outptu"),
            std::string::npos);
  EXPECT_EQ(testing::get_json(client, "/ready").status, 503);
}

} // namespace
} // namespace actorserve
