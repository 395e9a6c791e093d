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

// Fixed instants only: no test reads the real clock.
time_point at(int64_t us) {
  return time_point{} + microseconds(us);
}

// A deadline far enough away that it never matters.
const time_point no_deadline = at(1'000'000'000);

// These tests queue at one priority, where the time of a take does not change
// its order (tests/batch_queue_priority_test.cpp covers priorities).
const time_point any_time = at(0);

batch_queue::limits make_limits(int32_t max_batch_size, int64_t delay_us,
                                int32_t max_queue_size = 1024) {
  batch_queue::limits limits;
  limits.max_batch_size = max_batch_size;
  limits.max_queue_delay = microseconds(delay_us);
  limits.max_queue_size = max_queue_size;
  return limits;
}

struct expected_slice {
  request_id id;
  int64_t first_row;
  int64_t rows;
};

void expect_batch(const batch_queue::batch& got, std::vector<expected_slice> want) {
  ASSERT_EQ(got.slices.size(), want.size());
  int64_t sum = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    SCOPED_TRACE(testing::Message() << "slice " << i);
    EXPECT_EQ(got.slices[i].id, want[i].id);
    EXPECT_EQ(got.slices[i].first_row, want[i].first_row);
    EXPECT_EQ(got.slices[i].rows, want[i].rows);
    sum += want[i].rows;
  }
  EXPECT_EQ(got.rows, sum);
}

// --- batch_due / next_due_time ----------------------------------------------

TEST(BatchQueue, EmptyQueueIsNeverDue) {
  batch_queue queue(make_limits(4, 100));
  EXPECT_TRUE(queue.empty());
  EXPECT_FALSE(queue.batch_due(at(0)));
  EXPECT_FALSE(queue.batch_due(at(1'000'000)));
  EXPECT_EQ(queue.next_due_time(), std::nullopt);
  EXPECT_EQ(queue.next_deadline(), std::nullopt);
  EXPECT_EQ(queue.waiting_rows(), 0);
  EXPECT_EQ(queue.waiting_requests(), 0u);
  auto batch = queue.take_batch(any_time);
  EXPECT_TRUE(batch.slices.empty());
  EXPECT_EQ(batch.rows, 0);
}

TEST(BatchQueue, ConfigIsKept) {
  batch_queue queue(make_limits(8, 250, 3));
  EXPECT_EQ(queue.config().max_batch_size, 8);
  EXPECT_EQ(queue.config().max_queue_delay, microseconds(250));
  EXPECT_EQ(queue.config().max_queue_size, 3);
}

TEST(BatchQueue, FullBatchIsDueAtOnce) {
  batch_queue queue(make_limits(4, 1000));
  ASSERT_TRUE(queue.push(1, 3, at(100), no_deadline));
  EXPECT_FALSE(queue.batch_due(at(100)));
  ASSERT_TRUE(queue.push(2, 1, at(100), no_deadline));
  EXPECT_EQ(queue.waiting_rows(), 4);
  EXPECT_TRUE(queue.batch_due(at(100)));
  expect_batch(queue.take_batch(any_time), {{1, 0, 3}, {2, 0, 1}});
  EXPECT_TRUE(queue.empty());
  EXPECT_FALSE(queue.batch_due(at(100)));
}

TEST(BatchQueue, OneLargeRequestIsDueAtOnce) {
  batch_queue queue(make_limits(4, 1000));
  ASSERT_TRUE(queue.push(1, 9, at(100), no_deadline));
  EXPECT_TRUE(queue.batch_due(at(100)));
}

TEST(BatchQueue, PartialBatchIsDueExactlyWhenTheDelayRunsOut) {
  batch_queue queue(make_limits(4, 1000));
  ASSERT_TRUE(queue.push(1, 2, at(100), no_deadline));
  EXPECT_EQ(queue.next_due_time(), at(1100));
  EXPECT_FALSE(queue.batch_due(at(100)));
  EXPECT_FALSE(queue.batch_due(at(1099)));
  EXPECT_TRUE(queue.batch_due(at(1100)));
  EXPECT_TRUE(queue.batch_due(at(5000)));
}

