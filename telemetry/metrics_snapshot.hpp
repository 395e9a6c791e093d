#pragma once

// Every metric series at one moment, as plain numbers: what GET /api/v1/stats
// is built from (the same registry GET /metrics renders, so the two never
// disagree). Counters and histograms are cumulative since the process
// started; a reader takes rates and windowed quantiles from the differences
// of two snapshots, as Prometheus does. Plain data, safe to copy anywhere.

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace prometheus {
struct MetricFamily;
} // namespace prometheus

namespace actorserve {

/// One histogram series: counts of observations <= each upper bound
/// (cumulative, without +Inf), the total count and the sum.
struct histogram_counts {
  std::vector<double> upper_bounds;
  std::vector<uint64_t> cumulative;
  uint64_t count = 0;
  double sum = 0;

  /// Adds another series with the same bounds (else only count and sum).
  void add(const histogram_counts& other);
};

/// One series: its labels and its value (counter, gauge) or histogram.
struct metric_sample {
  std::map<std::string, std::string, std::less<>> labels;
  double value = 0;
  histogram_counts histogram;

  /// The label's value, "" when the series has no such label.
  std::string_view label(std::string_view name) const;
};

/// Metric family name -> its series. A family with no series yet (say, a
/// per-model family before the first model loads) may be absent.
using metrics_snapshot = std::map<std::string, std::vector<metric_sample>, std::less<>>;

/// The plain form of what a prometheus::Registry collected.
metrics_snapshot to_snapshot(const std::vector<prometheus::MetricFamily>& families);

} // namespace actorserve
