#include "telemetry/metrics_snapshot.hpp"

#include <cmath>

#include <prometheus/metric_family.h>
#include <prometheus/registry.h>

#include "telemetry/metrics.hpp"

namespace actorserve {

void histogram_counts::add(const histogram_counts& other) {
  if (upper_bounds.empty() && count == 0) {
    *this = other;
    return;
  }
  if (upper_bounds == other.upper_bounds)
    for (size_t i = 0; i < cumulative.size(); ++i)
      cumulative[i] += other.cumulative[i];
  count += other.count;
  sum += other.sum;
}

std::string_view metric_sample::label(std::string_view name) const {
  auto found = labels.find(name);
  return found == labels.end() ? std::string_view{} : std::string_view{found->second};
}

namespace {

histogram_counts histogram_of(const prometheus::ClientMetric::Histogram& histogram) {
  histogram_counts counts;
  counts.count = histogram.sample_count;
  counts.sum = histogram.sample_sum;
  for (const auto& bucket : histogram.bucket) {
    if (std::isinf(bucket.upper_bound))
      continue; // +Inf is the count
    counts.upper_bounds.push_back(bucket.upper_bound);
    counts.cumulative.push_back(bucket.cumulative_count);
  }
  return counts;
}

metric_sample sample_of(prometheus::MetricType type,
                        const prometheus::ClientMetric& metric) {
  metric_sample sample;
  for (const auto& label : metric.label)
    sample.labels.emplace(label.name, label.value);
  switch (type) {
    case prometheus::MetricType::Counter:
      sample.value = metric.counter.value;
      break;
    case prometheus::MetricType::Gauge:
      sample.value = metric.gauge.value;
      break;
    case prometheus::MetricType::Histogram:
      sample.histogram = histogram_of(metric.histogram);
      sample.value = static_cast<double>(metric.histogram.sample_count);
      break;
    default:
      sample.value = metric.untyped.value;
      break;
  }
  return sample;
}

} // namespace

metrics_snapshot to_snapshot(const std::vector<prometheus::MetricFamily>& families) {
  metrics_snapshot snapshot;
  for (const auto& family : families) {
    auto& samples = snapshot[family.name];
    for (const auto& metric : family.metric)
      samples.push_back(sample_of(family.type, metric));
  }
  return snapshot;
}

metrics_snapshot metrics::snapshot() const {
  return to_snapshot(registry_->Collect());
}

} // namespace actorserve
