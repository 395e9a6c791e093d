// The token buckets of http/rate_limiter, driven by a fake clock.

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "http/rate_limiter.hpp"

namespace actorserve {
namespace {

using namespace std::chrono_literals;

/// A clock that moves only when told to.
struct fake_clock {
  rate_limiter::clock::time_point now{};
  rate_limiter::now_function function() {
    return [this] { return now; };
  }
};

rate_limiter_options options_with(rate_limit predict, rate_limit admin,
                                  rate_limit anonymous, size_t max_clients = 1000) {
  rate_limiter_options options;
  options.predict = predict;
  options.admin = admin;
  options.anonymous = anonymous;
  options.max_clients = max_clients;
  return options;
}

/// How many of `attempts` acquires pass right now.
int admitted(rate_limiter& limiter, const std::string& client, role caller,
             int attempts) {
  int passed = 0;
  for (int i = 0; i < attempts; ++i)
    passed += limiter.acquire(client, caller) ? 0 : 1;
  return passed;
}

TEST(rate_limiter, a_client_gets_its_burst_then_waits_for_tokens) {
  fake_clock time;
  rate_limiter limiter{options_with({2, 5}, {}, {}), time.function()};
  EXPECT_EQ(admitted(limiter, "key:a", role::predict, 10), 5);
  time.now += 1s; // two tokens back
  EXPECT_EQ(admitted(limiter, "key:a", role::predict, 10), 2);
  time.now += 100s; // never more than the burst
  EXPECT_EQ(admitted(limiter, "key:a", role::predict, 10), 5);
}

TEST(rate_limiter, retry_after_is_whole_seconds_rounded_up) {
  fake_clock time;
  rate_limiter limiter{options_with({10, 1}, {0.25, 1}, {}), time.function()};
  ASSERT_FALSE(limiter.acquire("fast", role::predict));
  EXPECT_EQ(limiter.acquire("fast", role::predict), 1s); // 0.1 s, rounded up
  ASSERT_FALSE(limiter.acquire("slow", role::admin));
  EXPECT_EQ(limiter.acquire("slow", role::admin), 4s);
  time.now += 1500ms;
  EXPECT_EQ(limiter.acquire("slow", role::admin), 3s); // 2.5 s left
}

TEST(rate_limiter, clients_and_roles_have_their_own_buckets) {
  fake_clock time;
  rate_limiter limiter{options_with({1, 3}, {1, 2}, {1, 1}), time.function()};
  EXPECT_EQ(admitted(limiter, "key:a", role::predict, 10), 3);
  EXPECT_EQ(admitted(limiter, "key:b", role::predict, 10), 3);
  EXPECT_EQ(admitted(limiter, "key:c", role::admin, 10), 2);
  EXPECT_EQ(admitted(limiter, "ip:10.0.0.1", role::none, 10), 1);
  EXPECT_EQ(admitted(limiter, "ip:10.0.0.2", role::none, 10), 1);
}

TEST(rate_limiter, a_zero_rate_turns_the_limit_off) {
  fake_clock time;
  rate_limiter limiter{options_with({0, 0}, {1, 1}, {1, 1}), time.function()};
  EXPECT_EQ(admitted(limiter, "key:a", role::predict, 10000), 10000);
  EXPECT_EQ(limiter.tracked_clients(), 0u);
}

TEST(rate_limiter, refilled_buckets_expire) {
  fake_clock time;
  auto options = options_with({1, 10}, {}, {1, 2});
  options.sweep_interval = 5s;
  rate_limiter limiter{options, time.function()};
  for (int i = 0; i < 100; ++i)
    limiter.acquire("ip:" + std::to_string(i), role::none);
  limiter.acquire("key:busy", role::predict);          // needs 1 s to refill
  admitted(limiter, "key:drained", role::predict, 10); // needs 10 s
  EXPECT_EQ(limiter.tracked_clients(), 102u);
  time.now += 6s; // the next call sweeps
  limiter.acquire("ip:new", role::none);
  EXPECT_EQ(limiter.tracked_clients(), 2u); // "key:drained" and "ip:new" remain
  time.now += 20s;
  limiter.acquire("ip:new", role::none);
  EXPECT_EQ(limiter.tracked_clients(), 1u);
}

TEST(rate_limiter, a_full_table_puts_new_clients_in_one_shared_bucket) {
  fake_clock time;
  rate_limiter limiter{options_with({}, {}, {1, 3}, 2), time.function()};
  EXPECT_EQ(admitted(limiter, "ip:a", role::none, 3), 3);
  EXPECT_EQ(admitted(limiter, "ip:b", role::none, 3), 3);
  // The table is full of draining buckets: newcomers share one bucket.
  EXPECT_EQ(admitted(limiter, "ip:c", role::none, 2), 2);
  EXPECT_EQ(admitted(limiter, "ip:d", role::none, 2), 1);
  EXPECT_TRUE(limiter.acquire("ip:e", role::none));
  EXPECT_EQ(limiter.tracked_clients(), 2u);
  // Tracked clients keep their own buckets.
  time.now += 1s;
  EXPECT_EQ(admitted(limiter, "ip:a", role::none, 3), 1);
  // Once the tracked buckets refill, a sweep makes room again.
  time.now += 10s;
  EXPECT_EQ(admitted(limiter, "ip:f", role::none, 5), 3);
  EXPECT_EQ(limiter.tracked_clients(), 1u);
}

TEST(rate_limiter, concurrent_callers_never_take_more_than_the_burst) {
  fake_clock time; // frozen: no refill while the threads run
  rate_limiter limiter{options_with({1, 1000}, {}, {}), time.function()};
  std::atomic<int> passed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t)
    threads.emplace_back(
        [&] { passed += admitted(limiter, "key:shared", role::predict, 500); });
  for (auto& thread : threads)
    thread.join();
  EXPECT_EQ(passed.load(), 1000);
}

} // namespace
} // namespace actorserve
