#include "telemetry/cache_metrics.hpp"

#include <prometheus/counter.h>
#include <prometheus/registry.h>

namespace actorserve {

cache_metrics::cache_metrics(prometheus::Registry& registry)
    : requests_(&prometheus::BuildCounter()
                     .Name("actorserve_cache_requests_total")
                     .Help("Predictions of models with a response cache, by model and "
                           "result (hit, miss, error: the store failed, not used)")
                     .Register(registry)) {}

void cache_metrics::count(const std::string& model, cache_result result) {
  std::lock_guard lock{mutex_};
  auto found = by_model_.find(model);
  if (found == by_model_.end()) {
    std::array<prometheus::Counter*, 3> counters{};
    const char* names[] = {"hit", "miss", "error"};
    for (size_t i = 0; i < counters.size(); ++i)
      counters[i] = &requests_->Add({{"model", model}, {"result", names[i]}});
    found = by_model_.emplace(model, counters).first;
  }
  found->second[static_cast<size_t>(result)]->Increment();
}

} // namespace actorserve
