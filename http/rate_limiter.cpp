#include "http/rate_limiter.hpp"

#include <algorithm>
#include <cmath>

namespace actorserve {

namespace {

/// When the table is full, sweep at most this often (a sweep is O(clients)).
constexpr std::chrono::seconds full_table_sweep_gap{1};

double seconds_between(rate_limiter::clock::time_point from,
                       rate_limiter::clock::time_point to) {
  return std::max(0.0, std::chrono::duration<double>(to - from).count());
}

} // namespace

rate_limiter::rate_limiter(rate_limiter_options options, now_function now)
    : options_(options), now_(std::move(now)), last_sweep_(now_()) {
  for (auto caller : {role::none, role::predict, role::admin})
    overflow_[static_cast<size_t>(caller)] = {limit_for(caller).burst, last_sweep_};
}

const rate_limit& rate_limiter::limit_for(role caller) const {
  switch (caller) {
    case role::predict:
      return options_.predict;
    case role::admin:
      return options_.admin;
    case role::none:
      break;
  }
  return options_.anonymous;
}

std::optional<std::chrono::seconds> rate_limiter::acquire(const std::string& client,
                                                          role caller) {
  const auto& limit = limit_for(caller);
  if (limit.per_s <= 0)
    return std::nullopt;
  std::lock_guard<std::mutex> guard{mutex_};
  auto now = now_();
  if (now - last_sweep_ >= options_.sweep_interval)
    sweep_locked(now);
  auto& state = bucket_for_locked(client, caller, limit, now);
  state.tokens = std::min(
      limit.burst, state.tokens + seconds_between(state.updated, now) * limit.per_s);
  state.updated = now;
  if (state.tokens >= 1) {
    state.tokens -= 1;
    return std::nullopt;
  }
  auto wait = std::ceil((1 - state.tokens) / limit.per_s);
  return std::chrono::seconds{std::max<int64_t>(1, static_cast<int64_t>(wait))};
}

size_t rate_limiter::tracked_clients() const {
  std::lock_guard<std::mutex> guard{mutex_};
  return buckets_.size();
}

void rate_limiter::sweep_locked(clock::time_point now) {
  last_sweep_ = now;
  for (auto it = buckets_.begin(); it != buckets_.end();) {
    const auto& limit = limit_for(it->second.caller);
    const auto& state = it->second.state;
    bool refilled =
        state.tokens + seconds_between(state.updated, now) * limit.per_s >= limit.burst;
    it = refilled ? buckets_.erase(it) : std::next(it);
  }
}

rate_limiter::bucket& rate_limiter::bucket_for_locked(const std::string& client,
                                                      role caller,
                                                      const rate_limit& limit,
                                                      clock::time_point now) {
  if (auto found = buckets_.find(client); found != buckets_.end()) {
    found->second.caller = caller; // a rotated key may have changed its role
    return found->second.state;
  }
  if (buckets_.size() >= options_.max_clients &&
      now - last_sweep_ >= full_table_sweep_gap)
    sweep_locked(now);
  if (buckets_.size() >= options_.max_clients)
    return overflow_[static_cast<size_t>(caller)];
  return buckets_.emplace(client, tracked_bucket{{limit.burst, now}, caller})
      .first->second.state;
}

} // namespace actorserve
