// End-to-end: whole models loaded and unloaded at runtime, config.json
// re-read on every load and reload, warm-up from config.json, and the
// repository poll (--repository-poll-s), through the real binary on a
// temporary repository.

#include <gtest/gtest.h>

#include <atomic>
#include <fstream>
#include <thread>

#include "tests/test_support.hpp"

namespace actorserve {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

class lifecycle_e2e : public ::testing::Test {
protected:
  /// Starts the server on `repository`; `poll_s` > 0 turns the poll on.
  void start(int poll_s = 0) {
    std::vector<std::string> args{"--model-repository",
                                  repository.path().string(),
                                  "--log-level",
                                  "warn",
                                  "--anonymous-rate-per-s",
                                  "0"};
    if (poll_s > 0) {
      args.push_back("--repository-poll-s");
      args.push_back(std::to_string(poll_s));
    }
    server = std::make_unique<testing::server_process>(args);
  }

  testing::http_answer post(const std::string& path, const std::string& body = "{}") {
    auto client = server->client();
    return testing::post_json(client, path, body);
  }

  testing::http_answer get(const std::string& path) {
    auto client = server->client();
    return testing::get_json(client, path);
  }

  /// The state of a version ("absent" when the model or version is unknown).
  std::string version_state(const std::string& model, const std::string& version) {
    auto status = get("/api/v1/models/" + model);
    if (status.status != 200)
      return "absent";
    for (const auto& v : status.body["versions"])
      if (v["version"] == version)
        return v["state"];
    return "absent";
  }

  /// Waits (up to `limit`) until `done` holds; returns whether it did.
  template <class Done> bool eventually(Done done, std::chrono::seconds limit = 20s) {
    auto until = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < until) {
      if (done())
        return true;
      std::this_thread::sleep_for(100ms);
    }
    return done();
  }

  testing::http_answer predict_affine() {
    return post("/api/v1/models/affine/predict",
                R"({"instances": [{"data": [[1, 2], [3, 4]]}]})");
  }

  /// Rewrites digits' config.json with output.top_k set to `k`.
  void set_digits_top_k(int k) {
    auto file = repository.path() / "digits" / "config.json";
    auto config = json::parse(testing::read_file(file));
    config["output"]["top_k"] = k;
    testing::write_file(file, config.dump(2));
  }

  size_t digits_top_k() {
    auto answer = post("/api/v1/models/digits/predict", digit);
    if (answer.status != 200)
      return 0;
    return answer.body["predictions"][0]["top_k"].size();
  }

  testing::temp_dir repository;
  std::unique_ptr<testing::server_process> server;
  std::string digit = testing::first_digit_body();
};

TEST_F(lifecycle_e2e, a_model_loads_while_another_serves_and_unloads_to_404) {
  testing::copy_model("digits", repository.path(), {"1"});
  start();
  testing::copy_model("affine", repository.path());
  EXPECT_EQ(predict_affine().status, 404);

  std::atomic<bool> stop{false};
  std::atomic<int> served{0}, failed{0};
  std::vector<std::thread> clients;
  for (int t = 0; t < 4; ++t)
    clients.emplace_back([&] {
      auto client = server->client();
      while (!stop) {
        auto answer = testing::post_json(client, "/api/v1/models/digits/predict", digit);
        (answer.status == 200 ? served : failed) += 1;
      }
    });
  std::this_thread::sleep_for(300ms);
  auto loaded = post("/api/v1/models/affine/load");
  std::this_thread::sleep_for(300ms);
  stop = true;
  for (auto& client : clients)
    client.join();
  ASSERT_EQ(loaded.status, 200) << loaded.body.dump();
  EXPECT_EQ(loaded.body["name"], "affine");
  EXPECT_EQ(loaded.body["versions"][0]["state"], "available");
  EXPECT_EQ(failed.load(), 0);
  EXPECT_GT(served.load(), 0);

  auto answer = predict_affine();
  ASSERT_EQ(answer.status, 200) << answer.body.dump();
  EXPECT_EQ(answer.body["predictions"][0]["output"], json({3, 5, 7, 9}));
  EXPECT_EQ(get("/ready").status, 200);
  EXPECT_EQ(get("/api/v1/models").body["models"].size(), 2u);

  auto unloaded = post("/api/v1/models/affine/unload");
  ASSERT_EQ(unloaded.status, 200) << unloaded.body.dump();
  EXPECT_EQ(predict_affine().status, 404);
  EXPECT_EQ(get("/api/v1/models/affine").status, 404);
  EXPECT_EQ(post("/api/v1/models/affine/unload").status, 404);
  EXPECT_EQ(get("/ready").status, 200);
  EXPECT_EQ(get("/api/v1/models").body["models"].size(), 1u);
  EXPECT_EQ(post("/api/v1/models/digits/predict", digit).status, 200);

  // It comes back with another load; folders that are no model are 404.
  EXPECT_EQ(post("/api/v1/models/affine/load").status, 200);
  EXPECT_EQ(predict_affine().status, 200);
  for (auto name : {"nothing", "..", "%2e%2e", ".hidden"}) {
    auto missing = post(std::string{"/api/v1/models/"} + name + "/load");
    EXPECT_EQ(missing.status, 404) << name << ": " << missing.body.dump();
  }
}