TEST(BatchQueue, DelayCountsFromTheFirstWaitingRequest) {
  batch_queue queue(make_limits(8, 1000));
  ASSERT_TRUE(queue.push(1, 1, at(100), no_deadline));
  ASSERT_TRUE(queue.push(2, 1, at(900), no_deadline));
  EXPECT_EQ(queue.next_due_time(), at(1100));
  EXPECT_FALSE(queue.batch_due(at(1099)));
  EXPECT_TRUE(queue.batch_due(at(1100)));
  expect_batch(queue.take_batch(any_time), {{1, 0, 1}, {2, 0, 1}});
}

TEST(BatchQueue, DueTimeMovesToTheNextRequestOnceTheFirstIsGone) {
  batch_queue queue(make_limits(2, 1000));
  ASSERT_TRUE(queue.push(1, 2, at(100), no_deadline));
  ASSERT_TRUE(queue.push(2, 1, at(600), no_deadline));
  EXPECT_TRUE(queue.batch_due(at(100))); // full
  expect_batch(queue.take_batch(any_time), {{1, 0, 2}});
  // Counted from request 2's arrival, not from the last batch.
  EXPECT_EQ(queue.next_due_time(), at(1600));
  EXPECT_FALSE(queue.batch_due(at(1599)));
  EXPECT_TRUE(queue.batch_due(at(1600)));
}

TEST(BatchQueue, ZeroDelayIsDueWheneverNotEmpty) {
  batch_queue queue(make_limits(32, 0));
  EXPECT_FALSE(queue.batch_due(at(0)));
  ASSERT_TRUE(queue.push(1, 1, at(500), no_deadline));
  EXPECT_TRUE(queue.batch_due(at(500)));
  EXPECT_EQ(queue.next_due_time(), at(500));
  expect_batch(queue.take_batch(any_time), {{1, 0, 1}});
  EXPECT_FALSE(queue.batch_due(at(500)));
}

// --- take_batch ---------------------------------------------------------------

TEST(BatchQueue, LargeRequestIsSplitIntoSlices) {
  batch_queue queue(make_limits(32, 1000));
  ASSERT_TRUE(queue.push(7, 70, at(0), no_deadline));
  EXPECT_EQ(queue.waiting_rows(), 70);

  expect_batch(queue.take_batch(any_time), {{7, 0, 32}});
  EXPECT_EQ(queue.waiting_rows(), 38);
  EXPECT_EQ(queue.waiting_requests(), 1u);
  EXPECT_TRUE(queue.batch_due(at(0))); // still 38 rows: full

  expect_batch(queue.take_batch(any_time), {{7, 32, 32}});
  EXPECT_EQ(queue.waiting_rows(), 6);
  // A partly taken request keeps its arrival, so the rest is due once it waited.
  EXPECT_EQ(queue.next_due_time(), at(1000));

  expect_batch(queue.take_batch(any_time), {{7, 64, 6}});
  EXPECT_EQ(queue.waiting_rows(), 0);
  EXPECT_TRUE(queue.empty());
  EXPECT_TRUE(queue.take_batch(any_time).slices.empty());
}

TEST(BatchQueue, SeveralRequestsShareABatchInOrder) {
  batch_queue queue(make_limits(10, 1000));
  ASSERT_TRUE(queue.push(1, 3, at(0), no_deadline));
  ASSERT_TRUE(queue.push(2, 4, at(1), no_deadline));
  ASSERT_TRUE(queue.push(3, 2, at(2), no_deadline));
  EXPECT_EQ(queue.waiting_rows(), 9);
  EXPECT_FALSE(queue.batch_due(at(2)));
  expect_batch(queue.take_batch(any_time), {{1, 0, 3}, {2, 0, 4}, {3, 0, 2}});
  EXPECT_TRUE(queue.empty());
}

