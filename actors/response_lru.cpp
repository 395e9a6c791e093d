#include "actors/response_lru.hpp"

namespace actorserve {

response_lru::response_lru(int64_t max_bytes) : max_bytes_(max_bytes) {}

int64_t response_lru::cost(const std::string& key, const tensor& value) {
  // The key is held twice: in the entry and in the index.
  return entry_overhead + 2 * static_cast<int64_t>(key.size()) +
         static_cast<int64_t>(value.shape.size() * sizeof(int64_t) +
                              value.values.size() * sizeof(float));
}

const tensor* response_lru::find(const std::string& key) {
  auto found = index_.find(key);
  if (found == index_.end())
    return nullptr;
  entries_.splice(entries_.begin(), entries_, found->second);
  return &found->second->value;
}

void response_lru::put(const std::string& key, tensor value) {
  if (auto found = index_.find(key); found != index_.end())
    erase(found->second);
  auto charged = cost(key, value);
  if (charged > max_bytes_)
    return;
  while (bytes_ + charged > max_bytes_)
    erase(std::prev(entries_.end()));
  entries_.push_front(entry{key, std::move(value), charged});
  index_.emplace(key, entries_.begin());
  bytes_ += charged;
}

void response_lru::erase(entry_list::iterator position) {
  bytes_ -= position->cost;
  index_.erase(position->key);
  entries_.erase(position);
}

} // namespace actorserve
