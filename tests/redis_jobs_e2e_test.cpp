// End-to-end: async jobs on Redis (--job-store redis), with real actorserve
// processes sharing one real redis-server. Jobs outlive the node that took
// them (SIGKILL, graceful restart), are read and cancelled through any node,
// the bounds hold across nodes, and Redis going away answers 503 on the job
// routes while sync predictions go on.

#include <gtest/gtest.h>

#include <csignal>
#include <fstream>
#include <memory>
#include <regex>
#include <set>
#include <thread>

#include "tests/redis_server.hpp"
#include "tests/test_support.hpp"

namespace actorserve {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

std::string digit_body(const std::string& png) {
  return json{{"instances", {{{"image", png}}}}}.dump();
}

/// A job for `slow` (y = x, ~50 ms a row): `rows` rows starting at `tag`, so
/// each job's answer is its own. A long deadline: the job may wait for a
/// lease to lapse.
std::string slow_body(int tag, int rows) {
  json instances = json::array();
  for (int row = 0; row < rows; ++row)
    instances.push_back({{"data", {tag, row, 0, 0}}});
  return json{{"instances", instances}, {"parameters", {{"timeout_ms", 60000}}}}.dump();
}

void expect_slow_answer(const json& job, int tag, int rows) {
  ASSERT_EQ(job["status"], "succeeded") << job.dump();
  const auto& predictions = job["result"]["predictions"];
  ASSERT_EQ(predictions.size(), static_cast<size_t>(rows));
  for (int row = 0; row < rows; ++row)
    EXPECT_EQ(predictions[row]["output"], json({tag, row, 0, 0})) << job.dump();
}

json wait_for_job(httplib::Client& client, const std::string& id,
                  std::chrono::seconds patience = 30s) {
  auto until = std::chrono::steady_clock::now() + patience;
  while (std::chrono::steady_clock::now() < until) {
    auto answer = testing::get_json(client, "/api/v1/jobs/" + id);
    if (answer.status != 202)
      return answer.body;
    std::this_thread::sleep_for(25ms);
  }
  return json{{"status", "timed out waiting"}};
}

std::string submit(httplib::Client& client, const std::string& model,
                   const std::string& body) {
  auto answer = testing::post_json(client, "/api/v1/models/" + model + "/jobs", body);
  EXPECT_EQ(answer.status, 202) << answer.body.dump();
  return answer.body.value("job_id", "");
}

/// One Redis and a repository holding digits (v1) and slow; nodes started on
/// demand, all with --job-store redis and a 2 s lease.
struct redis_jobs_e2e : ::testing::Test {
  testing::redis_server redis{"s3cret-pass"};
  testing::temp_dir repository;

  redis_jobs_e2e() {
    testing::copy_model("digits", repository.path(), {"1"});
    fs::copy(testing::test_repository() / "slow", repository.path() / "slow",
             fs::copy_options::recursive);
  }