TEST(BatchQueue, BatchStopsAtMaxAndSplitsTheLastRequest) {
  batch_queue queue(make_limits(8, 1000));
  ASSERT_TRUE(queue.push(1, 5, at(0), no_deadline));
  ASSERT_TRUE(queue.push(2, 5, at(1), no_deadline));
  ASSERT_TRUE(queue.push(3, 1, at(2), no_deadline));
  expect_batch(queue.take_batch(any_time), {{1, 0, 5}, {2, 0, 3}});
  EXPECT_EQ(queue.waiting_rows(), 3);
  EXPECT_EQ(queue.waiting_requests(), 2u);
  expect_batch(queue.take_batch(any_time), {{2, 3, 2}, {3, 0, 1}});
  EXPECT_TRUE(queue.empty());
}

TEST(BatchQueue, SplitRequestIsFollowedByTheNextOnes) {
  batch_queue queue(make_limits(32, 1000));
  ASSERT_TRUE(queue.push(1, 70, at(0), no_deadline));
  ASSERT_TRUE(queue.push(2, 20, at(10), no_deadline));
  ASSERT_TRUE(queue.push(3, 10, at(20), no_deadline));
  EXPECT_EQ(queue.waiting_rows(), 100);
  expect_batch(queue.take_batch(any_time), {{1, 0, 32}});
  expect_batch(queue.take_batch(any_time), {{1, 32, 32}});
  expect_batch(queue.take_batch(any_time), {{1, 64, 6}, {2, 0, 20}, {3, 0, 6}});
  EXPECT_EQ(queue.waiting_rows(), 4);
  // Request 3 is now the partly taken front; its own arrival counts.
  EXPECT_EQ(queue.next_due_time(), at(1020));
  expect_batch(queue.take_batch(any_time), {{3, 6, 4}});
  EXPECT_TRUE(queue.empty());
}

TEST(BatchQueue, BatchSizeOneTakesOneRowAtATime) {
  batch_queue queue(make_limits(1, 1000));
  ASSERT_TRUE(queue.push(1, 2, at(0), no_deadline));
  ASSERT_TRUE(queue.push(2, 1, at(0), no_deadline));
  expect_batch(queue.take_batch(any_time), {{1, 0, 1}});
  expect_batch(queue.take_batch(any_time), {{1, 1, 1}});
  expect_batch(queue.take_batch(any_time), {{2, 0, 1}});
  EXPECT_TRUE(queue.empty());
}

// --- push capacity ----------------------------------------------------------

TEST(BatchQueue, PushBeyondCapacityIsRefusedAndChangesNothing) {
  batch_queue queue(make_limits(4, 1000, 2));
  ASSERT_TRUE(queue.push(1, 1, at(0), at(5000)));
  ASSERT_TRUE(queue.push(2, 1, at(10), at(6000)));
  EXPECT_FALSE(queue.push(3, 10, at(20), at(100)));
  EXPECT_EQ(queue.waiting_requests(), 2u);
  EXPECT_EQ(queue.waiting_rows(), 2);
  EXPECT_FALSE(queue.batch_due(at(20))); // the refused rows would have filled it
  EXPECT_EQ(queue.next_due_time(), at(1000));
  EXPECT_EQ(queue.next_deadline(), at(5000));
  EXPECT_FALSE(queue.cancel(3));
  expect_batch(queue.take_batch(any_time), {{1, 0, 1}, {2, 0, 1}});
  // Room again once the requests have left.
  EXPECT_TRUE(queue.push(3, 1, at(30), no_deadline));
}

TEST(BatchQueue, PartlyTakenRequestStillCountsAgainstCapacity) {
  batch_queue queue(make_limits(4, 1000, 1));
  ASSERT_TRUE(queue.push(1, 6, at(0), no_deadline));
  expect_batch(queue.take_batch(any_time), {{1, 0, 4}});
  EXPECT_FALSE(queue.push(2, 1, at(1), no_deadline));
  expect_batch(queue.take_batch(any_time), {{1, 4, 2}});
  EXPECT_TRUE(queue.push(2, 1, at(2), no_deadline));
}

