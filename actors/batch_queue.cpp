#include "actors/batch_queue.hpp"

#include <algorithm>
#include <cassert>

namespace actorserve {

batch_queue::batch_queue(limits config) : limits_(config) {
  // parse_model_config validates these; a batch of 0 rows would never drain.
  assert(limits_.max_batch_size >= 1);
  assert(limits_.max_queue_delay.count() >= 0);
  assert(limits_.max_queue_size >= 0);
}

bool batch_queue::push(request_id id, int64_t rows, time_point arrival,
                       time_point deadline) {
  assert(rows >= 1);
  if (rows < 1)
    return false; // keeps waiting_rows_ honest if the precondition is broken
  if (waiting_.size() >= static_cast<size_t>(std::max(limits_.max_queue_size, 0)))
    return false;
  waiting_.push_back(entry{id, rows, 0, arrival, deadline});
  waiting_rows_ += rows;
  return true;
}

bool batch_queue::batch_due(time_point now) const {
  if (waiting_.empty())
    return false;
  if (waiting_rows_ >= limits_.max_batch_size)
    return true;
  return now >= waiting_.front().arrival + limits_.max_queue_delay;
}

std::optional<batch_queue::time_point> batch_queue::next_due_time() const {
  if (waiting_.empty())
    return std::nullopt;
  return waiting_.front().arrival + limits_.max_queue_delay;
}

batch_queue::batch batch_queue::take_batch() {
  batch result;
  const int64_t max_rows = limits_.max_batch_size;
  while (!waiting_.empty() && result.rows < max_rows) {
    entry& front = waiting_.front();
    const int64_t remaining = front.rows - front.next_row;
    const int64_t taken = std::min(remaining, max_rows - result.rows);
    result.slices.push_back(slice{front.id, front.next_row, taken});
    result.rows += taken;
    waiting_rows_ -= taken;
    if (taken == remaining)
      waiting_.pop_front();
    else
      front.next_row += taken; // stays at the front, keeps its arrival: due at once
  }
  return result;
}

std::vector<batch_queue::request_id> batch_queue::expire(time_point now) {
  auto is_expired = [now](const entry& e) {
    return e.next_row == 0 && e.deadline <= now;
  };
  std::vector<request_id> expired;
  for (const entry& e : waiting_) {
    if (is_expired(e)) {
      expired.push_back(e.id);
      waiting_rows_ -= e.rows;
    }
  }
  if (!expired.empty())
    waiting_.erase(std::remove_if(waiting_.begin(), waiting_.end(), is_expired),
                   waiting_.end());
  return expired;
}

std::deque<batch_queue::entry>::iterator batch_queue::find(request_id id) {
  return std::find_if(waiting_.begin(), waiting_.end(),
                      [id](const entry& e) { return e.id == id; });
}

bool batch_queue::cancel(request_id id) {
  auto it = find(id);
  if (it == waiting_.end() || it->next_row != 0)
    return false;
  waiting_rows_ -= it->rows;
  waiting_.erase(it);
  return true;
}

bool batch_queue::withdraw(request_id id) {
  auto it = find(id);
  if (it == waiting_.end())
    return false;
  waiting_rows_ -= it->rows - it->next_row;
  waiting_.erase(it);
  return true;
}

std::optional<batch_queue::time_point> batch_queue::next_deadline() const {
  std::optional<time_point> earliest;
  for (const entry& e : waiting_)
    if (e.next_row == 0 && (!earliest || e.deadline < *earliest))
      earliest = e.deadline;
  return earliest;
}

} // namespace actorserve
