#pragma once

// Metrics of the response cache, beside the others in the same registry:
// actorserve_cache_requests_total{model,result} with result "hit", "miss" or
// "error" (the store failed and the request went to the model uncached).
// Thread-safe. Cardinality is bounded: `model` is one the server hosts (the
// router's own name), `result` one of three.

#include <array>
#include <map>
#include <mutex>
#include <string>

namespace prometheus {
class Counter;
class Registry;
template <typename T> class Family;
} // namespace prometheus

namespace actorserve {

enum class cache_result : uint8_t { hit, miss, error };

class cache_metrics {
public:
  explicit cache_metrics(prometheus::Registry& registry);

  void count(const std::string& model, cache_result result);

private:
  prometheus::Family<prometheus::Counter>* requests_;
  std::mutex mutex_;
  std::map<std::string, std::array<prometheus::Counter*, 3>, std::less<>> by_model_;
};

} // namespace actorserve