TEST(BatchQueue, ZeroCapacityRefusesEverything) {
  batch_queue queue(make_limits(4, 1000, 0));
  EXPECT_FALSE(queue.push(1, 1, at(0), no_deadline));
  EXPECT_TRUE(queue.empty());
}

// --- expire / cancel / next_deadline -------------------------------------------

TEST(BatchQueue, ExpireDropsUntakenRequestsPastTheirDeadlineInOrder) {
  batch_queue queue(make_limits(32, 1000));
  ASSERT_TRUE(queue.push(1, 2, at(0), at(500)));
  ASSERT_TRUE(queue.push(2, 3, at(10), at(2000)));
  ASSERT_TRUE(queue.push(3, 4, at(20), at(400)));
  ASSERT_TRUE(queue.push(4, 5, at(30), at(501)));
  EXPECT_EQ(queue.next_deadline(), at(400));

  EXPECT_TRUE(queue.expire(at(399)).empty());
  // Deadline <= now expires: 500 is included, 501 is not.
  EXPECT_EQ(queue.expire(at(500)), (std::vector<request_id>{1, 3}));
  EXPECT_EQ(queue.waiting_requests(), 2u);
  EXPECT_EQ(queue.waiting_rows(), 8);
  EXPECT_EQ(queue.next_deadline(), at(501));
  // The oldest waiting request is now request 2.
  EXPECT_EQ(queue.next_due_time(), at(1010));
  EXPECT_TRUE(queue.expire(at(500)).empty());

  expect_batch(queue.take_batch(any_time), {{2, 0, 3}, {4, 0, 5}});
  EXPECT_TRUE(queue.empty());
}

TEST(BatchQueue, ExpireKeepsAPartlyTakenRequest) {
  batch_queue queue(make_limits(4, 1000));
  ASSERT_TRUE(queue.push(1, 10, at(0), at(100)));
  ASSERT_TRUE(queue.push(2, 1, at(0), at(100)));
  expect_batch(queue.take_batch(any_time), {{1, 0, 4}});
  // Request 1 is partly taken: only request 2 can still be dropped.
  EXPECT_EQ(queue.next_deadline(), at(100));
  EXPECT_EQ(queue.expire(at(200)), (std::vector<request_id>{2}));
  EXPECT_EQ(queue.waiting_rows(), 6);
  EXPECT_EQ(queue.waiting_requests(), 1u);
  EXPECT_EQ(queue.next_deadline(), std::nullopt);
  EXPECT_TRUE(queue.expire(at(1'000'000)).empty());
  expect_batch(queue.take_batch(any_time), {{1, 4, 4}});
  expect_batch(queue.take_batch(any_time), {{1, 8, 2}});
  EXPECT_TRUE(queue.empty());
}

TEST(BatchQueue, ExpireEverything) {
  batch_queue queue(make_limits(4, 1000));
  ASSERT_TRUE(queue.push(1, 2, at(0), at(10)));
  ASSERT_TRUE(queue.push(2, 2, at(0), at(20)));
  EXPECT_EQ(queue.expire(at(20)), (std::vector<request_id>{1, 2}));
  EXPECT_TRUE(queue.empty());
  EXPECT_EQ(queue.waiting_rows(), 0);
  EXPECT_EQ(queue.next_due_time(), std::nullopt);
  EXPECT_FALSE(queue.batch_due(at(1'000'000)));
}

