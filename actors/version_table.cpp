#include "actors/version_table.hpp"

#include <algorithm>

#include "messages/error.hpp"

namespace actorserve {

void version_table::add(const std::string& version, batcher_actor batcher,
                        const compute_plan& plan) {
  auto& slot = versions_[version];
  slot.batcher = std::move(batcher);
  slot.status = version_status{version, version_state::loading, {},          0,
                               {},      plan.instances,         plan.threads};
  slot.current_weight = 0;
}

void version_table::mark_failed(const std::string& version, std::string error) {
  if (auto i = versions_.find(version); i != versions_.end()) {
    i->second.status.state = version_state::failed;
    i->second.status.error = std::move(error);
    i->second.batcher = batcher_actor{};
  }
}

batcher_actor version_table::retire(const std::string& version, version_state state) {
  auto i = versions_.find(version);
  if (i == versions_.end())
    return {};
  i->second.status.state = state;
  return std::exchange(i->second.batcher, batcher_actor{});
}

batcher_actor version_table::replace(const std::string& version, batcher_actor batcher,
                                     int64_t load_time_ms, const compute_plan& plan) {
  auto& slot = versions_[version];
  auto old = std::exchange(slot.batcher, std::move(batcher));
  slot.status =
      version_status{version, version_state::available, {},          load_time_ms,
                     {},      plan.instances,           plan.threads};
  return old;
}

bool version_table::is_available(const std::string& version) const {
  auto* slot = find(version);
  return slot && slot->status.state == version_state::available;
}

std::optional<std::string> version_table::version_of(const caf::actor_addr& addr) const {
  for (const auto& [name, slot] : versions_)
    if (slot.batcher && slot.batcher.address() == addr)
      return name;
  return std::nullopt;
}

size_t version_table::available_count() const {
  return static_cast<size_t>(
      std::count_if(versions_.begin(), versions_.end(), [](auto& v) {
        return v.second.status.state == version_state::available;
      }));
}

void version_table::set_traffic(std::string default_version,
                                std::map<std::string, int32_t> weights) {
  default_version_ = std::move(default_version);
  weights_ = std::move(weights);
  for (auto& [name, slot] : versions_)
    slot.current_weight = 0;
}

const version_table::entry* version_table::find(const std::string& version) const {
  auto i = versions_.find(version);
  return i == versions_.end() ? nullptr : &i->second;
}

std::string version_table::effective_default() const {
  if (auto* configured = find(default_version_);
      configured && configured->status.state == version_state::available)
    return default_version_;
  for (auto i = versions_.rbegin(); i != versions_.rend(); ++i)
    if (i->second.status.state == version_state::available)
      return i->first;
  return {};
}

std::optional<std::string> version_table::choose_weighted() {
  int64_t total = 0;
  entry* best = nullptr;
  const std::string* best_name = nullptr;
  for (auto& [name, weight] : weights_) {
    auto i = versions_.find(name);
    if (weight <= 0 || i == versions_.end() ||
        i->second.status.state != version_state::available)
      continue;
    auto& slot = i->second;
    slot.current_weight += weight;
    total += weight;
    if (!best || slot.current_weight > best->current_weight) {
      best = &slot;
      best_name = &i->first;
    }
  }
  if (!best)
    return std::nullopt;
  best->current_weight -= total;
  return *best_name;
}

caf::error version_table::not_serving_error() const {
  auto loading = std::any_of(versions_.begin(), versions_.end(), [](const auto& v) {
    return v.second.status.state == version_state::loading;
  });
  if (loading)
    return make_error(ec::model_loading, "the model has no serving version yet");
  return make_error(ec::unavailable, "the model has no available version");
}

caf::expected<std::pair<std::string, batcher_actor>>
version_table::choose(const std::string& pinned) {
  std::string version = pinned;
  if (!pinned.empty()) {
    auto* slot = find(pinned);
    if (!slot)
      return make_error(ec::version_not_found, "version " + pinned + " does not exist");
    if (slot->status.state == version_state::loading)
      return make_error(ec::model_loading, "version " + pinned + " is still loading");
    if (slot->status.state != version_state::available)
      return make_error(
          ec::unavailable,
          "version " + pinned + " is " + to_string(slot->status.state) +
              (slot->status.error.empty() ? std::string{} : ": " + slot->status.error));
  } else if (auto weighted = choose_weighted()) {
    version = *weighted;
  } else {
    version = effective_default();
    if (version.empty())
      return not_serving_error();
  }
  return std::make_pair(version, find(version)->batcher);
}

model_status version_table::status(const std::string& model) const {
  model_status result;
  result.name = model;
  result.default_version = effective_default();
  result.traffic = weights_;
  for (const auto& [name, slot] : versions_)
    result.versions.push_back(slot.status);
  return result;
}

} // namespace actorserve