TEST_F(lifecycle_e2e, a_corrupt_new_version_leaves_the_old_one_serving) {
  testing::copy_model("affine", repository.path());
  start();
  testing::write_file(repository.path() / "affine" / "2" / "model.pt", "not torchscript");
  auto load = post("/api/v1/models/affine/load");
  EXPECT_EQ(load.status, 500) << load.body.dump();
  EXPECT_NE(load.body["error"]["message"].get<std::string>().find("version 2"),
            std::string::npos);
  EXPECT_EQ(version_state("affine", "2"), "failed");
  auto answer = predict_affine();
  EXPECT_EQ(answer.status, 200);
  EXPECT_EQ(answer.body["version"], "1");
}

TEST_F(lifecycle_e2e, config_json_is_re_read_and_a_bad_one_changes_nothing) {
  testing::copy_model("digits", repository.path(), {"1"});
  testing::copy_model("affine", repository.path());
  start();
  EXPECT_EQ(digits_top_k(), 5u);
  set_digits_top_k(2);
  auto reloaded = post("/api/v1/models/digits/reload");
  ASSERT_EQ(reloaded.status, 200) << reloaded.body.dump();
  EXPECT_EQ(digits_top_k(), 2u);

  // A bad key fails the reload, naming it; the old settings keep serving.
  auto file = repository.path() / "digits" / "config.json";
  auto config = json::parse(testing::read_file(file));
  config["warmup"] = {{"batch_sizes", {1, 0}}};
  testing::write_file(file, config.dump());
  auto refused = post("/api/v1/models/digits/load");
  EXPECT_EQ(refused.status, 500);
  EXPECT_NE(
      refused.body["error"]["message"].get<std::string>().find("warmup.batch_sizes[1]"),
      std::string::npos)
      << refused.body.dump();
  EXPECT_EQ(version_state("digits", "1"), "available");
  EXPECT_EQ(digits_top_k(), 2u);

  // A new model with a bad config.json is not loaded, and says why.
  auto affine_config = repository.path() / "affine" / "config.json";
  testing::write_file(affine_config, R"({"input": {"type": "tensor", "shape": [2, 2]},
                                         "batching": {"max_batch_sise": 4}})");
  ASSERT_EQ(post("/api/v1/models/affine/unload").status, 200);
  auto bad = post("/api/v1/models/affine/load");
  EXPECT_EQ(bad.status, 500);
  EXPECT_NE(bad.body["error"]["message"].get<std::string>().find("max_batch_sise"),
            std::string::npos)
      << bad.body.dump();
  EXPECT_EQ(get("/api/v1/models/affine").status, 404);
  EXPECT_EQ(get("/ready").status, 200);
}

TEST_F(lifecycle_e2e, warm_up_calls_count_in_the_load_time) {
  // `slow` spends about 50 ms of CPU per row: 8 rounds of batches of 1 and 2
  // are 24 rows, about 1200 ms (measured 994 to 1460 ms), where the default
  // warm-up is one row (a load measured 260 ms with it). 600 ms lies well
  // between the two.
  fs::copy(testing::test_repository() / "slow", repository.path() / "slow",
           fs::copy_options::recursive);
  auto file = repository.path() / "slow" / "config.json";
  auto config = json::parse(testing::read_file(file));
  config["batching"]["max_batch_size"] = 2;
  config["warmup"] = {{"batch_sizes", {1, 2}}, {"count", 8}};
  testing::write_file(file, config.dump());
  start();
  auto status = get("/api/v1/models/slow");
  ASSERT_EQ(status.status, 200);
  auto version = status.body["versions"][0];
  EXPECT_EQ(version["state"], "available");
  EXPECT_GE(version["load_time_ms"].get<int64_t>(), 600) << status.body.dump();
}