TEST(BatchQueue, CancelRemovesOnlyUntakenRequests) {
  batch_queue queue(make_limits(4, 1000));
  ASSERT_TRUE(queue.push(1, 6, at(0), at(900)));
  ASSERT_TRUE(queue.push(2, 1, at(10), at(800)));
  ASSERT_TRUE(queue.push(3, 2, at(20), at(700)));
  EXPECT_EQ(queue.waiting_rows(), 9);

  EXPECT_TRUE(queue.cancel(3));
  EXPECT_EQ(queue.waiting_rows(), 7);
  EXPECT_EQ(queue.waiting_requests(), 2u);
  EXPECT_EQ(queue.next_deadline(), at(800));
  EXPECT_FALSE(queue.cancel(3));  // already gone
  EXPECT_FALSE(queue.cancel(42)); // never known

  expect_batch(queue.take_batch(any_time), {{1, 0, 4}});
  EXPECT_FALSE(queue.cancel(1)); // partly taken
  EXPECT_EQ(queue.waiting_rows(), 3);

  EXPECT_TRUE(queue.cancel(2));
  EXPECT_EQ(queue.waiting_rows(), 2);
  EXPECT_EQ(queue.next_deadline(), std::nullopt);
  expect_batch(queue.take_batch(any_time), {{1, 4, 2}});
  EXPECT_TRUE(queue.empty());
  EXPECT_FALSE(queue.cancel(1)); // done
}

TEST(BatchQueue, CancellingTheFrontMovesTheDueTime) {
  batch_queue queue(make_limits(4, 1000));
  ASSERT_TRUE(queue.push(1, 1, at(0), no_deadline));
  ASSERT_TRUE(queue.push(2, 1, at(300), no_deadline));
  EXPECT_EQ(queue.next_due_time(), at(1000));
  EXPECT_TRUE(queue.cancel(1));
  EXPECT_EQ(queue.next_due_time(), at(1300));
  EXPECT_FALSE(queue.batch_due(at(1000)));
  EXPECT_TRUE(queue.batch_due(at(1300)));
}

TEST(BatchQueue, CancelFreesCapacity) {
  batch_queue queue(make_limits(4, 1000, 1));
  ASSERT_TRUE(queue.push(1, 1, at(0), no_deadline));
  EXPECT_FALSE(queue.push(2, 1, at(0), no_deadline));
  EXPECT_TRUE(queue.cancel(1));
  EXPECT_TRUE(queue.push(2, 1, at(0), no_deadline));
}

TEST(BatchQueue, NextDeadlineIsTheEarliestNotTheFirst) {
  batch_queue queue(make_limits(32, 1000));
  ASSERT_TRUE(queue.push(1, 1, at(0), at(900)));
  ASSERT_TRUE(queue.push(2, 1, at(1), at(300)));
  ASSERT_TRUE(queue.push(3, 1, at(2), at(600)));
  EXPECT_EQ(queue.next_deadline(), at(300));
  EXPECT_TRUE(queue.cancel(2));
  EXPECT_EQ(queue.next_deadline(), at(600));
}

TEST(BatchQueue, WithdrawRemovesTheUntakenRowsOfAPartlyTakenRequest) {
  batch_queue queue(make_limits(4, 1000));
  ASSERT_TRUE(queue.push(1, 10, at(0), at(900)));
  ASSERT_TRUE(queue.push(2, 1, at(10), at(800)));
  expect_batch(queue.take_batch(any_time), {{1, 0, 4}});
  EXPECT_FALSE(queue.cancel(1)); // partly taken: cancel refuses, withdraw does not
  EXPECT_TRUE(queue.withdraw(1));
  EXPECT_EQ(queue.waiting_rows(), 1);
  EXPECT_EQ(queue.waiting_requests(), 1u);
  // The next request is the front now: its own arrival sets the due time.
  EXPECT_EQ(queue.next_due_time(), at(1010));
  expect_batch(queue.take_batch(any_time), {{2, 0, 1}});
  EXPECT_TRUE(queue.empty());
  EXPECT_FALSE(queue.withdraw(1)); // nothing of it waits any more
}

