#include "http/stats_json.hpp"

#include <map>
#include <set>

#include "protocols/status_json.hpp"

namespace actorserve {

namespace {

using json = nlohmann::json;

/// The samples of one family, or none while it has no series.
const std::vector<metric_sample>& family(const metrics_snapshot& metrics,
                                         std::string_view name) {
  static const std::vector<metric_sample> none;
  auto found = metrics.find(name);
  return found == metrics.end() ? none : found->second;
}

/// Sum of a family's values over the series whose `label` is `value`.
double sum_where(const metrics_snapshot& metrics, std::string_view name,
                 std::string_view label, std::string_view value) {
  double sum = 0;
  for (const auto& sample : family(metrics, name))
    if (sample.label(label) == value)
      sum += sample.value;
  return sum;
}

/// The histograms of a family whose `model` label is `model`, added up.
histogram_counts model_histogram(const metrics_snapshot& metrics, std::string_view name,
                                 std::string_view model) {
  histogram_counts total;
  for (const auto& sample : family(metrics, name))
    if (sample.label("model") == model)
      total.add(sample.histogram);
  return total;
}

/// {"2xx", "4xx", "5xx", "other", "total"} of a model's predictions.
json request_counts(const metrics_snapshot& metrics, std::string_view model) {
  json counts{{"2xx", 0}, {"4xx", 0}, {"5xx", 0}, {"other", 0}};
  double total = 0;
  for (const auto& sample : family(metrics, "actorserve_model_requests_total"))
    if (sample.label("model") == model) {
      std::string code{sample.label("code")};
      if (counts.contains(code))
        counts[code] = counts[code].get<double>() + sample.value;
      total += sample.value;
    }
  counts["total"] = total;
  return counts;
}

/// {"hit", "miss"}, or null while the model has no cache series (no response
/// cache, or not enabled for it).
json cache_counts(const metrics_snapshot& metrics, std::string_view model) {
  json counts{{"hit", 0.0}, {"miss", 0.0}};
  bool any = false;
  for (const auto& sample : family(metrics, "actorserve_cache_requests_total"))
    if (sample.label("model") == model) {
      std::string result{sample.label("result")};
      if (counts.contains(result))
        counts[result] = counts[result].get<double>() + sample.value;
      any = true;
    }
  return any ? counts : json(nullptr);
}

/// The gauge of one model version, 0 when it has no series.
double version_value(const metrics_snapshot& metrics, std::string_view name,
                     std::string_view model, std::string_view version) {
  for (const auto& sample : family(metrics, name))
    if (sample.label("model") == model && sample.label("version") == version)
      return sample.value;
  return 0;
}

json model_json(const model_status& status, const metrics_snapshot& metrics) {
  auto result = to_json(status);
  double queue_depth = 0;
  for (auto& version : result["versions"]) {
    auto name = version["version"].get<std::string>();
    auto depth = version_value(metrics, "actorserve_queue_depth", status.name, name);
    version["queue_depth"] = depth;
    queue_depth += depth;
  }
  auto batches = model_histogram(metrics, "actorserve_batch_size", status.name);
  result["requests"] = request_counts(metrics, status.name);
  result["latency_seconds"] =
      to_json(model_histogram(metrics, "actorserve_model_request_seconds", status.name));
  result["inference_seconds"] =
      to_json(model_histogram(metrics, "actorserve_inference_seconds", status.name));
  result["queue_wait_seconds"] =
      to_json(model_histogram(metrics, "actorserve_queue_wait_seconds", status.name));
  result["batches"] = batches.count;
  result["batched_rows"] = batches.sum;
  result["queue_depth"] = queue_depth;
  result["cache"] = cache_counts(metrics, status.name);
  result["cancelled"] =
      sum_where(metrics, "actorserve_cancelled_requests_total", "model", status.name);
  result["restarts"] =
      sum_where(metrics, "actorserve_model_restarts_total", "model", status.name);
  result["load_failures"] =
      sum_where(metrics, "actorserve_model_load_failures_total", "model", status.name);
  return result;
}

/// The nodes serving the models: every node named by a version, this node
/// first (a version of this node's own models names no node outside a
/// cluster).
json nodes_json(const server_facts& server, const std::vector<model_status>& models) {
  std::map<std::string, std::set<std::string>> hosted; // node -> models
  hosted[server.node];
  for (const auto& model : models)
    for (const auto& version : model.versions)
      hosted[version.node].insert(model.name);
  if (!server.node.empty() && hosted.count("")) {
    hosted[server.node].merge(hosted[""]);
    hosted.erase("");
  }
  json nodes = json::array();
  auto add = [&](const std::string& name, const std::set<std::string>& names) {
    nodes.push_back({{"name", name.empty() ? "local" : name},
                     {"local", name == server.node},
                     {"models", names}});
  };
  add(server.node, hosted[server.node]);
  for (const auto& [name, names] : hosted)
    if (name != server.node)
      add(name, names);
  return nodes;
}

/// Every HTTP request by status class, and every rejection by reason.
json totals_json(const metrics_snapshot& metrics) {
  std::map<std::string, double> by_class;
  for (const auto& sample : family(metrics, "request_count_total")) {
    auto status = sample.label("http_status");
    by_class[status.empty() || status == "other" ? "other"
                                                 : std::string{status[0]} + "xx"] +=
        sample.value;
  }
  std::map<std::string, double> rejected;
  for (const auto& sample : family(metrics, "actorserve_rejected_requests_total"))
    rejected[std::string{sample.label("reason")}] += sample.value;
  return {{"http_requests", by_class}, {"rejected", rejected}};
}

} // namespace

json to_json(const histogram_counts& histogram) {
  return {{"le", histogram.upper_bounds},
          {"cumulative", histogram.cumulative},
          {"count", histogram.count},
          {"sum", histogram.sum}};
}

json stats_json(const server_facts& server, const std::vector<model_status>& models,
                const metrics_snapshot& metrics) {
  json model_list = json::array();
  for (const auto& model : models)
    model_list.push_back(model_json(model, metrics));
  return {{"server",
           {{"version", server.version},
            {"node", server.node},
            {"uptime_s", server.uptime_s},
            {"timestamp_ms", server.timestamp_ms},
            {"draining", server.draining},
            {"open_connections", server.open_connections}}},
          {"models", model_list},
          {"nodes", nodes_json(server, models)},
          {"totals", totals_json(metrics)}};
}

} // namespace actorserve
