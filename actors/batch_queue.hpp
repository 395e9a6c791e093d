#pragma once

// The batching policy, free of CAF and of models (like TF Serving's batch
// scheduler): it knows request sizes, arrival times, deadlines and
// priorities, and cuts the waiting rows into batches. Owned and driven by one
// batcher actor, so it is never shared between threads.
//
// Rules:
// - A batch holds at most max_batch_size rows. A request with more rows is
//   split across consecutive batches (slices), in order.
// - A batch is due when the waiting rows fill a batch, or when the oldest
//   waiting request has waited max_queue_delay (counted from its arrival, not
//   from the last batch). With a delay of 0 every waiting row is due at once.
// - At most max_queue_size requests wait (all levels together); push refuses
//   more.
// - Priority: levels 1 (highest) to priority_levels (lowest). Priority 0 and
//   priorities above priority_levels are the lowest level. A batch takes
//   rows from the highest level that has any, first in first out within a
//   level (Triton's `priority_levels`, with its default level the lowest).
// - Starvation bound: a request that has waited max_priority_wait is taken
//   before every level, oldest first. So once a request has waited that long,
//   nothing that arrived after it goes before it, however many
//   higher-priority requests keep arriving; below the bound the order is by
//   priority.
// - A request whose deadline has passed before any of its rows was taken is
//   dropped by expire(), whatever its priority; one already (partly) taken
//   stays until done, or until its owner withdraws the rest.
//
// Cost: one deque per level, allocated once, and a bit per level that is not
// empty. While one level holds every waiting request (the common case of one
// priority) pushing, taking and the due time touch that level only, as a
// single FIFO does; with several, they look at the front of each (<= 32).

#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>
#include <utility>
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
    int32_t priority_levels = 3;
    std::chrono::microseconds max_priority_wait{1'000'000};
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

  /// Queues a request of `rows` rows (rows >= 1) at `priority` (1 highest;
  /// 0 or above priority_levels: the lowest). Returns false, and queues
  /// nothing, when max_queue_size requests are already waiting.
  bool push(request_id id, int64_t rows, time_point arrival, time_point deadline,
            int32_t priority = 0);

  /// True when a batch should go out at `now` (full, or the oldest waiting
  /// request has waited max_queue_delay).
  bool batch_due(time_point now) const;

  /// When the oldest waiting request's delay runs out; nullopt when empty.
  std::optional<time_point> next_due_time() const;

  /// Takes up to max_batch_size rows: first the requests that have waited
  /// max_priority_wait at `now` (oldest first), then by priority, oldest
  /// first within a level. Empty batch when nothing waits. Does not check
  /// batch_due: the caller decides.
  batch take_batch(time_point now);

  /// Removes the requests whose deadline is <= now and none of whose rows
  /// was taken; returns their ids, highest level first, in arrival order
  /// within a level.
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
  size_t waiting_requests() const { return waiting_requests_; }
  int64_t waiting_rows() const { return waiting_rows_; }
  bool empty() const { return waiting_requests_ == 0; }
  const limits& config() const { return limits_; }

private:
  struct entry {
    request_id id;
    int64_t rows;
    int64_t next_row; // rows before it were already taken
    time_point arrival;
    time_point deadline;
  };
  using level = std::deque<entry>;

  static constexpr int32_t max_levels = 32; // bits of nonempty_

  size_t level_of(int32_t priority) const;
  /// The index of the level whose front goes next into a batch at `now`;
  /// the queue is not empty.
  size_t next_level(time_point now) const;
  std::optional<time_point> oldest_arrival() const;
  /// The index of the level holding `id` and its place there; the index is
  /// levels_.size() if unknown.
  std::pair<size_t, level::iterator> find(request_id id);
  void erase(size_t index, level::iterator at);
  void note_if_emptied(size_t index);

  limits limits_;
  std::vector<level> levels_; // [0] holds priority 1, the highest
  uint32_t nonempty_ = 0;     // bit i: levels_[i] holds a request
  size_t waiting_requests_ = 0;
  int64_t waiting_rows_ = 0;
};

} // namespace actorserve