TEST(BatchQueue, WithdrawOfAnUntakenRequestIsACancel) {
  batch_queue queue(make_limits(4, 1000, 2));
  ASSERT_TRUE(queue.push(1, 2, at(0), at(300)));
  ASSERT_TRUE(queue.push(2, 3, at(10), at(900)));
  EXPECT_FALSE(queue.push(3, 1, at(20), no_deadline));
  EXPECT_TRUE(queue.withdraw(1));
  EXPECT_EQ(queue.waiting_rows(), 3);
  EXPECT_EQ(queue.next_deadline(), at(900));
  EXPECT_TRUE(queue.push(3, 1, at(20), no_deadline)); // its place is free again
  EXPECT_FALSE(queue.withdraw(42));                   // never known
  expect_batch(queue.take_batch(any_time), {{2, 0, 3}, {3, 0, 1}});
}

TEST(BatchQueue, WithdrawOfAFullyTakenRequestChangesNothing) {
  batch_queue queue(make_limits(4, 1000));
  ASSERT_TRUE(queue.push(1, 4, at(0), no_deadline));
  ASSERT_TRUE(queue.push(2, 2, at(0), no_deadline));
  expect_batch(queue.take_batch(any_time), {{1, 0, 4}});
  EXPECT_FALSE(queue.withdraw(1));
  EXPECT_EQ(queue.waiting_rows(), 2);
  EXPECT_EQ(queue.waiting_requests(), 1u);
}

// --- randomized property test -------------------------------------------------

// Drives the queue with random operations and checks, against a bookkeeping of
// what was pushed, that every row of every accepted request that was neither
// expired, cancelled nor withdrawn is handed out exactly once (a withdrawn
// one's rows up to its withdrawal), in order, FIFO across
// requests, and that no batch is larger than max_batch_size.
class random_driver {
public:
  random_driver(uint32_t seed, batch_queue::limits limits)
      : rng_(seed), limits_(limits), queue_(limits) {}

  void run(int ops) {
    for (int op = 0; op < ops; ++op) {
      SCOPED_TRACE(testing::Message() << "op " << op);
      const int64_t dice = uniform(0, 99);
      if (dice < 40)
        push();
      else if (dice < 63)
        take();
      else if (dice < 72)
        expire();
      else if (dice < 82)
        cancel();
      else if (dice < 86)
        withdraw();
      else
        now_us_ += uniform(0, 3 * limits_.max_queue_delay.count() + 10);
      check_state();
      if (testing::Test::HasFatalFailure())
        return;
    }
    // Drain: whatever is still waiting comes out in full.
    while (!queue_.empty()) {
      take();
      if (testing::Test::HasFatalFailure())
        return;
    }
    check_state();
    for (const auto& [id, r] : requests_) {
      SCOPED_TRACE(testing::Message() << "request " << id);
      if (r.dropped)
        EXPECT_EQ(r.handed_out, 0);
      else if (r.withdrawn)
        EXPECT_LT(r.handed_out, r.rows);
      else
        EXPECT_EQ(r.handed_out, r.rows);
    }
    EXPECT_EQ(rows_handed_out_ + rows_dropped_, rows_accepted_);
    // The op mix must have exercised every path.
    EXPECT_GT(refused_, 0);
    EXPECT_GT(split_, 0);
    EXPECT_GT(expired_, 0);
    EXPECT_GT(cancelled_, 0);
    EXPECT_GT(cancel_refused_taken_, 0);
    EXPECT_GT(withdrawn_taken_, 0);
  }

private:
  struct request {
    int64_t rows = 0;
    int64_t handed_out = 0; // rows [0, handed_out) were taken, in order
    time_point arrival;
    time_point deadline;
    bool dropped = false;   // expired or cancelled
    bool withdrawn = false; // its waiting rows withdrawn, maybe after some were taken
    bool done() const { return dropped || withdrawn || handed_out == rows; }
  };

  int64_t uniform(int64_t lo, int64_t hi) {
    return std::uniform_int_distribution<int64_t>(lo, hi)(rng_);
  }

  size_t live_requests() const {
    return static_cast<size_t>(
        std::count_if(requests_.begin(), requests_.end(),
                      [](const auto& r) { return !r.second.done(); }));
  }

