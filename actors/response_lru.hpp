#pragma once

// The memory store of the response cache: key -> a model's output tensor,
// least recently used first out, bounded in bytes (keys, shapes and values,
// plus a fixed overhead per entry). Plain data, CAF-free, not thread-safe:
// owned by the memory cache actor (actors/response_cache.hpp).

#include <cstdint>
#include <list>
#include <string>
#include <unordered_map>

#include "messages/payloads.hpp"

namespace actorserve {

class response_lru {
public:
  /// Bookkeeping charged per entry besides its key and tensor (list node,
  /// hash node, vectors' headers), so that many tiny entries are bounded too.
  static constexpr int64_t entry_overhead = 128;

  /// Holds at most `max_bytes` (0: holds nothing).
  explicit response_lru(int64_t max_bytes);

  /// The entry under `key`, now the most recently used; null when absent.
  /// Valid until the next put.
  const tensor* find(const std::string& key);

  /// Stores (or replaces) the entry under `key` as the most recently used,
  /// evicting the least recently used until it fits. An entry larger than
  /// the whole bound is not stored.
  void put(const std::string& key, tensor value);

  /// What one entry is charged.
  static int64_t cost(const std::string& key, const tensor& value);

  int64_t bytes() const { return bytes_; }
  size_t size() const { return index_.size(); }

private:
  struct entry {
    std::string key;
    tensor value;
    int64_t cost = 0;
  };
  using entry_list = std::list<entry>; // most recently used first

  void erase(entry_list::iterator position);

  int64_t max_bytes_;
  int64_t bytes_ = 0;
  entry_list entries_;
  std::unordered_map<std::string, entry_list::iterator> index_;
};

} // namespace actorserve
