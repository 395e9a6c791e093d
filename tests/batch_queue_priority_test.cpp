// Priorities in the batch_queue: higher levels first, first in first out
// within a level, the starvation bound (max_priority_wait), deadlines and
// withdraw across levels, and a randomized check against a reference of the
// rules. Fixed instants only: no test reads the real clock.

#include "actors/batch_queue.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <random>
#include <vector>

namespace actorserve {
namespace {

using std::chrono::microseconds;
using time_point = batch_queue::time_point;
using request_id = batch_queue::request_id;

time_point at(int64_t us) {
  return time_point{} + microseconds(us);
}

const time_point no_deadline = at(1'000'000'000);

batch_queue::limits make_limits(int32_t max_batch_size, int32_t levels,
                                int64_t max_priority_wait_us = 1'000'000,
                                int64_t delay_us = 0, int32_t max_queue_size = 1024) {
  batch_queue::limits limits;
  limits.max_batch_size = max_batch_size;
  limits.max_queue_delay = microseconds(delay_us);
  limits.max_queue_size = max_queue_size;
  limits.priority_levels = levels;
  limits.max_priority_wait = microseconds(max_priority_wait_us);
  return limits;
}

/// The ids of a batch's slices, in order.
std::vector<request_id> ids_of(const batch_queue::batch& batch) {
  std::vector<request_id> ids;
  for (const auto& s : batch.slices)
    ids.push_back(s.id);
  return ids;
}

using ids = std::vector<request_id>;

TEST(BatchQueuePriority, HigherPriorityIsTakenFirstFifoWithinALevel) {
  batch_queue queue(make_limits(2, 3));
  queue.push(1, 1, at(0), no_deadline, 3);
  queue.push(2, 1, at(1), no_deadline, 2);
  queue.push(3, 1, at(2), no_deadline, 3);
  queue.push(4, 1, at(3), no_deadline, 1);
  queue.push(5, 1, at(4), no_deadline, 2);
  EXPECT_EQ(ids_of(queue.take_batch(at(10))), (ids{4, 2}));
  EXPECT_EQ(ids_of(queue.take_batch(at(10))), (ids{5, 1}));
  EXPECT_EQ(ids_of(queue.take_batch(at(10))), (ids{3}));
  EXPECT_TRUE(queue.empty());
}

TEST(BatchQueuePriority, ZeroAndOutOfRangePrioritiesAreTheLowestLevel) {
  batch_queue queue(make_limits(1, 2));
  queue.push(1, 1, at(0), no_deadline, 0);
  queue.push(2, 1, at(1), no_deadline, 7);
  queue.push(3, 1, at(2), no_deadline, -1);
  queue.push(4, 1, at(3), no_deadline, 2);
  queue.push(5, 1, at(4), no_deadline, 1);
  ids order;
  while (!queue.empty())
    order.push_back(queue.take_batch(at(10)).slices.at(0).id);
  // 5 alone is above the lowest level; the others keep their arrival order.
  EXPECT_EQ(order, (ids{5, 1, 2, 3, 4}));
}

TEST(BatchQueuePriority, OneLevelIsPlainFifo) {
  batch_queue queue(make_limits(2, 1));
  queue.push(1, 1, at(0), no_deadline, 1);
  queue.push(2, 1, at(1), no_deadline, 0);
  queue.push(3, 1, at(2), no_deadline, 5);
  EXPECT_EQ(ids_of(queue.take_batch(at(10))), (ids{1, 2}));
  EXPECT_EQ(ids_of(queue.take_batch(at(10))), (ids{3}));
}

TEST(BatchQueuePriority, AHighRequestJoinsTheNextBatchAheadOfALowFlood) {
  batch_queue queue(make_limits(4, 3));
  for (request_id id = 1; id <= 20; ++id)
    queue.push(id, 1, at(static_cast<int64_t>(id)), no_deadline, 0);
  EXPECT_EQ(ids_of(queue.take_batch(at(30))), (ids{1, 2, 3, 4}));
  queue.push(100, 1, at(31), no_deadline, 1);
  EXPECT_EQ(ids_of(queue.take_batch(at(32))), (ids{100, 5, 6, 7}));
}

TEST(BatchQueuePriority, TheRestOfASplitLowRequestWaitsBehindHigherOnes) {
  batch_queue queue(make_limits(4, 2));
  queue.push(1, 10, at(0), no_deadline, 2);
  EXPECT_EQ(queue.take_batch(at(1)).rows, 4);
  queue.push(2, 3, at(2), no_deadline, 1);
  auto batch = queue.take_batch(at(3));
  ASSERT_EQ(batch.slices.size(), 2u);
  EXPECT_EQ(batch.slices[0].id, 2u);
  EXPECT_EQ(batch.slices[0].rows, 3);
  EXPECT_EQ(batch.slices[1].id, 1u);
  EXPECT_EQ(batch.slices[1].first_row, 4);
  EXPECT_EQ(batch.slices[1].rows, 1);
}

TEST(BatchQueuePriority, ARequestThatWaitedTheBoundGoesBeforeHigherOnes) {
  batch_queue queue(make_limits(1, 3, 1000));
  queue.push(1, 1, at(0), no_deadline, 3);
  queue.push(2, 1, at(500), no_deadline, 1);
  queue.push(3, 1, at(600), no_deadline, 1);
  // At 999 µs the low request has not waited the bound: priority decides.
  EXPECT_EQ(ids_of(queue.take_batch(at(999))), (ids{2}));
  // At 1000 µs it has, and goes ahead of the waiting high one.
  EXPECT_EQ(ids_of(queue.take_batch(at(1000))), (ids{1}));
  EXPECT_EQ(ids_of(queue.take_batch(at(1000))), (ids{3}));
}

TEST(BatchQueuePriority, RequestsPastTheBoundGoInArrivalOrderAcrossLevels) {
  batch_queue queue(make_limits(4, 3, 1000));
  queue.push(1, 1, at(0), no_deadline, 3);
  queue.push(2, 1, at(10), no_deadline, 2);
  queue.push(3, 1, at(20), no_deadline, 3);
  queue.push(4, 1, at(1500), no_deadline, 1);
  queue.push(5, 1, at(1600), no_deadline, 2);
  // At 1015: 1 and 2 waited the bound, 3 not yet. Then priority: 4, 5.
  EXPECT_EQ(ids_of(queue.take_batch(at(1015))), (ids{1, 2, 4, 5}));
  EXPECT_EQ(ids_of(queue.take_batch(at(1015))), (ids{3}));
}

TEST(BatchQueuePriority, ASteadyHighStreamCannotStarveALowRequest) {
  // One row per batch and always a fresh high request waiting: the low one
  // is taken once it has waited the bound, not later.
  batch_queue queue(make_limits(1, 2, 5000));
  queue.push(1, 1, at(0), no_deadline, 2);
  request_id next = 2;
  int64_t now = 0;
  std::optional<int64_t> low_taken_at;
  for (int round = 0; round < 100 && !low_taken_at; ++round) {
    queue.push(next++, 1, at(now), no_deadline, 1);
    now += 1000; // each batch runs 1 ms
    if (queue.take_batch(at(now)).slices.at(0).id == 1)
      low_taken_at = now;
  }
  ASSERT_TRUE(low_taken_at.has_value());
  EXPECT_EQ(*low_taken_at, 5000);
}

TEST(BatchQueuePriority, TheDueTimeFollowsTheOldestRequestOfAnyLevel) {
  batch_queue queue(make_limits(8, 3, 1'000'000, 100));
  queue.push(1, 1, at(50), no_deadline, 1);
  queue.push(2, 1, at(20), no_deadline, 3); // an earlier arrival at a lower level
  EXPECT_EQ(queue.next_due_time(), at(120));
  EXPECT_FALSE(queue.batch_due(at(119)));
  EXPECT_TRUE(queue.batch_due(at(120)));
}

TEST(BatchQueuePriority, RowsOfEveryLevelFillABatch) {
  batch_queue queue(make_limits(4, 3, 1'000'000, 10'000));
  queue.push(1, 2, at(0), no_deadline, 1);
  EXPECT_FALSE(queue.batch_due(at(1)));
  queue.push(2, 2, at(1), no_deadline, 3);
  EXPECT_TRUE(queue.batch_due(at(1)));
  EXPECT_EQ(queue.waiting_rows(), 4);
}

TEST(BatchQueuePriority, TheQueueSizeCountsEveryLevel) {
  batch_queue queue(make_limits(4, 3, 1'000'000, 0, 2));
  EXPECT_TRUE(queue.push(1, 1, at(0), no_deadline, 1));
  EXPECT_TRUE(queue.push(2, 1, at(0), no_deadline, 3));
  EXPECT_FALSE(queue.push(3, 1, at(0), no_deadline, 2));
  EXPECT_EQ(queue.waiting_requests(), 2u);
}

TEST(BatchQueuePriority, DeadlinesExpireAtEveryLevel) {
  batch_queue queue(make_limits(1, 3));
  queue.push(1, 1, at(0), at(100), 3);
  queue.push(2, 1, at(0), at(500), 1);
  queue.push(3, 1, at(0), at(100), 1);
  queue.push(4, 1, at(0), at(100), 2);
  EXPECT_EQ(queue.next_deadline(), at(100));
  // Highest level first, arrival order within a level.
  EXPECT_EQ(queue.expire(at(100)), (ids{3, 4, 1}));
  EXPECT_EQ(queue.waiting_requests(), 1u);
  EXPECT_EQ(queue.waiting_rows(), 1);
  EXPECT_EQ(queue.next_deadline(), at(500));
  EXPECT_EQ(ids_of(queue.take_batch(at(100))), (ids{2}));
}

TEST(BatchQueuePriority, AHighRequestIsTakenBeforeItsDeadlineAheadOfOlderLowOnes) {
  batch_queue queue(make_limits(1, 2));
  for (request_id id = 1; id <= 5; ++id)
    queue.push(id, 1, at(0), no_deadline, 2);
  queue.push(9, 1, at(10), at(20), 1);
  EXPECT_EQ(ids_of(queue.take_batch(at(11))), (ids{9}));
  EXPECT_TRUE(queue.expire(at(20)).empty());
}

TEST(BatchQueuePriority, WithdrawAndCancelFindRequestsAtAnyLevel) {
  batch_queue queue(make_limits(2, 3));
  queue.push(1, 1, at(0), no_deadline, 3);
  queue.push(2, 5, at(1), no_deadline, 2);
  queue.push(3, 1, at(2), no_deadline, 1);
  queue.push(4, 1, at(3), no_deadline, 1);
  EXPECT_TRUE(queue.cancel(4));
  EXPECT_FALSE(queue.cancel(4));
  // 3, then the first row of 2: 2 is partly taken.
  EXPECT_EQ(ids_of(queue.take_batch(at(5))), (ids{3, 2}));
  EXPECT_FALSE(queue.cancel(2));
  EXPECT_TRUE(queue.withdraw(2));
  EXPECT_FALSE(queue.withdraw(2));
  EXPECT_EQ(queue.waiting_requests(), 1u);
  EXPECT_EQ(queue.waiting_rows(), 1);
  EXPECT_EQ(ids_of(queue.take_batch(at(5))), (ids{1}));
  EXPECT_TRUE(queue.empty());
  EXPECT_FALSE(queue.withdraw(99));
}

// --- randomized check against a reference of the rules -----------------------

// A reference that keeps every live request in push order and picks the next
// slice by the header's rules, written the slow and obvious way.
class reference_driver {
public:
  reference_driver(uint32_t seed, batch_queue::limits limits)
      : rng_(seed), limits_(limits), queue_(limits) {}

  void run(int ops) {
    for (int op = 0; op < ops; ++op) {
      SCOPED_TRACE(testing::Message() << "op " << op);
      const int64_t dice = uniform(0, 99);
      if (dice < 45)
        push();
      else if (dice < 70)
        take();
      else if (dice < 78)
        expire();
      else if (dice < 86)
        withdraw();
      else
        now_us_ += uniform(0, limits_.max_priority_wait.count() / 2);
      if (testing::Test::HasFatalFailure())
        return;
      ASSERT_EQ(queue_.waiting_requests(), live_.size());
    }
    while (!queue_.empty()) {
      take();
      if (testing::Test::HasFatalFailure())
        return;
    }
    EXPECT_TRUE(live_.empty());
    EXPECT_GT(starving_taken_, 0);
    EXPECT_GT(priority_taken_, 0);
  }

private:
  struct request {
    request_id id;
    int64_t rows;
    int64_t taken;
    int32_t level; // 1..levels
    time_point arrival;
    time_point deadline;
  };

  int64_t uniform(int64_t lo, int64_t hi) {
    return std::uniform_int_distribution<int64_t>(lo, hi)(rng_);
  }

  int32_t level_of(int32_t priority) const {
    return priority >= 1 && priority <= limits_.priority_levels ? priority
                                                                : limits_.priority_levels;
  }

  void push() {
    const int32_t priority =
        static_cast<int32_t>(uniform(0, limits_.priority_levels + 1));
    request r{
        next_id_++,  uniform(1, limits_.max_batch_size + 2),
        0,           level_of(priority),
        at(now_us_), at(now_us_ + uniform(1, 2 * limits_.max_priority_wait.count()))};
    const bool room = live_.size() < static_cast<size_t>(limits_.max_queue_size);
    ASSERT_EQ(queue_.push(r.id, r.rows, r.arrival, r.deadline, priority), room);
    if (room)
      live_.push_back(r);
  }

  /// The request the rules take next: the first of each level in push
  /// order; of those that waited the bound the oldest, else the highest.
  size_t expected_next() {
    std::optional<size_t> starving, highest;
    std::vector<bool> seen(static_cast<size_t>(limits_.priority_levels) + 1);
    for (size_t i = 0; i < live_.size(); ++i) {
      const request& r = live_[i];
      if (seen[static_cast<size_t>(r.level)])
        continue;
      seen[static_cast<size_t>(r.level)] = true;
      if (!highest || r.level < live_[*highest].level)
        highest = i;
      const bool waited = at(now_us_) - r.arrival >= limits_.max_priority_wait;
      if (waited &&
          (!starving || r.arrival < live_[*starving].arrival ||
           (r.arrival == live_[*starving].arrival && r.level < live_[*starving].level)))
        starving = i;
    }
    if (starving) {
      ++starving_taken_;
      return *starving;
    }
    if (highest && *highest != 0)
      ++priority_taken_;
    return *highest;
  }

  void take() {
    const auto batch = queue_.take_batch(at(now_us_));
    int64_t rows = 0;
    for (const auto& s : batch.slices) {
      ASSERT_FALSE(live_.empty());
      const size_t i = expected_next();
      request& r = live_[i];
      ASSERT_EQ(s.id, r.id);
      ASSERT_EQ(s.first_row, r.taken);
      r.taken += s.rows;
      rows += s.rows;
      if (r.taken == r.rows)
        live_.erase(live_.begin() + static_cast<std::ptrdiff_t>(i));
      else
        ASSERT_EQ(rows, limits_.max_batch_size); // only the last slice splits
    }
    ASSERT_EQ(rows, batch.rows);
    ASSERT_LE(rows, limits_.max_batch_size);
  }

  void expire() {
    std::vector<std::vector<request_id>> by_level(
        static_cast<size_t>(limits_.priority_levels) + 1);
    for (const request& r : live_)
      if (r.taken == 0 && r.deadline <= at(now_us_))
        by_level[static_cast<size_t>(r.level)].push_back(r.id);
    std::vector<request_id> want;
    for (const auto& level : by_level)
      want.insert(want.end(), level.begin(), level.end());
    ASSERT_EQ(queue_.expire(at(now_us_)), want);
    live_.erase(std::remove_if(live_.begin(), live_.end(),
                               [&](const request& r) {
                                 return std::find(want.begin(), want.end(), r.id) !=
                                        want.end();
                               }),
                live_.end());
  }

  void withdraw() {
    if (live_.empty())
      return;
    const auto i =
        static_cast<size_t>(uniform(0, static_cast<int64_t>(live_.size()) - 1));
    ASSERT_TRUE(queue_.withdraw(live_[i].id));
    live_.erase(live_.begin() + static_cast<std::ptrdiff_t>(i));
  }

  std::mt19937 rng_;
  batch_queue::limits limits_;
  batch_queue queue_;
  std::vector<request> live_; // push order
  request_id next_id_ = 1;
  int64_t now_us_ = 0;
  int starving_taken_ = 0;
  int priority_taken_ = 0;
};

TEST(BatchQueuePriorityProperty, TakesFollowTheRulesUnderRandomOperations) {
  const batch_queue::limits configs[] = {
      make_limits(4, 3, 1000, 0, 32),
      make_limits(1, 2, 500, 0, 8),
      make_limits(7, 5, 2000, 100, 16),
  };
  for (const auto& limits : configs) {
    for (uint32_t seed : {1u, 7u, 2026u}) {
      SCOPED_TRACE(testing::Message()
                   << "seed " << seed << ", max_batch_size " << limits.max_batch_size
                   << ", levels " << limits.priority_levels);
      reference_driver driver(seed, limits);
      driver.run(3000);
      if (HasFatalFailure())
        return;
    }
  }
}

} // namespace
} // namespace actorserve
