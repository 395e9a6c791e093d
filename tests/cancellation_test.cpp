// Cancelling a request by its cancel key (its client went away), through the
// batcher, the router and the replica set as real actors. A request that must
// still be running when its cancel arrives runs on the test repository's
// `slow` model (about 50 ms of CPU per row, so a 16-row batch takes most of a
// second); one that must stay queued waits behind a long batch delay.
// batcher_stats tells which rows were ever handed to an instance.

#include <gtest/gtest.h>

#include <thread>

#include <caf/all.hpp>

#include "actors/batcher.hpp"
#include "actors/replica_set.hpp"
#include "actors/router.hpp"
#include "messages/error.hpp"
#include "messages/type_ids.hpp"
#include "tests/test_support.hpp"

namespace actorserve {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

const std::string cancelled_slow =
    "actorserve_cancelled_requests_total{model=\"slow\",reason=\"client_gone\"} ";

/// `rows` rows of shape [4], row i holding base + i in every column.
tensor rows_of(float base, int64_t rows) {
  tensor x{{rows, 4}, {}};
  for (int64_t i = 0; i < rows; ++i)
    x.values.insert(x.values.end(), 4, base + static_cast<float>(i));
  return x;
}

predict_request request_of(tensor input, uint64_t cancel_key) {
  predict_request request;
  request.input = std::move(input);
  request.timeout_ms = 60000;
  request.cancel_key = cancel_key;
  return request;
}

struct cancellation_test : ::testing::Test {
  cancellation_test() {
    auto source = testing::test_repository() / "slow" / "1" / "model.pt";
    if (!fs::exists(source))
      throw std::runtime_error("missing " + source.string() +
                               ": build the 'models' target first");
    fs::create_directories(dir.path() / "slow" / "1");
    fs::copy_file(source, model_file());
  }

  fs::path model_file() const { return dir.path() / "slow" / "1" / "model.pt"; }

  batcher_actor loaded_batcher(int32_t max_batch, int64_t delay_us) {
    batcher_settings settings;
    settings.model = "slow";
    settings.version = "1";
    settings.batching = {max_batch, delay_us, 64};
    settings.instance.model_file = model_file().string();
    settings.instance.input_row_shape = {4};
    settings.stats = stats;
    auto batcher = spawn_linked_batcher(self.ptr(), settings);
    self->request(batcher, 60s, atom::load_v)
        .receive([](int64_t) {}, [](caf::error& err) { FAIL() << caf::to_string(err); });
    return batcher;
  }

  router_actor loaded_router() {
    router_settings settings;
    settings.model = "slow";
    settings.directory = dir.path() / "slow";
    settings.config.input.type = input_kind::tensor;
    settings.config.input.shape = {4};
    settings.config.batching = {32, 0, 64};
    settings.versions = {"1"};
    settings.stats = stats;
    auto router = spawn_router(system, settings);
    for (int attempt = 0; attempt < 600; ++attempt) {
      bool serving = false;
      self->request(router, 5s, atom::status_v)
          .receive([&](model_status& s) { serving = is_serving(s); }, [](caf::error&) {});
      if (serving)
        break;
      std::this_thread::sleep_for(100ms);
    }
    return router;
  }

  /// Sends `request` and expects it back `cancelled` once `target` got the
  /// cancel for `cancel_key`.
  template <class Target>
  void expect_cancelled(const Target& target, predict_request request) {
    auto key = request.cancel_key;
    auto pending = self->request(target, 30s, atom::predict_v, std::move(request));
    self->send(target, atom::cancel_v, key);
    pending.receive([](predict_reply&) { FAIL() << "a cancelled request was answered"; },
                    [](caf::error& err) {
                      auto api = to_api_error(err);
                      EXPECT_EQ(api.code, ec::cancelled);
                      EXPECT_EQ(api.message, "the client went away");
                    });
  }

  template <class Target> void expect_served(const Target& target, tensor input) {
    self->request(target, 30s, atom::predict_v, request_of(input, 0))
        .receive([&](predict_reply& r) { EXPECT_EQ(r.output.values, input.values); },
                 [](caf::error& err) { FAIL() << caf::to_string(err); });
  }

  batcher_stats stats_of(const batcher_actor& batcher) {
    batcher_stats result;
    self->request(batcher, 30s, atom::stats_v)
        .receive([&](batcher_stats& s) { result = s; },
                 [](caf::error& err) { FAIL() << caf::to_string(err); });
    return result;
  }

  bool metrics_show(const std::string& line) {
    return stats->render().find(line) != std::string::npos;
  }

