#include "actors/batch_queue.hpp"

#include <algorithm>
#include <cassert>

namespace actorserve {

batch_queue::batch_queue(limits config) : limits_(config) {
  // parse_model_config validates these; a batch of 0 rows would never drain.
  assert(limits_.max_batch_size >= 1);
  assert(limits_.max_queue_delay.count() >= 0);
  assert(limits_.max_queue_size >= 0);
  assert(limits_.priority_levels >= 1);
  levels_.resize(static_cast<size_t>(std::max(limits_.priority_levels, 1)));
}

size_t batch_queue::level_of(int32_t priority) const {
  if (priority >= 1 && static_cast<size_t>(priority) <= levels_.size())
    return static_cast<size_t>(priority) - 1;
  return levels_.size() - 1;
}

bool batch_queue::push(request_id id, int64_t rows, time_point arrival,
                       time_point deadline, int32_t priority) {
  assert(rows >= 1);
  if (rows < 1)
    return false; // keeps waiting_rows_ honest if the precondition is broken
  if (waiting_requests_ >= static_cast<size_t>(std::max(limits_.max_queue_size, 0)))
    return false;
  levels_[level_of(priority)].push_back(entry{id, rows, 0, arrival, deadline});
  waiting_requests_ += 1;
  waiting_rows_ += rows;
  return true;
}

std::optional<batch_queue::time_point> batch_queue::oldest_arrival() const {
  std::optional<time_point> oldest;
  for (const level& l : levels_)
    if (!l.empty() && (!oldest || l.front().arrival < *oldest))
      oldest = l.front().arrival;
  return oldest;
}

bool batch_queue::batch_due(time_point now) const {
  if (empty())
    return false;
  if (waiting_rows_ >= limits_.max_batch_size)
    return true;
  return now >= *oldest_arrival() + limits_.max_queue_delay;
}

std::optional<batch_queue::time_point> batch_queue::next_due_time() const {
  auto oldest = oldest_arrival();
  if (!oldest)
    return std::nullopt;
  return *oldest + limits_.max_queue_delay;
}

batch_queue::level& batch_queue::next_level(time_point now) {
  // Each level is in arrival order, so its front is its longest waiting.
  level* starving = nullptr;
  level* highest = nullptr;
  for (level& l : levels_) {
    if (l.empty())
      continue;
    if (highest == nullptr)
      highest = &l;
    const time_point arrival = l.front().arrival;
    if (now - arrival >= limits_.max_priority_wait &&
        (starving == nullptr || arrival < starving->front().arrival))
      starving = &l;
  }
  assert(highest != nullptr);
  return starving != nullptr ? *starving : *highest;
}

batch_queue::batch batch_queue::take_batch(time_point now) {
  batch result;
  const int64_t max_rows = limits_.max_batch_size;
  while (!empty() && result.rows < max_rows) {
    level& from = next_level(now);
    entry& front = from.front();
    const int64_t remaining = front.rows - front.next_row;
    const int64_t taken = std::min(remaining, max_rows - result.rows);
    result.slices.push_back(slice{front.id, front.next_row, taken});
    result.rows += taken;
    waiting_rows_ -= taken;
    if (taken == remaining) {
      from.pop_front();
      waiting_requests_ -= 1;
    } else {
      front.next_row += taken; // stays at the front, keeps its arrival: due at once
    }
  }
  return result;
}

std::vector<batch_queue::request_id> batch_queue::expire(time_point now) {
  auto is_expired = [now](const entry& e) {
    return e.next_row == 0 && e.deadline <= now;
  };
  std::vector<request_id> expired;
  for (level& l : levels_) {
    const size_t before = expired.size();
    for (const entry& e : l) {
      if (is_expired(e)) {
        expired.push_back(e.id);
        waiting_rows_ -= e.rows;
      }
    }
    if (expired.size() != before)
      l.erase(std::remove_if(l.begin(), l.end(), is_expired), l.end());
  }
  waiting_requests_ -= expired.size();
  return expired;
}

std::pair<batch_queue::level*, batch_queue::level::iterator>
batch_queue::find(request_id id) {
  for (level& l : levels_) {
    auto it =
        std::find_if(l.begin(), l.end(), [id](const entry& e) { return e.id == id; });
    if (it != l.end())
      return {&l, it};
  }
  return {nullptr, {}};
}

void batch_queue::erase(level& from, level::iterator at) {
  waiting_rows_ -= at->rows - at->next_row;
  waiting_requests_ -= 1;
  from.erase(at);
}

bool batch_queue::cancel(request_id id) {
  auto [from, at] = find(id);
  if (from == nullptr || at->next_row != 0)
    return false;
  erase(*from, at);
  return true;
}

bool batch_queue::withdraw(request_id id) {
  auto [from, at] = find(id);
  if (from == nullptr)
    return false;
  erase(*from, at);
  return true;
}

std::optional<batch_queue::time_point> batch_queue::next_deadline() const {
  std::optional<time_point> earliest;
  for (const level& l : levels_)
    for (const entry& e : l)
      if (e.next_row == 0 && (!earliest || e.deadline < *earliest))
        earliest = e.deadline;
  return earliest;
}

} // namespace actorserve
