#include "actors/replica_table.hpp"

namespace actorserve {

std::vector<std::string> replica_table::update(const std::vector<member>& members) {
  std::map<std::string, slot> next;
  for (const auto& info : members) {
    auto& entry = next[info.node];
    entry.info = info;
    if (auto i = members_.find(info.node); i != members_.end())
      entry.outstanding = i->second.outstanding;
  }
  std::vector<std::string> left;
  for (const auto& [node, entry] : members_)
    if (next.count(node) == 0)
      left.push_back(node);
  members_ = std::move(next);
  return left;
}

bool replica_table::remove(const std::string& node) {
  return members_.erase(node) > 0;
}

std::optional<std::string>
replica_table::least_outstanding(bool (*eligible)(const slot&, const std::string&),
                                 const std::string& pinned) {
  const slot* best = nullptr;
  std::vector<const slot*> tied;
  for (const auto& [node, entry] : members_) {
    if (!eligible(entry, pinned))
      continue;
    if (!best || entry.outstanding < best->outstanding) {
      best = &entry;
      tied.assign({&entry});
    } else if (entry.outstanding == best->outstanding) {
      tied.push_back(&entry);
    }
  }
  if (!best)
    return std::nullopt;
  for (const auto* entry : tied)
    if (entry->info.local)
      return entry->info.node;
  return tied[turn_++ % tied.size()]->info.node;
}

std::optional<std::string> replica_table::choose(const std::string& pinned) {
  auto serves = [](const slot& entry, const std::string& version) {
    return version.empty() ? !entry.info.versions.empty()
                           : entry.info.versions.count(version) > 0;
  };
  auto any = [](const slot&, const std::string&) { return true; };
  if (auto node = least_outstanding(serves, pinned))
    return node;
  return least_outstanding(any, pinned);
}

void replica_table::started(const std::string& node) {
  if (auto i = members_.find(node); i != members_.end())
    ++i->second.outstanding;
}

void replica_table::finished(const std::string& node) {
  if (auto i = members_.find(node); i != members_.end() && i->second.outstanding > 0)
    --i->second.outstanding;
}

int64_t replica_table::outstanding(const std::string& node) const {
  auto i = members_.find(node);
  return i == members_.end() ? 0 : i->second.outstanding;
}

} // namespace actorserve
