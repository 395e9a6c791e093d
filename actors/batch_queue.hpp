#pragma once

// The batching policy, free of CAF and of models (like TF Serving's batch
// scheduler): it knows request sizes, arrival times and deadlines, and cuts
// the waiting rows into batches. Owned and driven by one batcher actor, so it
// is never shared between threads.
//
// Rules:
// - A batch holds at most max_batch_size rows. A request with more rows is
//   split across consecutive batches (slices), in order.
// - A batch is due when the waiting rows fill a batch, or when the oldest
//   waiting request has waited max_queue_delay (counted from its arrival, not
//   from the last batch). With a delay of 0 every waiting row is due at once.
// - At most max_queue_size requests wait; push refuses more.
// - A request whose deadline has passed before any of its rows was taken is
//   dropped by expire(); one already (partly) taken stays until done, or
//   until its owner withdraws the rest.

#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>
#include <vector>

namespace actorserve {

class batch_queue {
public:
  using clock = std::chrono::steady_clock;
  using time_point = clock::time_point;
  using request_id = uint64_t;

  struct limits {
    int32_t max_batch_size = 32;
    std::chrono::microseconds max_queue_delay{2000};
    int32_t max_queue_size = 1024;
  };

  /// Rows [first_row, first_row + rows) of one request.
  struct slice {
    request_id id = 0;
    int64_t first_row = 0;
    int64_t rows = 0;
  };

  struct batch {
    std::vector<slice> slices;
    int64_t rows = 0;
  };

  explicit batch_queue(limits config);

  /// Queues a request of `rows` rows (rows >= 1). Returns false, and queues
  /// nothing, when max_queue_size requests are already waiting.
  bool push(request_id id, int64_t rows, time_point arrival, time_point deadline);

  /// True when a batch should go out at `now` (full, or the oldest waiting
  /// request has waited max_queue_delay).
  bool batch_due(time_point now) const;

  /// When the oldest waiting request's delay runs out; nullopt when empty.
  std::optional<time_point> next_due_time() const;

  /// Takes up to max_batch_size rows from the front, oldest first. Empty
  /// batch when nothing waits. Does not check batch_due: the caller decides.
  batch take_batch();

  /// Removes the requests whose deadline is <= now and none of whose rows
  /// was taken; returns their ids in queue order.
  std::vector<request_id> expire(time_point now);

  /// Removes a waiting request none of whose rows was taken. False if it
  /// is unknown or already (partly) taken.
  bool cancel(request_id id);

  /// Removes the rows of a request that still wait, whether or not some of
  /// its rows were taken (those are the caller's to discard when they come
  /// back). False if none of its rows waits (unknown, or all taken).
  bool withdraw(request_id id);

  /// Earliest deadline among requests that expire() could still drop.
  std::optional<time_point> next_deadline() const;

  /// Requests with rows still waiting.
  size_t waiting_requests() const { return waiting_.size(); }
  int64_t waiting_rows() const { return waiting_rows_; }
  bool empty() const { return waiting_.empty(); }
  const limits& config() const { return limits_; }

private:
  struct entry {
    request_id id;
    int64_t rows;
    int64_t next_row; // rows before it were already taken
    time_point arrival;
    time_point deadline;
  };

  std::deque<entry>::iterator find(request_id id);

  limits limits_;
  std::deque<entry> waiting_;
  int64_t waiting_rows_ = 0;
};

} // namespace actorserve