  void push() {
    const request_id id = next_id_++;
    request r;
    // Mostly small requests, sometimes several batches' worth.
    r.rows = uniform(0, 9) == 0 ? uniform(1, 3 * limits_.max_batch_size + 5)
                                : uniform(1, limits_.max_batch_size);
    r.arrival = at(now_us_);
    r.deadline = at(now_us_ + uniform(0, 4 * limits_.max_queue_delay.count() + 50));
    const bool room = live_requests() < static_cast<size_t>(limits_.max_queue_size);
    const int64_t rows_before = queue_.waiting_rows();
    const size_t requests_before = queue_.waiting_requests();
    const bool accepted = queue_.push(id, r.rows, r.arrival, r.deadline);
    ASSERT_EQ(accepted, room);
    if (!accepted) {
      ++refused_;
      ASSERT_EQ(queue_.waiting_rows(), rows_before);
      ASSERT_EQ(queue_.waiting_requests(), requests_before);
      return;
    }
    rows_accepted_ += r.rows;
    requests_.emplace(id, r);
  }

  void take() {
    const int64_t waiting_before = queue_.waiting_rows();
    const auto batch = queue_.take_batch(at(now_us_));
    // As many rows as fit, never more than the max.
    ASSERT_LE(batch.rows, limits_.max_batch_size);
    ASSERT_EQ(batch.rows, std::min<int64_t>(waiting_before, limits_.max_batch_size));
    ASSERT_EQ(batch.slices.empty(), batch.rows == 0);
    int64_t sum = 0;
    for (size_t i = 0; i < batch.slices.size(); ++i) {
      const auto& s = batch.slices[i];
      SCOPED_TRACE(testing::Message() << "slice " << i << " of request " << s.id);
      auto it = requests_.find(s.id);
      ASSERT_NE(it, requests_.end());
      request& r = it->second;
      ASSERT_FALSE(r.done());
      ASSERT_GE(s.rows, 1);
      // Rows of a request come out exactly once, in order.
      ASSERT_EQ(s.first_row, r.handed_out);
      ASSERT_LE(s.first_row + s.rows, r.rows);
      if (s.first_row == 0) {
        // FIFO across requests: a request starts only after all older ones.
        ASSERT_GT(s.id, last_started_);
        last_started_ = s.id;
        for (auto older = requests_.begin(); older != it; ++older)
          ASSERT_TRUE(older->second.done()) << "older request " << older->first;
      } else {
        // Only the first slice of a batch can continue a split request.
        ASSERT_EQ(i, 0u);
      }
      // Every slice but the last finishes its request.
      if (i + 1 < batch.slices.size()) {
        ASSERT_EQ(s.first_row + s.rows, r.rows);
      }
      if (s.first_row + s.rows < r.rows)
        ++split_;
      r.handed_out += s.rows;
      sum += s.rows;
    }
    ASSERT_EQ(sum, batch.rows);
    rows_handed_out_ += batch.rows;
    ++batches_;
  }

  void expire() {
    const time_point now = at(now_us_);
    const auto expired = queue_.expire(now);
    std::vector<request_id> want;
    for (auto& [id, r] : requests_)
      if (!r.done() && r.handed_out == 0 && r.deadline <= now)
        want.push_back(id);
    ASSERT_EQ(expired, want);
    for (request_id id : expired) {
      request& r = requests_.at(id);
      r.dropped = true;
      rows_dropped_ += r.rows;
    }
    expired_ += static_cast<int>(expired.size());
    if (auto next = queue_.next_deadline()) {
      ASSERT_GT(*next, now);
    }
  }

  /// Mostly a live request (taken or not), else any id ever used or one never used.
  request_id pick_id() {
    std::vector<request_id> live;
    for (const auto& [id, r] : requests_)
      if (!r.done())
        live.push_back(id);
    return !live.empty() && uniform(0, 3) != 0
               ? live[static_cast<size_t>(
                     uniform(0, static_cast<int64_t>(live.size()) - 1))]
               : static_cast<request_id>(uniform(1, static_cast<int64_t>(next_id_)));
  }

