// End-to-end: async jobs, queue limits and deadlines through the real binary.

#include <gtest/gtest.h>

#include <csignal>
#include <fstream>
#include <set>
#include <thread>

#include "tests/test_support.hpp"

namespace actorserve {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

std::string image_body(const std::string& png, const json& parameters = json::object()) {
  return json{{"instances", {{{"image", png}}}}, {"parameters", parameters}}.dump();
}

/// A copy of the digits model whose batcher waits `delay_us` for a batch to
/// fill and queues at most `queue` requests: slow on purpose.
void copy_slow_digits(const std::filesystem::path& repository, int64_t delay_us,
                      int queue) {
  testing::copy_model("digits", repository, {"1"});
  auto file = repository / "digits" / "config.json";
  auto config = json::parse(testing::read_file(file));
  config["batching"] = {{"max_batch_size", 64},
                        {"max_queue_delay_us", delay_us},
                        {"max_queue_size", queue}};
  testing::write_file(file, config.dump());
}

json wait_for_job(httplib::Client& client, const std::string& id) {
  for (int attempt = 0; attempt < 600; ++attempt) {
    auto answer = testing::get_json(client, "/api/v1/jobs/" + id);
    if (answer.status != 202)
      return answer.body;
    std::this_thread::sleep_for(20ms);
  }
  return json{{"status", "timed out waiting"}};
}

TEST(jobs_e2e, two_hundred_jobs_at_once_all_succeed_and_equal_the_sync_answers) {
  testing::temp_dir repository;
  testing::copy_model("digits", repository.path(), {"1"});
  testing::server_process server{
      {"--model-repository", repository.path().string(), "--log-level", "warn"}};
  auto pngs = testing::holdout_pngs(200);
  auto client = server.client();
  std::vector<json> sync(pngs.size());
  for (size_t i = 0; i < pngs.size(); ++i)
    sync[i] =
        testing::post_json(client, "/api/v1/models/digits/predict", image_body(pngs[i]))
            .body;

  std::vector<std::string> ids(pngs.size());
  std::vector<std::thread> submitters;
  for (size_t t = 0; t < 8; ++t)
    submitters.emplace_back([&, t] {
      auto own = server.client();
      for (size_t i = t; i < pngs.size(); i += 8) {
        auto answer =
            testing::post_json(own, "/api/v1/models/digits/jobs", image_body(pngs[i]));
        EXPECT_EQ(answer.status, 202) << answer.body.dump();
        EXPECT_EQ(answer.body["location"],
                  "/api/v1/jobs/" + answer.body["job_id"].get<std::string>());
        ids[i] = answer.body.value("job_id", "");
      }
    });
  for (auto& thread : submitters)
    thread.join();
  std::set<std::string> unique(ids.begin(), ids.end());
  EXPECT_EQ(unique.size(), ids.size());
  for (const auto& id : ids)
    EXPECT_EQ(id.size(), 32u) << "128 random bits in hex";
  for (size_t i = 0; i < ids.size(); ++i) {
    auto job = wait_for_job(client, ids[i]);
    ASSERT_EQ(job["status"], "succeeded") << job.dump();
    testing::expect_same_answer(job["result"], sync[i]);
  }
  // Forgetting a finished job: 204, then 404.
  auto forgotten = client.Delete(("/api/v1/jobs/" + ids[0]).c_str());
  ASSERT_TRUE(forgotten);
  EXPECT_EQ(forgotten->status, 204);
  auto gone = testing::get_json(client, "/api/v1/jobs/" + ids[0]);
  EXPECT_EQ(gone.status, 404);
  EXPECT_EQ(gone.body["error"]["code"], "job_not_found");
  EXPECT_EQ(
      testing::get_json(client, "/api/v1/jobs/0123456789abcdef0123456789abcdef").status,
      404);
}

TEST(jobs_e2e, jobs_validate_like_predict_and_expire_after_their_ttl) {
  testing::temp_dir repository;
  testing::copy_model("digits", repository.path(), {"1"});
  testing::server_process server{{"--model-repository", repository.path().string(),
                                  "--log-level", "warn", "--job-ttl-s", "1"}};
  auto client = server.client();
  auto bad =
      testing::post_json(client, "/api/v1/models/digits/jobs", R"({"instances": []})");
  EXPECT_EQ(bad.status, 400);
  EXPECT_EQ(bad.body["error"]["field"], "instances");
  EXPECT_EQ(
      testing::post_json(client, "/api/v1/models/nothing/jobs", image_body("x")).status,
      404);

  auto png = testing::holdout_pngs(1).front();
  auto submitted =
      testing::post_json(client, "/api/v1/models/digits/jobs", image_body(png));
  ASSERT_EQ(submitted.status, 202);
  auto id = submitted.body["job_id"].get<std::string>();
  EXPECT_EQ(wait_for_job(client, id)["status"], "succeeded");
  std::this_thread::sleep_for(1200ms);
  EXPECT_EQ(testing::get_json(client, "/api/v1/jobs/" + id).status, 404);
}

TEST(jobs_e2e, a_cancelled_queued_job_never_runs) {
  // One job in flight at a time, and it waits 1.5 s in the batcher: the
  // second job stays queued in the store, where DELETE removes it.
  testing::temp_dir repository;
  copy_slow_digits(repository.path(), 1'500'000, 64);
  testing::server_process server{{"--model-repository", repository.path().string(),
                                  "--log-level", "warn", "--max-running-jobs", "1"}};
  auto client = server.client();
  auto png = testing::holdout_pngs(1).front();
  auto first = testing::post_json(client, "/api/v1/models/digits/jobs", image_body(png));
  auto second = testing::post_json(client, "/api/v1/models/digits/jobs", image_body(png));
  ASSERT_EQ(first.status, 202);
  ASSERT_EQ(second.status, 202);
  auto second_id = second.body["job_id"].get<std::string>();
  auto queued = testing::get_json(client, "/api/v1/jobs/" + second_id);
  EXPECT_EQ(queued.status, 202);
  EXPECT_EQ(queued.body["status"], "queued");
  auto first_state = testing::get_json(
      client, "/api/v1/jobs/" + first.body["job_id"].get<std::string>());
  EXPECT_EQ(first_state.body["status"], "running");
  auto cancelled = client.Delete(("/api/v1/jobs/" + second_id).c_str());
  ASSERT_TRUE(cancelled);
  EXPECT_EQ(cancelled->status, 204);
  EXPECT_EQ(wait_for_job(client, first.body["job_id"])["status"], "succeeded");
  EXPECT_EQ(testing::get_json(client, "/api/v1/jobs/" + second_id).status, 404);
}

TEST(jobs_e2e, jobs_queued_or_running_at_sigterm_finish_before_the_exit) {
  // One job at a time, each waiting 300 ms in the batcher: 6 jobs take about
  // 2 s, and SIGTERM comes right after they were submitted.
  testing::temp_dir repository;
  copy_slow_digits(repository.path(), 300'000, 64);
  testing::server_process server{
      {"--model-repository", repository.path().string(), "--max-running-jobs", "1"}};
  auto client = server.client();
  auto png = testing::holdout_pngs(1).front();
  std::vector<std::string> ids;
  for (int i = 0; i < 6; ++i) {
    auto submitted =
        testing::post_json(client, "/api/v1/models/digits/jobs", image_body(png));
    ASSERT_EQ(submitted.status, 202);
    ids.push_back(submitted.body["job_id"]);
  }
  ::kill(server.pid(), SIGTERM);
  std::this_thread::sleep_for(100ms);
  auto refused =
      testing::post_json(client, "/api/v1/models/digits/jobs", image_body(png));
  EXPECT_EQ(refused.status, 503) << refused.body.dump();
  // Results stay readable while the jobs drain. The last one may finish just
  // as the listener closes; the drain log line counts it.
  for (size_t i = 0; i + 1 < ids.size(); ++i)
    EXPECT_EQ(wait_for_job(client, ids[i])["status"], "succeeded") << ids[i];
  EXPECT_EQ(server.wait_for_exit(std::chrono::seconds{30}), 0);
  EXPECT_NE(
      server.stderr_text().find(R"("event":"jobs_drained","finished_during_drain":6)"),
      std::string::npos)
      << server.stderr_text();
}

TEST(jobs_e2e, a_full_queue_answers_503_and_deadlines_answer_504) {
  // The batcher holds at most 2 waiting requests for 1 s: a third is refused
  // at once, and a request whose timeout_ms is shorter than the wait gets 504.
  testing::temp_dir repository;
  copy_slow_digits(repository.path(), 1'000'000, 2);
  testing::server_process server{
      {"--model-repository", repository.path().string(), "--log-level", "warn"}};
  auto png = testing::holdout_pngs(1).front();
  std::vector<std::thread> waiting;
  std::vector<int> statuses(2);
  for (int i = 0; i < 2; ++i)
    waiting.emplace_back([&, i] {
      auto own = server.client();
      statuses[i] =
          testing::post_json(own, "/api/v1/models/digits/predict", image_body(png))
              .status;
    });
  std::this_thread::sleep_for(300ms);
  auto client = server.client();
  auto started = std::chrono::steady_clock::now();
  auto refused =
      testing::post_json(client, "/api/v1/models/digits/predict", image_body(png));
  EXPECT_LT(std::chrono::steady_clock::now() - started, 300ms) << "refused at once";
  EXPECT_EQ(refused.status, 503);
  EXPECT_EQ(refused.body["error"]["code"], "overloaded");
  EXPECT_EQ(refused.headers.count("Retry-After"), 1u);
  for (auto& thread : waiting)
    thread.join();
  EXPECT_EQ(statuses, (std::vector<int>{200, 200}));

  auto late = testing::post_json(client, "/api/v1/models/digits/predict",
                                 image_body(png, {{"timeout_ms", 100}}));
  EXPECT_EQ(late.status, 504);
  EXPECT_EQ(late.body["error"]["code"], "deadline_exceeded");
}

} // namespace
} // namespace actorserve
