#pragma once

// The body of GET /api/v1/stats (../shared/API.md, "Operator pages"): the
// models as the registry lists them joined with their metrics. Every number
// is cumulative since the process started (counters, histogram buckets) or a
// current value (gauges, states): a reader computes rates and windowed
// quantiles from the differences of two snapshots, so the server keeps no
// per-viewer state and any number of dashboards can watch at once. Pure
// function, no sockets, no actors.

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "messages/payloads.hpp"
#include "telemetry/metrics_snapshot.hpp"

namespace actorserve {

/// What the server says about itself.
struct server_facts {
  std::string version;
  std::string node; // this node's name in a cluster, "" alone
  double uptime_s = 0;
  int64_t timestamp_ms = 0; // Unix time of the snapshot
  bool draining = false;
  int64_t open_connections = 0;
};

/// {"server", "models": [...], "nodes": [...], "totals"}; see README.md
/// ("Operator pages") for the fields.
nlohmann::json stats_json(const server_facts& server,
                          const std::vector<model_status>& models,
                          const metrics_snapshot& metrics);

/// A histogram as {"le": [...], "cumulative": [...], "count", "sum"}.
nlohmann::json to_json(const histogram_counts& histogram);

} // namespace actorserve