TEST_F(lifecycle_e2e, oip_repository_routes_load_and_unload) {
  testing::copy_model("digits", repository.path(), {"1"});
  start();
  testing::copy_model("affine", repository.path());
  auto index = post("/v2/repository/index", "");
  ASSERT_EQ(index.status, 200);
  EXPECT_NE(index.body.dump().find(R"("name":"affine","reason":"not loaded")"),
            std::string::npos)
      << index.body.dump();

  auto loaded = post("/v2/repository/models/affine/load", "");
  ASSERT_EQ(loaded.status, 200) << loaded.body.dump();
  EXPECT_EQ(get("/v2/models/affine/ready").status, 200);
  auto infer = post("/v2/models/affine/infer",
                    R"({"inputs": [{"name": "input", "shape": [1, 2, 2],
                        "datatype": "FP32", "data": [1, 2, 3, 4]}]})");
  ASSERT_EQ(infer.status, 200) << infer.body.dump();
  EXPECT_EQ(infer.body["outputs"][0]["data"], json({3, 5, 7, 9}));
  index = post("/v2/repository/index", "");
  EXPECT_NE(index.body.dump().find(R"("name":"affine","reason":"","state":"READY")"),
            std::string::npos)
      << index.body.dump();

  EXPECT_EQ(post("/v2/repository/models/affine/unload", "").status, 200);
  auto gone = get("/v2/models/affine");
  EXPECT_EQ(gone.status, 404);
  EXPECT_TRUE(gone.body["error"].is_string()) << gone.body.dump();
  auto missing = post("/v2/repository/models/nothing/load", "");
  EXPECT_EQ(missing.status, 404);
  EXPECT_TRUE(missing.body["error"].is_string()) << missing.body.dump();
}

TEST_F(lifecycle_e2e, the_poll_loads_a_version_written_in_chunks_once_complete) {
  testing::copy_model("digits", repository.path(), {"1"});
  start(1);
  auto archive =
      testing::read_file(testing::generated_repository() / "digits" / "2" / "model.pt");
  auto target = repository.path() / "digits" / "2" / "model.pt";
  fs::create_directories(target.parent_path());
  std::atomic<bool> writing{true};
  std::atomic<int> seen_failed{0};
  std::thread watcher([&] {
    while (writing) {
      if (version_state("digits", "2") == "failed")
        seen_failed += 1;
      std::this_thread::sleep_for(50ms);
    }
  });
  {
    // Ten chunks, 300 ms apart: never the same size at two polls 1 s apart.
    std::ofstream out(target, std::ios::binary);
    size_t chunk = archive.size() / 10 + 1;
    for (size_t at = 0; at < archive.size(); at += chunk) {
      out.write(archive.data() + at,
                static_cast<std::streamsize>(std::min(chunk, archive.size() - at)));
      out.flush();
      std::this_thread::sleep_for(300ms);
    }
  }
  EXPECT_TRUE(eventually([&] { return version_state("digits", "2") == "available"; }))
      << version_state("digits", "2");
  writing = false;
  watcher.join();
  EXPECT_EQ(seen_failed.load(), 0);
  auto pinned = post("/api/v1/models/digits/versions/2/predict", digit);
  EXPECT_EQ(pinned.status, 200);

  // A corrupt archive in a new version fails that version only.
  testing::write_file(repository.path() / "digits" / "3" / "model.pt", "not torchscript");
  EXPECT_TRUE(eventually([&] { return version_state("digits", "3") == "failed"; }));
  EXPECT_EQ(post("/api/v1/models/digits/predict", digit).body["version"], "2");
  EXPECT_EQ(get("/ready").status, 200);
}