  std::unique_ptr<testing::server_process>
  start_node(std::vector<std::string> extra = {}) {
    std::vector<std::string> args{"--model-repository", repository.path().string(),
                                  "--job-store",        "redis",
                                  "--redis-url",        redis.url(),
                                  "--job-lease-s",      "2"};
    args.insert(args.end(), extra.begin(), extra.end());
    return std::make_unique<testing::server_process>(args);
  }
};

TEST_F(redis_jobs_e2e, jobs_held_by_a_killed_node_finish_on_another) {
  auto a = start_node({"--max-running-jobs", "2", "--log-level", "warn"});
  auto client_a = a->client();
  constexpr int jobs = 8, rows = 6; // ~300 ms each, two at a time: ~1.2 s in all
  std::vector<std::string> ids;
  for (int tag = 0; tag < jobs; ++tag)
    ids.push_back(submit(client_a, "slow", slow_body(tag, rows)));
  std::set<std::string> states;
  for (const auto& id : ids)
    states.insert(testing::get_json(client_a, "/api/v1/jobs/" + id).body["status"]);
  EXPECT_EQ(states.count("running"), 1u) << "a holds running jobs when it dies";
  EXPECT_EQ(states.count("queued"), 1u) << "and queued ones";
  ::kill(a->pid(), SIGKILL);
  a->wait_for_exit(10s);

  auto b = start_node({"--log-level", "warn"});
  auto client_b = b->client();
  for (int tag = 0; tag < jobs; ++tag)
    expect_slow_answer(wait_for_job(client_b, ids[tag]), tag, rows);
  EXPECT_EQ(redis.cli("ZCARD actorserve:leases"), "0\n") << "no lease left behind";
  // b put back what a was running when it died.
  auto metrics = client_b.Get("/metrics");
  ASSERT_TRUE(metrics);
  std::smatch requeued;
  ASSERT_TRUE(std::regex_search(
      metrics->body, requeued,
      std::regex{R"(actorserve_jobs_total\{result="requeued"\} (\d+))"}))
      << metrics->body;
  EXPECT_GE(std::stoi(requeued[1]), 1);
}

TEST_F(redis_jobs_e2e,
       jobs_are_read_after_a_graceful_restart_and_equal_the_sync_answers) {
  auto a = start_node({"--max-running-jobs", "1"});
  auto client = a->client();
  auto pngs = testing::holdout_pngs(12);
  std::vector<json> sync;
  std::vector<std::string> digit_jobs;
  for (const auto& png : pngs) {
    sync.push_back(
        testing::post_json(client, "/api/v1/models/digits/predict", digit_body(png))
            .body);
    digit_jobs.push_back(submit(client, "digits", digit_body(png)));
  }
  for (const auto& id : digit_jobs)
    ASSERT_EQ(wait_for_job(client, id)["status"], "succeeded");
  // Slow jobs still queued at SIGTERM stay in Redis for the next start.
  std::vector<std::string> slow_jobs;
  for (int tag = 0; tag < 4; ++tag)
    slow_jobs.push_back(submit(client, "slow", slow_body(tag, 6)));
  EXPECT_EQ(a->terminate(), 0);
  auto log = a->stderr_text();
  EXPECT_NE(log.find(R"("redis":"redis://:***@127.0.0.1:)"), std::string::npos) << log;
  EXPECT_EQ(log.find("s3cret-pass"), std::string::npos) << "the password never shows";
  EXPECT_EQ(redis.cli("ZCARD actorserve:leases"), "0\n") << "its jobs finished at drain";
  EXPECT_NE(redis.cli("LLEN actorserve:queue:slow"), "0\n") << "queued jobs stayed";

  auto again = start_node({"--log-level", "warn"});
  auto client_again = again->client();
  for (size_t i = 0; i < digit_jobs.size(); ++i) {
    auto job = testing::get_json(client_again, "/api/v1/jobs/" + digit_jobs[i]);
    ASSERT_EQ(job.status, 200) << job.body.dump();
    testing::expect_same_answer(job.body["result"], sync[i]);
  }
  for (int tag = 0; tag < 4; ++tag)
    expect_slow_answer(wait_for_job(client_again, slow_jobs[tag]), tag, 6);
}

TEST_F(redis_jobs_e2e, any_node_reads_and_cancels_and_the_bounds_hold_across_nodes) {
  // Only a hosts slow and runs one job at a time; b hosts digits only.
  testing::temp_dir digits_only;
  testing::copy_model("digits", digits_only.path(), {"1"});
  auto a =
      start_node({"--max-running-jobs", "1", "--max-jobs", "4", "--log-level", "warn"});
  auto b = std::make_unique<testing::server_process>(std::vector<std::string>{
      "--model-repository", digits_only.path().string(), "--job-store", "redis",
      "--redis-url", redis.url(), "--max-jobs", "4", "--log-level", "warn"});
  auto client_a = a->client();
  auto client_b = b->client();
  std::vector<std::string> ids;
  for (int tag = 0; tag < 4; ++tag)
    ids.push_back(submit(client_a, "slow", slow_body(tag, 6)));
  std::set<std::string> unique(ids.begin(), ids.end());
  EXPECT_EQ(unique.size(), ids.size());
  for (const auto& id : ids)
    EXPECT_TRUE(std::regex_match(id, std::regex{"[0-9a-f]{32}"})) << id;

  // Four jobs stored: b refuses a fifth, whatever the model.
  auto full = testing::post_json(client_b, "/api/v1/models/digits/jobs",
                                 digit_body(testing::holdout_pngs(1).front()));
  EXPECT_EQ(full.status, 503) << full.body.dump();
  EXPECT_EQ(full.body["error"]["code"], "overloaded");
  EXPECT_EQ(full.headers.count("Retry-After"), 1u);

  // The last job is still queued behind ~1 s of work: b cancels it.
  auto queued = testing::get_json(client_b, "/api/v1/jobs/" + ids[3]);
  EXPECT_EQ(queued.body["status"], "queued") << queued.body.dump();
  auto cancelled = client_b.Delete(("/api/v1/jobs/" + ids[3]).c_str());
  ASSERT_TRUE(cancelled);
  EXPECT_EQ(cancelled->status, 204);
  EXPECT_EQ(testing::get_json(client_a, "/api/v1/jobs/" + ids[3]).status, 404);
  auto again = client_a.Delete(("/api/v1/jobs/" + ids[3]).c_str());
  EXPECT_EQ(again->status, 404);
  // The room it left takes a digits job, run by either node.
  auto digit = submit(client_b, "digits", digit_body(testing::holdout_pngs(1).front()));
  EXPECT_EQ(wait_for_job(client_a, digit)["status"], "succeeded");

  for (int tag = 0; tag < 3; ++tag)
    expect_slow_answer(wait_for_job(client_b, ids[tag]), tag, 6);
  EXPECT_EQ(redis.cli("LLEN actorserve:queue:slow"), "0\n");
  EXPECT_EQ(testing::get_json(client_b, "/api/v1/jobs/" + ids[3]).status, 404)
      << "a cancelled job never ran";
}

TEST_F(redis_jobs_e2e, redis_away_answers_503_on_job_routes_while_predictions_go_on) {
  auto a = start_node({"--log-level", "warn", "--redis-timeout-ms", "300"});
  auto client = a->client();
  auto png = testing::holdout_pngs(1).front();
  auto before = submit(client, "digits", digit_body(png));
  ASSERT_EQ(wait_for_job(client, before)["status"], "succeeded");

  // Slow: every command waits past the timeout. Answers still come in time.
  redis.cli("CLIENT PAUSE 1500 ALL");
  auto started = std::chrono::steady_clock::now();
  auto paused = testing::get_json(client, "/api/v1/jobs/" + before);
  EXPECT_LT(std::chrono::steady_clock::now() - started, 5s);
  EXPECT_EQ(paused.status, 503) << paused.body.dump();
  EXPECT_EQ(paused.body["error"]["code"], "unavailable");
  EXPECT_EQ(
      testing::post_json(client, "/api/v1/models/digits/predict", digit_body(png)).status,
      200);
  std::this_thread::sleep_for(1500ms);
  auto kept = testing::get_json(client, "/api/v1/jobs/" + before);
  for (int attempt = 0; attempt < 40 && kept.status == 503; ++attempt) {
    std::this_thread::sleep_for(100ms); // the connection's backoff
    kept = testing::get_json(client, "/api/v1/jobs/" + before);
  }
  EXPECT_EQ(kept.status, 200) << "the job outlived a slow Redis";

  // Away: every job route answers 503, sync predictions 200.
  redis.stop();
  auto refused =
      testing::post_json(client, "/api/v1/models/digits/jobs", digit_body(png));
  EXPECT_EQ(refused.status, 503);
  EXPECT_EQ(refused.body["error"]["code"], "unavailable");
  EXPECT_EQ(refused.headers.count("Retry-After"), 1u);
  EXPECT_EQ(testing::get_json(client, "/api/v1/jobs/" + before).status, 503);
  EXPECT_EQ(client.Delete(("/api/v1/jobs/" + before).c_str())->status, 503);
  auto sync =
      testing::post_json(client, "/api/v1/models/digits/predict", digit_body(png));
  EXPECT_EQ(sync.status, 200) << sync.body.dump();

  // Back (empty: nothing is persisted): jobs are taken again.
  redis.start();
  auto resumed =
      testing::post_json(client, "/api/v1/models/digits/jobs", digit_body(png));
  for (int attempt = 0; attempt < 100 && resumed.status == 503; ++attempt) {
    std::this_thread::sleep_for(100ms);
    resumed = testing::post_json(client, "/api/v1/models/digits/jobs", digit_body(png));
  }
  ASSERT_EQ(resumed.status, 202) << resumed.body.dump();
  auto job = wait_for_job(client, resumed.body["job_id"]);
  ASSERT_EQ(job["status"], "succeeded") << job.dump();
  testing::expect_same_answer(job["result"], sync.body);
}

} // namespace
} // namespace actorserve
