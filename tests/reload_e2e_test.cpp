// End-to-end: versions, hot reload under load, traffic splits and unloads
// through the real binary.

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <thread>

#include "tests/test_support.hpp"

namespace actorserve {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

class reload_e2e : public ::testing::Test {
protected:
  reload_e2e() {
    testing::copy_model("digits", repository.path(), {"1", "2"});
    // Every client is 127.0.0.1: the anonymous per-IP limit would answer the
    // load's clients and the admin 429 (the limiter has its own tests).
    server = std::make_unique<testing::server_process>(
        std::vector<std::string>{"--model-repository", repository.path().string(),
                                 "--log-level", "warn", "--anonymous-rate-per-s", "0"});
  }

  testing::http_answer admin(const std::string& method, const std::string& path,
                             const std::string& body = "{}") {
    auto client = server->client();
    if (method == "PUT")
      return testing::to_answer(client.Put(path.c_str(), body, "application/json"));
    return testing::post_json(client, path, body);
  }

  std::string version_state(const std::string& version) {
    auto client = server->client();
    auto status = testing::get_json(client, "/api/v1/models/digits");
    for (const auto& v : status.body["versions"])
      if (v["version"] == version)
        return v["state"];
    return "absent";
  }

  testing::temp_dir repository;
  std::unique_ptr<testing::server_process> server;
  std::string body = testing::first_digit_body();
};

/// The q-quantile of `values` in milliseconds (sorts them).
double quantile_ms(std::vector<double>& values, double q) {
  if (values.empty())
    return 0;
  std::sort(values.begin(), values.end());
  return values[static_cast<size_t>(q * static_cast<double>(values.size() - 1))];
}

TEST_F(reload_e2e, twenty_reloads_under_load_lose_no_request) {
  std::atomic<bool> stop{false}, reloading{false};
  std::atomic<int> served{0}, failed{0};
  std::mutex latencies_mutex;
  std::vector<double> steady_ms, reloading_ms; // reported, not asserted: see bench/
  std::vector<std::thread> clients;
  for (int t = 0; t < 8; ++t)
    clients.emplace_back([&] {
      auto client = server->client();
      while (!stop) {
        bool during_reloads = reloading;
        auto started = std::chrono::steady_clock::now();
        auto answer = testing::post_json(client, "/api/v1/models/digits/predict", body);
        std::chrono::duration<double, std::milli> latency =
            std::chrono::steady_clock::now() - started;
        {
          std::lock_guard<std::mutex> lock{latencies_mutex};
          (during_reloads ? reloading_ms : steady_ms).push_back(latency.count());
        }
        auto version = answer.body.is_object() ? answer.body.value("version", "") : "";
        if (answer.status == 200 && (version == "1" || version == "2"))
          served += 1;
        else
          failed += 1;
      }
    });
  std::this_thread::sleep_for(2s); // the steady state to compare with
  reloading = true;
  for (int round = 0; round < 20; ++round) {
    auto version = std::to_string(1 + round % 2);
    auto reloaded =
        admin("POST", "/api/v1/models/digits/reload", json{{"version", version}}.dump());
    ASSERT_EQ(reloaded.status, 200) << reloaded.body.dump();
    auto switched =
        admin("PUT", "/api/v1/models/digits/traffic", json{{"default", version}}.dump());
    ASSERT_EQ(switched.status, 200) << switched.body.dump();
    EXPECT_EQ(switched.body["default_version"], version);
  }
  stop = true;
  for (auto& client : clients)
    client.join();
  EXPECT_EQ(failed.load(), 0);
  EXPECT_GT(served.load(), 100);
  std::printf("served %d requests; latency p50/p99 steady %.1f/%.1f ms (n=%zu), during "
              "20 reloads %.1f/%.1f ms (n=%zu)\n",
              served.load(), quantile_ms(steady_ms, 0.5), quantile_ms(steady_ms, 0.99),
              steady_ms.size(), quantile_ms(reloading_ms, 0.5),
              quantile_ms(reloading_ms, 0.99), reloading_ms.size());
}

TEST_F(reload_e2e, a_rescan_loads_new_folders_and_a_corrupt_archive_changes_nothing) {
  fs::copy(repository.path() / "digits" / "2", repository.path() / "digits" / "3",
           fs::copy_options::recursive);
  auto rescanned = admin("POST", "/api/v1/models/digits/reload", "{}");
  ASSERT_EQ(rescanned.status, 200) << rescanned.body.dump();
  EXPECT_EQ(version_state("3"), "available");
  auto client = server->client();
  auto pinned =
      testing::post_json(client, "/api/v1/models/digits/versions/3/predict", body);
  EXPECT_EQ(pinned.status, 200);
  EXPECT_EQ(pinned.body["version"], "3");

  testing::write_file(repository.path() / "digits" / "4" / "model.pt", "not torchscript");
  auto corrupt = admin("POST", "/api/v1/models/digits/reload", R"({"version": "4"})");
  EXPECT_EQ(corrupt.status, 500);
  EXPECT_NE(corrupt.body["error"]["message"].get<std::string>().find("version 4"),
            std::string::npos);
  EXPECT_EQ(version_state("4"), "failed");
  // Reloading a serving version with a broken archive keeps the old one serving.
  testing::write_file(repository.path() / "digits" / "3" / "model.pt", "broken now");
  EXPECT_EQ(admin("POST", "/api/v1/models/digits/reload", R"({"version": "3"})").status,
            500);
  EXPECT_EQ(version_state("3"), "available");
  auto still = testing::post_json(client, "/api/v1/models/digits/predict", body);
  EXPECT_EQ(still.status, 200);
  EXPECT_EQ(still.body["version"], "3");
}

TEST_F(reload_e2e, a_seventy_thirty_split_is_exact) {
  auto split =
      admin("PUT", "/api/v1/models/digits/traffic", R"({"weights": {"1": 70, "2": 30}})");
  ASSERT_EQ(split.status, 200) << split.body.dump();
  std::map<std::string, int> counts;
  auto client = server->client();
  for (int i = 0; i < 1000; ++i)
    counts[testing::post_json(client, "/api/v1/models/digits/predict", body)
               .body["version"]] += 1;
  EXPECT_EQ(counts["1"], 700);
  EXPECT_EQ(counts["2"], 300);
  // Pinned requests ignore the weights.
  auto pinned = testing::post_json(client, "/api/v1/models/digits/predict", body,
                                   {{"X-Model-Version", "2"}});
  EXPECT_EQ(pinned.body["version"], "2");
  // Weights may only name available versions.
  auto refused =
      admin("PUT", "/api/v1/models/digits/traffic", R"({"weights": {"9": 1}})");
  EXPECT_EQ(refused.status, 409);
  EXPECT_EQ(refused.body["error"]["code"], "conflict");
}

TEST_F(reload_e2e, unload_drains_and_the_last_version_stays) {
  auto unloaded = admin("POST", "/api/v1/models/digits/versions/2/unload");
  ASSERT_EQ(unloaded.status, 200) << unloaded.body.dump();
  for (int i = 0; i < 100 && version_state("2") != "unloaded"; ++i)
    std::this_thread::sleep_for(20ms);
  EXPECT_EQ(version_state("2"), "unloaded");
  auto client = server->client();
  EXPECT_EQ(
      testing::post_json(client, "/api/v1/models/digits/predict", body).body["version"],
      "1");
  EXPECT_EQ(
      testing::post_json(client, "/api/v1/models/digits/versions/2/predict", body).status,
      503);
  auto last = admin("POST", "/api/v1/models/digits/versions/1/unload");
  EXPECT_EQ(last.status, 409);
  EXPECT_EQ(last.body["error"]["code"], "conflict");
  // An unloaded version comes back with a reload.
  EXPECT_EQ(admin("POST", "/api/v1/models/digits/reload", R"({"version": "2"})").status,
            200);
  EXPECT_EQ(version_state("2"), "available");
}

TEST_F(reload_e2e, path_tricks_never_reach_the_file_system) {
  fs::create_directories(repository.path() / "outside" / "5");
  for (auto version :
       {"../x", "/etc/passwd", "1/../..", "..", "0", "01", "-1", "1e3", "5"}) {
    auto answer =
        admin("POST", "/api/v1/models/digits/reload", json{{"version", version}}.dump());
    EXPECT_EQ(answer.status, 404) << version << ": " << answer.body.dump();
  }
  // A version folder that is a symlink leading out of the repository is refused.
  fs::copy(repository.path() / "digits" / "1", repository.path() / "outside" / "6",
           fs::copy_options::recursive);
  fs::create_directory_symlink(repository.path() / "outside" / "6",
                               repository.path() / "digits" / "6");
  EXPECT_EQ(admin("POST", "/api/v1/models/digits/reload", R"({"version": "6"})").status,
            404);
  for (auto path : {"/api/v1/models/digits/versions/..%2f1/unload",
                    "/api/v1/models/digits/versions/%2e%2e/unload",
                    "/api/v1/models/..%2fdigits/reload"})
    EXPECT_EQ(admin("POST", path).status, 404) << path;
  EXPECT_EQ(admin("POST", "/api/v1/models/digits/reload", R"({"path": "/tmp"})").status,
            400);
}

} // namespace
} // namespace actorserve
