#include "actors/batch_queue.hpp"

#include <algorithm>
#include <cassert>

namespace actorserve {

namespace {

/// The index of the lowest set bit; bits != 0.
size_t lowest_bit(uint32_t bits) {
  return static_cast<size_t>(__builtin_ctz(bits));
}

} // namespace

batch_queue::batch_queue(limits config) : limits_(config) {
  // parse_model_config validates these; a batch of 0 rows would never drain.
  assert(limits_.max_batch_size >= 1);
  assert(limits_.max_queue_delay.count() >= 0);
  assert(limits_.max_queue_size >= 0);
  assert(limits_.priority_levels >= 1 && limits_.priority_levels <= max_levels);
  levels_.resize(static_cast<size_t>(std::clamp(limits_.priority_levels, 1, max_levels)));
}

inline void batch_queue::note_if_emptied(size_t index) {
  if (levels_[index].empty())
    nonempty_ &= ~(1u << index);
}

inline size_t batch_queue::level_of(int32_t priority) const {
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
  const size_t index = level_of(priority);
  levels_[index].push_back(entry{id, rows, 0, arrival, deadline});
  nonempty_ |= 1u << index;
  waiting_requests_ += 1;
  waiting_rows_ += rows;
  return true;
}

inline std::optional<batch_queue::time_point> batch_queue::oldest_arrival() const {
  if (nonempty_ == 0)
    return std::nullopt;
  // Each level is in arrival order, so its front is its longest waiting.
  time_point oldest = levels_[lowest_bit(nonempty_)].front().arrival;
  for (uint32_t bits = nonempty_ & (nonempty_ - 1); bits != 0; bits &= bits - 1)
    oldest = std::min(oldest, levels_[lowest_bit(bits)].front().arrival);
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

inline size_t batch_queue::next_level(time_point now) const {
  assert(nonempty_ != 0);
  const size_t highest = lowest_bit(nonempty_);
  if ((nonempty_ & (nonempty_ - 1)) == 0)
    return highest; // one level waits: nothing to overtake
  size_t starving = levels_.size();
  for (uint32_t bits = nonempty_; bits != 0; bits &= bits - 1) {
    const size_t index = lowest_bit(bits);
    const time_point arrival = levels_[index].front().arrival;
    if (now - arrival >= limits_.max_priority_wait &&
        (starving == levels_.size() || arrival < levels_[starving].front().arrival))
      starving = index;
  }
  return starving != levels_.size() ? starving : highest;
}

batch_queue::batch batch_queue::take_batch(time_point now) {
  batch result;
  const int64_t max_rows = limits_.max_batch_size;
  while (!empty() && result.rows < max_rows) {
    const size_t index = next_level(now);
    level& from = levels_[index];
    entry& front = from.front();
    const int64_t remaining = front.rows - front.next_row;
    const int64_t taken = std::min(remaining, max_rows - result.rows);
    result.slices.push_back(slice{front.id, front.next_row, taken});
    result.rows += taken;
    waiting_rows_ -= taken;
    if (taken == remaining) {
      from.pop_front();
      note_if_emptied(index);
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
  for (size_t index = 0; index < levels_.size(); ++index) {
    level& l = levels_[index];
    const size_t before = expired.size();
    for (const entry& e : l) {
      if (is_expired(e)) {
        expired.push_back(e.id);
        waiting_rows_ -= e.rows;
      }
    }
    if (expired.size() != before) {
      l.erase(std::remove_if(l.begin(), l.end(), is_expired), l.end());
      note_if_emptied(index);
    }
  }
  waiting_requests_ -= expired.size();
  return expired;
}

std::pair<size_t, batch_queue::level::iterator> batch_queue::find(request_id id) {
  for (size_t index = 0; index < levels_.size(); ++index) {
    level& l = levels_[index];
    auto it =
        std::find_if(l.begin(), l.end(), [id](const entry& e) { return e.id == id; });
    if (it != l.end())
      return {index, it};
  }
  return {levels_.size(), {}};
}

void batch_queue::erase(size_t index, level::iterator at) {
  waiting_rows_ -= at->rows - at->next_row;
  waiting_requests_ -= 1;
  levels_[index].erase(at);
  note_if_emptied(index);
}

bool batch_queue::cancel(request_id id) {
  auto [index, at] = find(id);
  if (index == levels_.size() || at->next_row != 0)
    return false;
  erase(index, at);
  return true;
}

bool batch_queue::withdraw(request_id id) {
  auto [index, at] = find(id);
  if (index == levels_.size())
    return false;
  erase(index, at);
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
