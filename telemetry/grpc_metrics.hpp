#pragma once

// Metrics of the gRPC door, beside the HTTP ones in the same registry:
// actorserve_grpc_requests_total{rpc,code} and
// actorserve_grpc_request_latency_seconds{rpc}. Thread-safe (gRPC's and
// CAF's threads). Cardinality is bounded: `rpc` is one of grpc_rpcs, `code`
// one of the 17 gRPC status codes.

#include <array>
#include <atomic>
#include <mutex>
#include <string_view>

namespace prometheus {
class Counter;
class Histogram;
class Registry;
template <typename T> class Family;
} // namespace prometheus

namespace actorserve {

/// The RPCs of inference.GRPCInferenceService, as labelled.
inline constexpr std::array<std::string_view, 9> grpc_rpcs{
    "ServerLive",      "ServerReady",         "ModelReady",
    "ServerMetadata",  "ModelMetadata",       "ModelInfer",
    "RepositoryIndex", "RepositoryModelLoad", "RepositoryModelUnload",
};

class grpc_metrics {
public:
  explicit grpc_metrics(prometheus::Registry& registry);

  /// One finished call of grpc_rpcs[rpc] with status `code` (0..16, as
  /// grpc::StatusCode numbers them).
  void observe(size_t rpc, int code, double seconds);

private:
  static constexpr size_t codes = 17;
  prometheus::Counter& counter(size_t rpc, size_t code);

  prometheus::Family<prometheus::Counter>* calls_;
  std::array<prometheus::Histogram*, grpc_rpcs.size()> latency_{};
  std::array<std::array<std::atomic<prometheus::Counter*>, codes>, grpc_rpcs.size()>
      counters_{};
  std::mutex create_mutex_;
};

} // namespace actorserve