  void cancel() {
    const request_id id = pick_id();
    auto it = requests_.find(id);
    const bool cancellable =
        it != requests_.end() && !it->second.done() && it->second.handed_out == 0;
    ASSERT_EQ(queue_.cancel(id), cancellable);
    if (cancellable) {
      it->second.dropped = true;
      rows_dropped_ += it->second.rows;
      ++cancelled_;
    } else if (it != requests_.end() && !it->second.done()) {
      ++cancel_refused_taken_;
    }
  }

  void withdraw() {
    const request_id id = pick_id();
    auto it = requests_.find(id);
    const bool waiting = it != requests_.end() && !it->second.done();
    ASSERT_EQ(queue_.withdraw(id), waiting);
    if (!waiting)
      return;
    request& r = it->second;
    r.withdrawn = true;
    rows_dropped_ += r.rows - r.handed_out;
    if (r.handed_out > 0)
      ++withdrawn_taken_;
  }

  void check_state() {
    int64_t rows = 0;
    size_t live = 0;
    std::optional<time_point> earliest_deadline;
    std::optional<time_point> front_arrival;
    for (const auto& [id, r] : requests_) {
      if (r.done())
        continue;
      ++live;
      rows += r.rows - r.handed_out;
      if (!front_arrival)
        front_arrival = r.arrival;
      if (r.handed_out == 0 && (!earliest_deadline || r.deadline < *earliest_deadline))
        earliest_deadline = r.deadline;
    }
    ASSERT_EQ(queue_.waiting_rows(), rows);
    ASSERT_EQ(queue_.waiting_requests(), live);
    ASSERT_EQ(queue_.empty(), live == 0);
    ASSERT_EQ(queue_.next_deadline(), earliest_deadline);
    if (!front_arrival) {
      ASSERT_EQ(queue_.next_due_time(), std::nullopt);
      ASSERT_FALSE(queue_.batch_due(at(now_us_)));
      return;
    }
    const time_point due = *front_arrival + limits_.max_queue_delay;
    ASSERT_EQ(queue_.next_due_time(), due);
    const bool full = rows >= limits_.max_batch_size;
    ASSERT_EQ(queue_.batch_due(at(now_us_)), full || at(now_us_) >= due);
  }

  std::mt19937 rng_;
  batch_queue::limits limits_;
  batch_queue queue_;
  std::map<request_id, request> requests_; // accepted ones; ids rise with push order
  request_id next_id_ = 1;
  request_id last_started_ = 0;
  int64_t now_us_ = 0;
  int64_t rows_accepted_ = 0;
  int64_t rows_handed_out_ = 0;
  int64_t rows_dropped_ = 0;
  int batches_ = 0;
  int refused_ = 0;
  int split_ = 0;
  int expired_ = 0;
  int cancelled_ = 0;
  int cancel_refused_taken_ = 0;
  int withdrawn_taken_ = 0;
};

TEST(BatchQueueProperty, RandomOperationsHandOutEveryRowExactlyOnce) {
  const batch_queue::limits configs[] = {
      make_limits(32, 2000, 16), make_limits(7, 500, 8),   make_limits(1, 100, 4),
      make_limits(5, 0, 6),      make_limits(64, 1000, 3),
  };
  for (const auto& limits : configs) {
    for (uint32_t seed : {1u, 2u, 42u, 20240601u}) {
      SCOPED_TRACE(testing::Message()
                   << "seed " << seed << ", max_batch_size " << limits.max_batch_size
                   << ", delay " << limits.max_queue_delay.count()
                   << "us, max_queue_size " << limits.max_queue_size);
      random_driver driver(seed, limits);
      driver.run(4000);
      if (HasFatalFailure())
        return;
    }
  }
}

} // namespace
} // namespace actorserve
