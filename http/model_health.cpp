#include "http/model_health.hpp"

#include <algorithm>

#include "http/bridge.hpp"

namespace actorserve {

namespace {

/// The registry answers from its own table; longer means it is stuck.
constexpr std::chrono::milliseconds refresh_timeout{1000};

} // namespace

model_health_view::model_health_view(caf::actor_system& system, registry_actor registry,
                                     std::chrono::milliseconds refresh_interval)
    : system_(system), registry_(std::move(registry)),
      refresh_interval_(refresh_interval) {}

model_health model_health_view::current() {
  std::lock_guard<std::mutex> guard{mutex_};
  auto now = clock::now();
  if (now - refreshed_ < refresh_interval_)
    return view_;
  auto statuses =
      ask<std::vector<model_status>>(system_, registry_, refresh_timeout, atom::list_v);
  if (statuses) {
    const auto& all = std::get<0>(*statuses);
    view_ = {std::any_of(all.begin(), all.end(), is_serving), all.size()};
    refreshed_ = now;
  }
  return view_;
}

} // namespace actorserve
