#include "telemetry/metrics.hpp"

#include <algorithm>
#include <cmath>
#include <utility>
#include <vector>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

namespace actorserve {

namespace {

// --- Label values -----------------------------------------------------------

constexpr std::array<std::string_view, 10> methods{
    "GET",     "HEAD",  "POST",    "PUT",   "DELETE",
    "OPTIONS", "PATCH", "CONNECT", "TRACE", "OTHER"};

size_t method_index(std::string_view method) {
  for (size_t i = 0; i + 1 < methods.size(); ++i)
    if (methods[i] == method)
      return i;
  return methods.size() - 1;
}

constexpr std::array<std::string_view, 4> rejection_reasons{"overloaded", "rate_limited",
                                                            "deadline_exceeded", "other"};

constexpr std::array<std::string_view, 2> cancel_reasons{"client_gone", "other"};

constexpr std::array<std::string_view, 4> job_results{"succeeded", "failed", "requeued",
                                                      "other"};

constexpr std::array<std::string_view, 4> status_codes{"2xx", "4xx", "5xx", "other"};

size_t status_code_index(int status) {
  if (status >= 200 && status < 300)
    return 0;
  if (status >= 400 && status < 500)
    return 1;
  if (status >= 500 && status < 600)
    return 2;
  return 3;
}

/// The index of `reason` in `reasons`, whose last entry ("other") takes any
/// reason not listed: labels stay bounded whatever the caller passes.
template <size_t N>
size_t reason_index(const std::array<std::string_view, N>& reasons,
                    std::string_view reason) {
  size_t i = 0;
  while (i + 1 < reasons.size() && reasons[i] != reason)
    ++i;
  return i;
}

/// Label values must be UTF-8 in the exposition format; invalid bytes become '?'.
/// (Model folder names are usually ASCII; this is the slow path, once per series.)
std::string utf8_label(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  size_t i = 0;
  while (i < in.size()) {
    auto c = static_cast<unsigned char>(in[i]);
    size_t len = c < 0x80           ? 1
                 : (c >> 5) == 0x6  ? 2
                 : (c >> 4) == 0xE  ? 3
                 : (c >> 3) == 0x1E ? 4
                                    : 0;
    bool ok = len > 0 && i + len <= in.size();
    for (size_t k = 1; ok && k < len; ++k)
      ok = (static_cast<unsigned char>(in[i + k]) & 0xC0) == 0x80;
    if (ok && len > 1) {
      // Reject overlong forms, surrogates and code points past U+10FFFF.
      uint32_t cp = c & (0xFF >> (len + 1));
      for (size_t k = 1; k < len; ++k)
        cp = (cp << 6) | (static_cast<unsigned char>(in[i + k]) & 0x3F);
      static constexpr uint32_t min_cp[] = {0, 0, 0x80, 0x800, 0x10000};
      ok = cp >= min_cp[len] && cp <= 0x10FFFF && (cp < 0xD800 || cp > 0xDFFF);
    }
    if (ok) {
      out.append(in.substr(i, len));
      i += len;
    } else {
      out.push_back('?');
      ++i;
    }
  }
  return out;
}

/// Histograms take seconds and sizes from clocks and counters; a negative or NaN
/// value would poison _sum forever.
double sane(double value) {
  return value >= 0 ? value : 0; // NaN compares false
}

// --- Buckets ----------------------------------------------------------------

const prometheus::Histogram::BucketBoundaries& model_time_buckets() {
  static const prometheus::Histogram::BucketBoundaries buckets{
      0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
      0.05,   0.1,     0.25,   0.5,   1,      2.5,   5,    10};
  return buckets;
}

const prometheus::Histogram::BucketBoundaries& batch_buckets() {
  static const prometheus::Histogram::BucketBoundaries buckets{1,  2,   4,   8,   16,  32,
                                                               64, 128, 256, 512, 1024};
  return buckets;
}

} // namespace

// --- metrics ------------------------------------------------------------------

metrics::metrics() : registry_{std::make_shared<prometheus::Registry>()} {
  auto& registry = *registry_;

  request_count_ = &prometheus::BuildCounter()
                        .Name("request_count_total")
                        .Help("HTTP requests by method, route template and status")
                        .Register(registry);
  auto& latency = prometheus::BuildHistogram()
                      .Name("request_latency_seconds")
                      .Help("HTTP request latency in seconds by route template")
                      .Register(registry);
  for (size_t i = 0; i < route_templates.size(); ++i)
    request_latency_[i] =
        &latency.Add({{"endpoint", std::string{route_templates[i]}}}, request_buckets());

  model_requests_ = &prometheus::BuildCounter()
                         .Name("actorserve_model_requests_total")
                         .Help("Prediction requests by model and status class")
                         .Register(registry);
  model_request_seconds_ =
      &prometheus::BuildHistogram()
           .Name("actorserve_model_request_seconds")
           .Help("Prediction request latency in seconds by model, as the edge saw it")
           .Register(registry);

  inference_ = &prometheus::BuildHistogram()
                    .Name("actorserve_inference_seconds")
                    .Help("Time of one forward call (one batch) in seconds")
                    .Register(registry);
  batch_size_ = &prometheus::BuildHistogram()
                     .Name("actorserve_batch_size")
                     .Help("Instances per forward call")
                     .Register(registry);
  queue_wait_ =
      &prometheus::BuildHistogram()
           .Name("actorserve_queue_wait_seconds")
           .Help("Time requests waited in the batch queue before their forward call")
           .Register(registry);
  queue_depth_ = &prometheus::BuildGauge()
                      .Name("actorserve_queue_depth")
                      .Help("Requests waiting in the batch queue")
                      .Register(registry);
  loads_ = &prometheus::BuildCounter()
                .Name("actorserve_model_loads_total")
                .Help("Model version loads that succeeded")
                .Register(registry);
  load_failures_ = &prometheus::BuildCounter()
                        .Name("actorserve_model_load_failures_total")
                        .Help("Model version loads that failed")
                        .Register(registry);
  restarts_ = &prometheus::BuildCounter()
                   .Name("actorserve_model_restarts_total")
                   .Help("Model instances restarted after a failure")
                   .Register(registry);

  auto& rejections = prometheus::BuildCounter()
                         .Name("actorserve_rejected_requests_total")
                         .Help("Requests turned away before inference, by reason")
                         .Register(registry);
  for (size_t i = 0; i < rejection_reasons.size(); ++i)
    rejections_[i] = &rejections.Add({{"reason", std::string{rejection_reasons[i]}}});

  cancellations_ =
      &prometheus::BuildCounter()
           .Name("actorserve_cancelled_requests_total")
           .Help("Requests withdrawn before their answer, by model and reason")
           .Register(registry);

  job_store_size_ = &prometheus::BuildGauge()
                         .Name("actorserve_job_store_size")
                         .Help("Jobs held by the job store (queued, running or finished)")
                         .Register(registry)
                         .Add({});

  auto& jobs =
      prometheus::BuildCounter()
          .Name("actorserve_jobs_total")
          .Help("Async jobs this node's job store finished (succeeded, failed) or "
                "put back in the queue after their node's lease lapsed (requeued)")
          .Register(registry);
  for (size_t i = 0; i < job_results.size(); ++i)
    jobs_[i] = &jobs.Add({{"result", std::string{job_results[i]}}});

  open_connections_ =
      &prometheus::BuildGauge()
           .Name("actorserve_open_connections")
           .Help("Open client connections of the HTTP edge, idle ones included")
           .Register(registry)
           .Add({});

  prometheus::BuildGauge()
      .Name("actorserve_build_info")
      .Help("Build information; the value is always 1")
      .Register(registry)
      .Add({{"version", ACTORSERVE_VERSION}})
      .Set(1);
}

metrics::~metrics() = default;

prometheus::Counter& metrics::request_counter(size_t method, size_t endpoint,
                                              int status) {
  bool known_status = status >= 100 && status <= 599;
  uint32_t key = static_cast<uint32_t>(
      (method * route_templates.size() + endpoint) * 1000 + (known_status ? status : 0));
  {
    std::shared_lock lock{requests_mutex_};
    auto found = request_counters_.find(key);
    if (found != request_counters_.end())
      return *found->second;
  }
  std::unique_lock lock{requests_mutex_};
  auto& slot = request_counters_[key];
  if (!slot)
    slot = &request_count_->Add(
        {{"method", std::string{methods[method]}},
         {"endpoint", std::string{route_templates[endpoint]}},
         {"http_status", known_status ? std::to_string(status) : "other"}});
  return *slot;
}

void metrics::observe_request(std::string_view method, std::string_view endpoint,
                              int http_status, double seconds) {
  auto route = route_template_index(endpoint);
  request_counter(method_index(method), route, http_status).Increment();
  request_latency_[route]->Observe(sane(seconds));
}

void metrics::observe_model_request(const std::string& model, int http_status,
                                    double seconds) {
  auto code = status_code_index(http_status);
  {
    std::shared_lock lock{model_requests_mutex_};
    if (auto found = model_request_series_.find(model);
        found != model_request_series_.end()) {
      found->second.by_code[code]->Increment();
      found->second.latency->Observe(sane(seconds));
      return;
    }
  }
  std::unique_lock lock{model_requests_mutex_};
  auto [slot, added] = model_request_series_.try_emplace(model);
  if (added) {
    auto name = utf8_label(model);
    for (size_t c = 0; c < status_codes.size(); ++c)
      slot->second.by_code[c] = &model_requests_->Add(
          {{"model", name}, {"code", std::string{status_codes[c]}}});
    slot->second.latency =
        &model_request_seconds_->Add({{"model", name}}, model_time_buckets());
  }
  slot->second.by_code[code]->Increment();
  slot->second.latency->Observe(sane(seconds));
}

metrics::model_series& metrics::series_for(const std::string& model,
                                           const std::string& version) {
  {
    std::shared_lock lock{models_mutex_};
    auto versions = models_.find(model);
    if (versions != models_.end()) {
      auto found = versions->second.find(version);
      if (found != versions->second.end())
        return found->second;
    }
  }
  std::unique_lock lock{models_mutex_};
  auto& versions = models_[model];
  auto found = versions.find(version);
  if (found != versions.end())
    return found->second;
  prometheus::Labels labels{{"model", utf8_label(model)},
                            {"version", utf8_label(version)}};
  model_series series{&inference_->Add(labels, model_time_buckets()),
                      &batch_size_->Add(labels, batch_buckets()),
                      &queue_wait_->Add(labels, model_time_buckets()),
                      &queue_depth_->Add(labels),
                      &loads_->Add(labels),
                      &load_failures_->Add(labels),
                      &restarts_->Add(labels)};
  // std::map nodes never move: the reference stays valid after the lock.
  return versions.emplace(version, series).first->second;
}

void metrics::observe_inference(const std::string& model, const std::string& version,
                                double seconds, int64_t batch_size,
                                double queue_wait_seconds) {
  auto& series = series_for(model, version);
  series.inference->Observe(sane(seconds));
  series.batch_size->Observe(sane(static_cast<double>(batch_size)));
  series.queue_wait->Observe(sane(queue_wait_seconds));
}

void metrics::set_queue_depth(const std::string& model, const std::string& version,
                              int64_t depth) {
  series_for(model, version).queue_depth->Set(static_cast<double>(depth));
}

void metrics::count_load(const std::string& model, const std::string& version, bool ok) {
  auto& series = series_for(model, version);
  (ok ? series.loads : series.load_failures)->Increment();
}

void metrics::count_restart(const std::string& model, const std::string& version) {
  series_for(model, version).restarts->Increment();
}

void metrics::count_rejection(std::string_view reason) {
  rejections_[reason_index(rejection_reasons, reason)]->Increment();
}

void metrics::count_cancelled(const std::string& model, std::string_view reason) {
  auto i = reason_index(cancel_reasons, reason);
  {
    std::shared_lock lock{models_mutex_};
    if (auto found = cancellations_by_model_.find(model);
        found != cancellations_by_model_.end()) {
      found->second[i]->Increment();
      return;
    }
  }
  std::unique_lock lock{models_mutex_};
  auto [slot, added] = cancellations_by_model_.try_emplace(model);
  if (added)
    for (size_t r = 0; r < cancel_reasons.size(); ++r)
      slot->second[r] = &cancellations_->Add(
          {{"model", utf8_label(model)}, {"reason", std::string{cancel_reasons[r]}}});
  slot->second[i]->Increment();
}

void metrics::set_job_store_size(int64_t jobs) {
  job_store_size_->Set(static_cast<double>(jobs));
}

void metrics::count_jobs(std::string_view result, int64_t count) {
  jobs_[reason_index(job_results, result)]->Increment(static_cast<double>(count));
}

void metrics::set_open_connections(int64_t connections) {
  open_connections_->Set(static_cast<double>(connections));
}

std::string metrics::render() const {
  return prometheus::TextSerializer{}.Serialize(registry_->Collect());
}

const std::vector<double>& request_buckets() {
  static const prometheus::Histogram::BucketBoundaries buckets{
      0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
  return buckets;
}

std::shared_ptr<prometheus::Registry> metrics::registry() const {
  return registry_;
}

} // namespace actorserve