  testing::temp_dir dir;
  std::shared_ptr<metrics> stats = std::make_shared<metrics>();
  caf::actor_system system{testing::registered_actor_config()};
  caf::scoped_actor self{system};
};

TEST_F(cancellation_test, a_queued_request_cancelled_is_never_computed) {
  // Batches of 8 after 10 s: the 1-row request waits in the queue.
  auto batcher = loaded_batcher(8, 10'000'000);
  expect_cancelled(batcher, request_of(rows_of(1, 1), 41));
  EXPECT_TRUE(metrics_show(cancelled_slow + "1"));
  // 8 rows fill a batch at once, and it holds them alone: nothing of the
  // cancelled request is left in the queue.
  expect_served(batcher, rows_of(10, 8));
  auto counters = stats_of(batcher);
  EXPECT_EQ(counters.batches, 1);
  EXPECT_EQ(counters.batched_rows, 8);
  EXPECT_EQ(counters.queue_depth, 0);
}

TEST_F(cancellation_test, a_running_request_cancelled_is_answered_before_its_result) {
  // One instance, no delay: the 16-row request runs at once, for most of a
  // second, and the cancel arrives while it runs.
  auto batcher = loaded_batcher(32, 0);
  expect_cancelled(batcher, request_of(rows_of(1, 16), 42));
  // The next request waits for the instance; the late result of the
  // cancelled batch is dropped on its way, and this one gets its own rows.
  expect_served(batcher, rows_of(100, 1));
  auto counters = stats_of(batcher);
  EXPECT_EQ(counters.batches, 2);
  EXPECT_EQ(counters.batched_rows, 17);
  EXPECT_TRUE(metrics_show(cancelled_slow + "1"));
}

TEST_F(cancellation_test, a_split_request_cancelled_while_its_first_slice_runs) {
  // Batches of 4: the first 4 of 12 rows run, the other 8 wait; they leave
  // the queue uncomputed.
  auto batcher = loaded_batcher(4, 0);
  expect_cancelled(batcher, request_of(rows_of(1, 12), 43));
  // They left at once, not when the instance took its next batch.
  EXPECT_EQ(stats_of(batcher).queue_depth, 0);
  expect_served(batcher, rows_of(100, 2));
  auto counters = stats_of(batcher);
  EXPECT_EQ(counters.batches, 2);
  EXPECT_EQ(counters.batched_rows, 6);
}

TEST_F(cancellation_test, unknown_or_spent_keys_change_nothing) {
  auto batcher = loaded_batcher(8, 10'000'000);
  self->send(batcher, atom::cancel_v, uint64_t{12345}); // never seen
  // A request without a key cannot be cancelled, not even by key 0.
  auto keyless =
      self->request(batcher, 30s, atom::predict_v, request_of(rows_of(1, 1), 0));
  self->send(batcher, atom::cancel_v, uint64_t{0});
  // Its answer comes with the batch these 7 rows complete.
  auto filler =
      self->request(batcher, 30s, atom::predict_v, request_of(rows_of(2, 7), 44));
  keyless.receive(
      [](predict_reply& r) { EXPECT_EQ(r.output.values, rows_of(1, 1).values); },
      [](caf::error& err) { FAIL() << caf::to_string(err); });
  filler.receive([](predict_reply&) {},
                 [](caf::error& err) { FAIL() << caf::to_string(err); });
  self->send(batcher, atom::cancel_v, uint64_t{44}); // answered already
  expect_served(batcher, rows_of(20, 8));
  EXPECT_EQ(stats_of(batcher).batched_rows, 16);
  EXPECT_FALSE(metrics_show("actorserve_cancelled_requests_total"));
}

TEST_F(cancellation_test,
       a_draining_batcher_exits_once_its_cancelled_request_is_answered) {
  auto batcher = loaded_batcher(32, 0);
  self->monitor(batcher);
  auto running =
      self->request(batcher, 30s, atom::predict_v, request_of(rows_of(1, 16), 45));
  self->send(batcher, atom::drain_v);
  self->send(batcher, atom::cancel_v, uint64_t{45});
  running.receive(
      [](predict_reply&) { FAIL() << "a cancelled request was answered"; },
      [](caf::error& err) { EXPECT_EQ(to_api_error(err).code, ec::cancelled); });
  bool down = false;
  self->receive([&](caf::down_msg& msg) { down = msg.source == batcher.address(); },
                caf::after(30s) >> [] {});
  EXPECT_TRUE(down) << "the drained batcher must exit";
}

TEST_F(cancellation_test, a_cancel_sent_to_the_router_reaches_the_batcher) {
  auto router = loaded_router();
  expect_cancelled(router, request_of(rows_of(1, 16), 46));
  EXPECT_TRUE(metrics_show(cancelled_slow + "1"));
  expect_served(router, rows_of(7, 2));
  self->send(router, atom::cancel_v, uint64_t{999}); // unknown everywhere
  expect_served(router, rows_of(9, 1));
  self->send_exit(router, caf::exit_reason::user_shutdown);
}

TEST_F(cancellation_test, the_replica_set_answers_at_once_and_cancels_on_the_replica) {
  auto router = loaded_router();
  auto replicas = spawn_replica_set(system, {"slow"});
  self->send(replicas, atom::replicas_v,
             std::vector<replica>{{"here", router, {"1"}, true}});
  expect_cancelled(replicas, request_of(rows_of(1, 16), 47));
  // The replica's batcher withdrew it under the replica set's own key; the
  // count proves the key it forwarded matched.
  for (int attempt = 0; attempt < 100 && !metrics_show(cancelled_slow + "1"); ++attempt)
    std::this_thread::sleep_for(50ms);
  EXPECT_TRUE(metrics_show(cancelled_slow + "1"));
  expect_served(replicas, rows_of(3, 1));
  self->send_exit(replicas, caf::exit_reason::user_shutdown);
  self->send_exit(router, caf::exit_reason::user_shutdown);
}

} // namespace
} // namespace actorserve
