#pragma once

// Prometheus metrics for GET /metrics (prometheus-cpp). Thread-safe: called
// from the HTTP threads and from actors on the CAF scheduler threads.
//
// Cardinality is bounded by construction, whatever the caller passes:
// - `method` is one of the HTTP methods httplib knows, anything else "OTHER";
// - `endpoint` is one of route_templates() (anything else is "unmatched"), so
//   a raw path handed over by mistake cannot create a series per path;
// - `http_status` is 100..599, anything else "other";
// - `reason` is overloaded, rate_limited or deadline_exceeded, else "other";
// - model and version must be the server's own names (from the repository),
//   never client input that did not resolve to a model: each distinct pair
//   creates its series once and keeps them for the life of the process.

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "telemetry/metrics_snapshot.hpp"
#include "telemetry/route_templates.hpp"

namespace prometheus {
class Counter;
class Gauge;
class Histogram;
class Registry;
template <typename T> class Family;
} // namespace prometheus

namespace actorserve {

/// The latency buckets of requests, in seconds, for every door.
const std::vector<double>& request_buckets();

class metrics {
public:
  /// Owns its prometheus::Registry; registers
  /// actorserve_build_info{version=ACTORSERVE_VERSION} 1.
  metrics();
  ~metrics();
  metrics(const metrics&) = delete;
  metrics& operator=(const metrics&) = delete;

  /// request_count_total{method,endpoint,http_status} and
  /// request_latency_seconds{endpoint}. `endpoint` is a route template (see
  /// route_template()), never a raw path. No allocation once a series exists.
  void observe_request(std::string_view method, std::string_view endpoint,
                       int http_status, double seconds);

  /// A prediction request of a model (v1 predict, OIP infer, TF Serving
  /// predict): actorserve_model_requests_total{model,code} (code "2xx",
  /// "4xx", "5xx" or "other") and actorserve_model_request_seconds{model}.
  /// `model` must be one the server hosts (see the class comment).
  void observe_model_request(const std::string& model, int http_status, double seconds);

  /// One forward call: actorserve_inference_seconds, actorserve_batch_size and
  /// actorserve_queue_wait_seconds{model,version}.
  void observe_inference(const std::string& model, const std::string& version,
                         double seconds, int64_t batch_size, double queue_wait_seconds);
  /// actorserve_queue_depth{model,version}.
  void set_queue_depth(const std::string& model, const std::string& version,
                       int64_t depth);
  /// actorserve_model_loads_total or actorserve_model_load_failures_total.
  void count_load(const std::string& model, const std::string& version, bool ok);
  /// actorserve_model_restarts_total.
  void count_restart(const std::string& model, const std::string& version);

  /// actorserve_rejected_requests_total{reason}: "overloaded", "rate_limited",
  /// "deadline_exceeded"; anything else is counted as "other".
  void count_rejection(std::string_view reason);
  /// actorserve_cancelled_requests_total{model,reason}: "client_gone" (its
  /// client closed the connection); anything else is counted as "other".
  void count_cancelled(const std::string& model, std::string_view reason);
  /// actorserve_job_store_size.
  void set_job_store_size(int64_t jobs);
  /// actorserve_jobs_total{result}: "succeeded", "failed", "requeued" (a
  /// lapsed lease); anything else is counted as "other".
  void count_jobs(std::string_view result, int64_t count = 1);
  /// actorserve_open_connections.
  void set_open_connections(int64_t connections);

  /// Prometheus text exposition format (version 0.0.4).
  std::string render() const;

  /// The registry, for the metrics of other parts (telemetry/grpc_metrics.hpp).
  std::shared_ptr<prometheus::Registry> registry() const;

  /// Every series as plain numbers (telemetry/metrics_snapshot.hpp).
  metrics_snapshot snapshot() const;

private:
  struct model_request_series {
    std::array<prometheus::Counter*, 4> by_code; // 2xx, 4xx, 5xx, other
    prometheus::Histogram* latency;
  };

  struct model_series {
    prometheus::Histogram* inference;
    prometheus::Histogram* batch_size;
    prometheus::Histogram* queue_wait;
    prometheus::Gauge* queue_depth;
    prometheus::Counter* loads;
    prometheus::Counter* load_failures;
    prometheus::Counter* restarts;
  };
  using version_map = std::map<std::string, model_series, std::less<>>;

  model_series& series_for(const std::string& model, const std::string& version);
  prometheus::Counter& request_counter(size_t method, size_t endpoint, int status);

  std::shared_ptr<prometheus::Registry> registry_;

  prometheus::Family<prometheus::Counter>* request_count_;
  std::array<prometheus::Histogram*, route_templates.size()> request_latency_{};
  mutable std::shared_mutex requests_mutex_;
  std::unordered_map<uint32_t, prometheus::Counter*> request_counters_;

  prometheus::Family<prometheus::Counter>* model_requests_;
  prometheus::Family<prometheus::Histogram>* model_request_seconds_;
  mutable std::shared_mutex model_requests_mutex_;
  std::map<std::string, model_request_series, std::less<>> model_request_series_;

  prometheus::Family<prometheus::Histogram>* inference_;
  prometheus::Family<prometheus::Histogram>* batch_size_;
  prometheus::Family<prometheus::Histogram>* queue_wait_;
  prometheus::Family<prometheus::Gauge>* queue_depth_;
  prometheus::Family<prometheus::Counter>* loads_;
  prometheus::Family<prometheus::Counter>* load_failures_;
  prometheus::Family<prometheus::Counter>* restarts_;
  prometheus::Family<prometheus::Counter>* cancellations_;
  mutable std::shared_mutex models_mutex_; // guards models_ and cancellations_by_model_
  std::map<std::string, version_map, std::less<>> models_;
  // model -> one counter per cancel reason
  std::map<std::string, std::array<prometheus::Counter*, 2>, std::less<>>
      cancellations_by_model_;

  std::array<prometheus::Counter*, 4> rejections_{};
  prometheus::Gauge* job_store_size_;
  prometheus::Gauge* open_connections_;
  std::array<prometheus::Counter*, 4> jobs_{};
};

} // namespace actorserve
