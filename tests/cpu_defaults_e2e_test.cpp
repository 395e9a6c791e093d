// The real binary sizes each version's instances and threads from the CPUs
// the process may use when config.json says nothing, shows them in
// /api/v1/models, and lets config.json and the flags override the rule.

#include <filesystem>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "config/compute_plan.hpp"
#include "config/cpu_budget.hpp"
#include "test_support.hpp"

namespace actorserve {
namespace {

using nlohmann::json;

/// The model's versions as /api/v1/models/{model} lists them; every one must
/// be available.
json versions_of(const testing::server_process& server, const std::string& model) {
  auto client = server.client();
  auto status = testing::get_json(client, "/api/v1/models/" + model);
  EXPECT_EQ(status.status, 200) << status.body.dump();
  for (const auto& version : status.body["versions"])
    EXPECT_EQ(version["state"], "available") << status.body.dump();
  return status.body["versions"];
}

/// Rewrites `file`'s JSON with `changes` merged in.
void merge_into(const std::filesystem::path& file, const json& changes) {
  auto config = json::parse(testing::read_file(file));
  config.merge_patch(changes);
  testing::write_file(file, config.dump(2));
}

/// The server's `cpu_budget` log line.
json logged_budget(const testing::server_process& server) {
  std::istringstream lines(server.stderr_text());
  std::string line;
  while (std::getline(lines, line)) {
    auto event = json::parse(line, nullptr, false);
    if (event.is_object() && event.value("event", "") == "cpu_budget")
      return event;
  }
  return nullptr;
}

TEST(cpu_defaults_e2e, an_untuned_version_uses_the_budget_by_the_rule) {
  testing::temp_dir repository;
  testing::copy_model("digits", repository.path());
  testing::copy_model("affine", repository.path());
  auto digits_config = repository.path() / "digits" / "config.json";
  ASSERT_FALSE(json::parse(testing::read_file(digits_config)).contains("instances"));
  testing::server_process server{{"--model-repository", repository.path().string()}};

  // The child runs with this test's affinity and cgroup.
  auto budget = find_cpu_budget();
  auto logged = logged_budget(server);
  ASSERT_TRUE(logged.is_object()) << server.stderr_text();
  EXPECT_EQ(logged["cpus"], budget.cpus);

  for (std::string model : {"digits", "affine"}) {
    auto versions = versions_of(server, model);
    ASSERT_FALSE(versions.empty());
    for (const auto& version : versions) {
      auto file =
          repository.path() / model / version["version"].get<std::string>() / "model.pt";
      auto expected =
          plan_compute({budget.cpus, 0, 0}, 0, 0, std::filesystem::file_size(file));
      int instances = version["instances"];
      int threads = version["threads"];
      EXPECT_EQ(instances, expected.instances) << model << " " << version.dump();
      EXPECT_EQ(threads, expected.threads) << model << " " << version.dump();
      EXPECT_GE(instances, 1);
      EXPECT_GE(threads, 1);
      EXPECT_LE(instances * threads, budget.cpus) << model << " " << version.dump();
    }
  }
  // The bundled models are small: one single-threaded instance per CPU.
  EXPECT_EQ(versions_of(server, "digits")[0]["instances"], budget.cpus);
  EXPECT_EQ(versions_of(server, "digits")[0]["threads"], 1);

  auto client = server.client();
  auto answer = testing::post_json(client, "/api/v1/models/digits/predict",
                                   testing::first_digit_body());
  EXPECT_EQ(answer.status, 200) << answer.body.dump();
  // The listing holds the same fields as the model's own status.
  auto listing = testing::get_json(client, "/api/v1/models");
  ASSERT_EQ(listing.status, 200);
  for (const auto& model : listing.body["models"])
    for (const auto& version : model["versions"]) {
      EXPECT_TRUE(version.contains("instances")) << version.dump();
      EXPECT_TRUE(version.contains("threads")) << version.dump();
    }
}

TEST(cpu_defaults_e2e, config_json_beats_the_flags_which_beat_the_rule) {
  testing::temp_dir repository;
  testing::copy_model("digits", repository.path(), {"1"});
  testing::copy_model("affine", repository.path());
  // digits says both; affine says only its threads; both flags are set.
  merge_into(repository.path() / "digits" / "config.json",
             {{"instances", 3}, {"threads", 2}});
  merge_into(repository.path() / "affine" / "config.json", {{"threads", 2}});
  testing::server_process server{{"--model-repository", repository.path().string(),
                                  "--instances", "2", "--torch-threads", "1"}};

  auto digits = versions_of(server, "digits");
  ASSERT_EQ(digits.size(), 1u);
  EXPECT_EQ(digits[0]["instances"], 3);
  EXPECT_EQ(digits[0]["threads"], 2);
  auto affine = versions_of(server, "affine");
  ASSERT_EQ(affine.size(), 1u);
  EXPECT_EQ(affine[0]["instances"], 2); // --instances
  EXPECT_EQ(affine[0]["threads"], 2);   // config.json over --torch-threads

  auto client = server.client();
  EXPECT_EQ(testing::post_json(client, "/api/v1/models/digits/predict",
                               testing::first_digit_body())
                .status,
            200);
  EXPECT_EQ(testing::post_json(client, "/api/v1/models/affine/predict",
                               R"({"instances": [{"data": [[1, 2], [3, 4]]}]})")
                .status,
            200);
}

TEST(cpu_defaults_e2e, an_explicit_thread_count_fills_the_budget_with_instances) {
  testing::temp_dir repository;
  testing::copy_model("affine", repository.path());
  testing::server_process server{
      {"--model-repository", repository.path().string(), "--torch-threads", "1"}};
  auto budget = find_cpu_budget();
  auto affine = versions_of(server, "affine");
  ASSERT_EQ(affine.size(), 1u);
  EXPECT_EQ(affine[0]["threads"], 1);
  EXPECT_EQ(affine[0]["instances"], budget.cpus);
}

} // namespace
} // namespace actorserve
