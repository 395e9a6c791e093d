// The Redis job queue (its scripts and key layout) against a real
// redis-server, without actors: two queue objects on two connections stand
// for two nodes sharing one Redis.

#include <thread>

#include <gtest/gtest.h>

#include "actors/job_store.hpp"
#include "actors/redis_job_queue.hpp"
#include "messages/error.hpp"
#include "tests/redis_server.hpp"

namespace actorserve {
namespace {

using namespace std::chrono_literals;

redis_settings settings_for(const testing::redis_server& server) {
  redis_settings settings;
  settings.endpoint.host = "127.0.0.1";
  settings.endpoint.port = static_cast<uint16_t>(server.port());
  settings.max_backoff = 200ms;
  return settings;
}

job_submission sample_job(const std::string& model, int64_t timeout_ms = 60'000) {
  job_submission job;
  job.spec.name = model;
  job.spec.labels = {"zero", "one"};
  job.request.version = "2";
  job.request.input = {{1, 3}, {0.5f, -1.0f, 2.0f}};
  job.request.timeout_ms = timeout_ms;
  job.output.top_k = 2;
  return job;
}

struct node {
  redis_connection redis;
  redis_job_queue queue;
  node(const testing::redis_server& server, redis_job_limits limits)
      : redis(settings_for(server)), queue(redis, limits) {}
};

struct redis_job_queue_test : ::testing::Test {
  testing::redis_server server;
  redis_job_limits limits{100, 1 << 20, 60'000ms, 60'000ms};
};

TEST_F(redis_job_queue_test, a_job_taken_on_one_node_is_read_finished_on_another) {
  node a{server, limits}, b{server, limits};
  auto id = make_job_id();
  ASSERT_EQ(a.queue.submit(id, sample_job("digits")), true);
  auto queued = b.queue.view(id);
  ASSERT_TRUE(queued) << to_string(queued.error());
  EXPECT_EQ(queued->state, job_state::queued);
  EXPECT_EQ(queued->spec.labels, (std::vector<std::string>{"zero", "one"}));
  EXPECT_EQ(queued->output.top_k, 2);

  EXPECT_TRUE(b.queue.take({"other"}, 4)->empty()) << "only the job's model";
  auto taken = b.queue.take({"other", "digits"}, 4);
  ASSERT_TRUE(taken);
  ASSERT_EQ(taken->size(), 1u);
  const auto& job = taken->front();
  EXPECT_EQ(job.id, id);
  EXPECT_EQ(job.model, "digits");
  EXPECT_EQ(job.request.version, "2");
  EXPECT_EQ(job.request.input.values, (std::vector<float>{0.5f, -1.0f, 2.0f}));
  EXPECT_GT(job.request.timeout_ms, 50'000);
  EXPECT_LE(job.request.timeout_ms, 60'000);
  EXPECT_TRUE(a.queue.take({"digits"}, 4)->empty()) << "taken once";
  EXPECT_EQ(a.queue.view(id)->state, job_state::running);
  EXPECT_TRUE(b.queue.renew({id})->empty());

  predict_reply reply{"2", {{1, 2}, {0.25f, 0.75f}}, ""};
  EXPECT_EQ(b.queue.succeed(id, reply), true);
  EXPECT_EQ(a.queue.succeed(id, reply), false) << "the first outcome stays";
  auto done = a.queue.view(id);
  ASSERT_TRUE(done);
  EXPECT_EQ(done->state, job_state::succeeded);
  EXPECT_EQ(done->reply.version, "2");
  EXPECT_EQ(done->reply.output.values, (std::vector<float>{0.25f, 0.75f}));
  EXPECT_EQ(*a.queue.count(), 1);
  // The input is released once the job finished.
  EXPECT_EQ(server.cli("HEXISTS actorserve:job:" + id + " input").find("0"), 0u);
}

TEST_F(redis_job_queue_test, failures_keep_their_code_and_cancel_leaves_the_queue) {
  node a{server, limits};
  auto failing = make_job_id();
  auto cancelled = make_job_id();
  ASSERT_EQ(a.queue.submit(failing, sample_job("digits")), true);
  ASSERT_EQ(a.queue.submit(cancelled, sample_job("digits")), true);
  auto taken = a.queue.take({"digits"}, 1);
  ASSERT_EQ(taken->size(), 1u);
  EXPECT_EQ(taken->front().id, failing) << "first in, first out";
  EXPECT_EQ(a.queue.fail(failing, make_error(ec::deadline_exceeded, "too late")), true);
  auto failed = a.queue.view(failing);
  ASSERT_TRUE(failed);
  EXPECT_EQ(failed->state, job_state::failed);
  EXPECT_EQ(to_api_error(failed->error).code, ec::deadline_exceeded);
  EXPECT_EQ(to_api_error(failed->error).message, "too late");

  // Jobs given back (their model was loading here) are the next ones taken,
  // in their order.
  auto behind = make_job_id();
  ASSERT_EQ(a.queue.submit(behind, sample_job("digits")), true);
  auto back = a.queue.take({"digits"}, 2);
  ASSERT_EQ(back->size(), 2u);
  EXPECT_EQ(*a.queue.release({(*back)[0].id, (*back)[1].id}), 2);
  EXPECT_EQ(*a.queue.release({cancelled}), 0) << "queued, not running";
  EXPECT_EQ(a.queue.view(cancelled)->state, job_state::queued);
  back = a.queue.take({"digits"}, 1);
  ASSERT_EQ(back->size(), 1u);
  EXPECT_EQ(back->front().id, cancelled);

  EXPECT_EQ(a.queue.cancel(behind), true);
  EXPECT_EQ(a.queue.cancel(behind), false);
  EXPECT_TRUE(a.queue.take({"digits"}, 4)->empty()) << "a cancelled job never runs";
  EXPECT_EQ(a.queue.cancel(cancelled), true) << "a running one is forgotten";
  EXPECT_EQ(a.queue.succeed(cancelled, {"2", {{1, 1}, {1.0f}}, ""}), false)
      << "its result is dropped";
  EXPECT_EQ(to_api_error(a.queue.view(cancelled).error()).code, ec::job_not_found);
  EXPECT_EQ(to_api_error(a.queue.view(behind).error()).code, ec::job_not_found);
  EXPECT_EQ(to_api_error(a.queue.view("../../etc").error()).code, ec::job_not_found);
  EXPECT_EQ(*a.queue.count(), 1);
}

TEST_F(redis_job_queue_test, a_lapsed_lease_puts_the_job_back_at_the_front) {
  limits.lease = 300ms;
  node a{server, limits}, b{server, limits};
  auto first = make_job_id();
  auto second = make_job_id();
  ASSERT_EQ(a.queue.submit(first, sample_job("digits")), true);
  ASSERT_EQ(a.queue.submit(second, sample_job("digits")), true);
  ASSERT_EQ(a.queue.take({"digits"}, 1)->size(), 1u); // a dies holding `first`
  EXPECT_EQ(*b.queue.reap(), 0) << "the lease still holds";
  std::this_thread::sleep_for(400ms);
  EXPECT_EQ(*b.queue.reap(), 1);
  EXPECT_EQ(b.queue.view(first)->state, job_state::queued);
  auto taken = b.queue.take({"digits"}, 4);
  ASSERT_EQ(taken->size(), 2u);
  EXPECT_EQ((*taken)[0].id, first);
  EXPECT_EQ((*taken)[1].id, second);
  // Once finished the job holds no lease: a late renewal says so.
  ASSERT_EQ(b.queue.succeed(first, {"2", {{1, 1}, {1.0f}}, ""}), true);
  EXPECT_EQ(*a.queue.renew({first, second}), (std::vector<std::string>{first}));
}

TEST_F(redis_job_queue_test, a_job_past_its_deadline_reads_failed_and_has_no_time_left) {
  node a{server, limits};
  auto id = make_job_id();
  ASSERT_EQ(a.queue.submit(id, sample_job("digits", 50)), true);
  EXPECT_EQ(a.queue.view(id)->state, job_state::queued);
  std::this_thread::sleep_for(100ms);
  auto late = a.queue.view(id);
  ASSERT_TRUE(late);
  EXPECT_EQ(late->state, job_state::failed) << "no node took it in time";
  EXPECT_EQ(to_api_error(late->error).code, ec::deadline_exceeded);
  auto taken = a.queue.take({"digits"}, 1);
  ASSERT_EQ(taken->size(), 1u);
  EXPECT_LE(taken->front().request.timeout_ms, 0)
      << "the store fails it: deadline_exceeded";
}

TEST_F(redis_job_queue_test, bounds_hold_across_nodes_and_expired_jobs_free_them) {
  limits.max_jobs = 2;
  limits.ttl = 200ms;
  node a{server, limits}, b{server, limits};
  auto done = make_job_id();
  ASSERT_EQ(a.queue.submit(done, sample_job("digits")), true);
  ASSERT_EQ(b.queue.submit(make_job_id(), sample_job("digits")), true);
  EXPECT_EQ(a.queue.submit(make_job_id(), sample_job("digits")), false);
  EXPECT_EQ(b.queue.submit(make_job_id(), sample_job("digits")), false);
  ASSERT_EQ(a.queue.take({"digits"}, 1)->size(), 1u);
  ASSERT_EQ(a.queue.succeed(done, {"2", {{1, 1}, {1.0f}}, ""}), true);
  std::this_thread::sleep_for(300ms); // the finished job's TTL runs out
  EXPECT_EQ(to_api_error(b.queue.view(done).error()).code, ec::job_not_found);
  EXPECT_EQ(b.queue.submit(make_job_id(), sample_job("digits")), true);
  EXPECT_EQ(*b.queue.count(), 2);

  // Bytes: a job bigger than the byte bound never fits.
  limits.max_bytes = 64;
  node small{server, limits};
  EXPECT_EQ(small.queue.submit(make_job_id(), sample_job("other")), false);
}

TEST_F(redis_job_queue_test, an_unreachable_redis_is_unavailable_and_recovers) {
  node a{server, limits};
  auto id = make_job_id();
  ASSERT_EQ(a.queue.submit(id, sample_job("digits")), true);
  server.stop();
  EXPECT_EQ(to_api_error(a.queue.view(id).error()).code, ec::unavailable);
  EXPECT_EQ(
      to_api_error(a.queue.submit(make_job_id(), sample_job("digits")).error()).code,
      ec::unavailable);
  server.start();
  std::this_thread::sleep_for(300ms); // past the backoff
  auto again = make_job_id();
  auto stored = a.queue.submit(again, sample_job("digits"));
  ASSERT_TRUE(stored) << to_string(stored.error());
  EXPECT_TRUE(*stored);
  EXPECT_EQ(a.queue.view(again)->state, job_state::queued);
}

} // namespace
} // namespace actorserve