TEST_F(lifecycle_e2e, the_poll_unloads_removed_versions_and_rereads_config) {
  testing::copy_model("digits", repository.path(), {"1", "2"});
  start(1);
  fs::remove_all(repository.path() / "digits" / "2");
  EXPECT_TRUE(eventually([&] { return version_state("digits", "2") == "unloaded"; }))
      << version_state("digits", "2");
  EXPECT_EQ(post("/api/v1/models/digits/predict", digit).body["version"], "1");

  set_digits_top_k(3);
  EXPECT_TRUE(eventually([&] { return digits_top_k() == 3u; }));

  // A new model folder appears, then goes.
  testing::copy_model("affine", repository.path());
  EXPECT_TRUE(eventually([&] { return predict_affine().status == 200; }));
  fs::remove_all(repository.path() / "affine");
  EXPECT_TRUE(eventually([&] { return predict_affine().status == 404; }));
  EXPECT_EQ(get("/ready").status, 200);
}

/// A node of a loopback cluster with quick catalog sync and heartbeats.
std::unique_ptr<testing::server_process> cluster_node(const fs::path& repository,
                                                      const std::string& name,
                                                      std::vector<std::string> more) {
  std::vector<std::string> args{"--model-repository",
                                repository.string(),
                                "--node-name",
                                name,
                                "--cluster-sync-ms",
                                "200",
                                "--cluster-heartbeat-ms",
                                "200",
                                "--log-level",
                                "warn",
                                "--anonymous-rate-per-s",
                                "0"};
  args.insert(args.end(), more.begin(), more.end());
  return std::make_unique<testing::server_process>(args);
}

int predict_status(const testing::server_process& node, const std::string& model,
                   const std::string& body) {
  auto client = node.client();
  return testing::post_json(client, "/api/v1/models/" + model + "/predict", body).status;
}

TEST(lifecycle_cluster_e2e, an_unload_sent_to_a_gateway_reaches_every_host) {
  testing::temp_dir repo_a, repo_b, repo_c;
  testing::copy_model("affine", repo_a.path());
  testing::copy_model("affine", repo_b.path());
  testing::copy_model("digits", repo_b.path(), {"1"});
  int port_a = testing::free_port(), port_b = testing::free_port();
  auto a = cluster_node(repo_a.path(), "A", {"--cluster-port", std::to_string(port_a)});
  auto b = cluster_node(repo_b.path(), "B", {"--cluster-port", std::to_string(port_b)});
  auto c = cluster_node(repo_c.path(), "C",
                        {"--join", "127.0.0.1:" + std::to_string(port_a) +
                                       ",127.0.0.1:" + std::to_string(port_b)});
  auto available_on = [&](const testing::server_process& node, const std::string& model) {
    auto client = node.client();
    auto answer = testing::get_json(client, "/api/v1/models/" + model);
    size_t count = 0;
    if (answer.status == 200)
      for (const auto& version : answer.body["versions"])
        count += version["state"] == "available" ? 1 : 0;
    return count;
  };
  auto wait_for = [](auto done) {
    auto until = std::chrono::steady_clock::now() + 30s;
    while (!done() && std::chrono::steady_clock::now() < until)
      std::this_thread::sleep_for(100ms);
    return done();
  };
  const std::string affine = R"({"instances": [{"data": [[1, 2], [3, 4]]}]})";
  ASSERT_TRUE(wait_for([&] { return available_on(*c, "affine") == 2; }));

  auto client = c->client();
  auto unloaded = testing::post_json(client, "/api/v1/models/affine/unload", "{}");
  ASSERT_EQ(unloaded.status, 200) << unloaded.body.dump();
  EXPECT_EQ(predict_status(*c, "affine", affine), 404);
  EXPECT_TRUE(wait_for([&] {
    return predict_status(*a, "affine", affine) == 404 &&
           predict_status(*b, "affine", affine) == 404;
  }));
  std::this_thread::sleep_for(1s); // a few catalog syncs: it stays gone
  EXPECT_EQ(predict_status(*c, "affine", affine), 404);
  EXPECT_EQ(predict_status(*c, "digits", testing::first_digit_body()), 200);

  // Loaded again on B (whose repository has it), C serves it again.
  auto client_b = b->client();
  EXPECT_EQ(testing::post_json(client_b, "/api/v1/models/affine/load", "{}").status, 200);
  EXPECT_TRUE(wait_for([&] { return predict_status(*c, "affine", affine) == 200; }));
}

} // namespace
} // namespace actorserve
