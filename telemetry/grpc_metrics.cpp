#include "telemetry/grpc_metrics.hpp"

#include <string>

#include <prometheus/counter.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include "telemetry/metrics.hpp"

namespace actorserve {

namespace {

constexpr std::array<std::string_view, 17> code_names{
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
};

} // namespace

grpc_metrics::grpc_metrics(prometheus::Registry& registry)
    : calls_(&prometheus::BuildCounter()
                  .Name("actorserve_grpc_requests_total")
                  .Help("gRPC calls by RPC and status code")
                  .Register(registry)) {
  auto& latency = prometheus::BuildHistogram()
                      .Name("actorserve_grpc_request_latency_seconds")
                      .Help("gRPC call latency in seconds by RPC")
                      .Register(registry);
  for (size_t i = 0; i < grpc_rpcs.size(); ++i)
    latency_[i] = &latency.Add({{"rpc", std::string{grpc_rpcs[i]}}}, request_buckets());
}

prometheus::Counter& grpc_metrics::counter(size_t rpc, size_t code) {
  auto& slot = counters_[rpc][code];
  if (auto* existing = slot.load(std::memory_order_acquire))
    return *existing;
  std::lock_guard lock{create_mutex_};
  if (slot.load(std::memory_order_relaxed) == nullptr)
    slot.store(&calls_->Add({{"rpc", std::string{grpc_rpcs[rpc]}},
                             {"code", std::string{code_names[code]}}}),
               std::memory_order_release);
  return *slot.load(std::memory_order_relaxed);
}

void grpc_metrics::observe(size_t rpc, int code, double seconds) {
  if (rpc >= grpc_rpcs.size())
    return;
  auto known = code >= 0 && static_cast<size_t>(code) < codes ? code : 2; // UNKNOWN
  counter(rpc, static_cast<size_t>(known)).Increment();
  latency_[rpc]->Observe(seconds < 0 ? 0 : seconds);
}

} // namespace actorserve
