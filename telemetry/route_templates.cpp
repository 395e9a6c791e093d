#include "telemetry/route_templates.hpp"

namespace actorserve {

namespace {

constexpr size_t unmatched = route_templates.size() - 1;
static_assert(route_templates[unmatched] == "unmatched");

constexpr size_t max_segments = 7;

/// One route: its method, its path segments ("" is a parameter: one non-empty
/// segment, as httplib's "([^/]+)"; ":" is a parameter without ':', as
/// "([^/:]+)"; ":predict" is such a parameter followed by that suffix, as
/// "([^/:]+):predict"), and its index in route_templates.
struct route {
  std::string_view method;
  size_t count;
  std::array<std::string_view, max_segments> segments;
  size_t index;
};

constexpr size_t route_index(std::string_view name) {
  for (size_t i = 0; i < route_templates.size(); ++i)
    if (route_templates[i] == name)
      return i;
  return route_templates.size(); // not a template: fails the static_assert below
}

// clang-format off
constexpr std::array<route, 36> routes{{
  {"GET", 1, {"health"}, route_index("/health")},
  {"GET", 1, {"ready"}, route_index("/ready")},
  {"GET", 1, {"metrics"}, route_index("/metrics")},
  {"GET", 1, {"dashboard"}, route_index("/dashboard")},
  {"GET", 3, {"api", "v1", "stats"}, route_index("/api/v1/stats")},
  {"GET", 1, {"openapi.json"}, route_index("/openapi.json")},
  {"GET", 3, {"api", "v1", "models"}, route_index("/api/v1/models")},
  {"GET", 4, {"api", "v1", "models", ""}, route_index("/api/v1/models/{model}")},
  {"POST", 5, {"api", "v1", "models", "", "predict"},
   route_index("/api/v1/models/{model}/predict")},
  {"POST", 7, {"api", "v1", "models", "", "versions", "", "predict"},
   route_index("/api/v1/models/{model}/versions/{version}/predict")},
  {"POST", 5, {"api", "v1", "models", "", "jobs"}, route_index("/api/v1/models/{model}/jobs")},
  {"POST", 5, {"api", "v1", "models", "", "reload"},
   route_index("/api/v1/models/{model}/reload")},
  {"POST", 5, {"api", "v1", "models", "", "load"}, route_index("/api/v1/models/{model}/load")},
  {"POST", 5, {"api", "v1", "models", "", "unload"},
   route_index("/api/v1/models/{model}/unload")},
  {"POST", 7, {"api", "v1", "models", "", "versions", "", "unload"},
   route_index("/api/v1/models/{model}/versions/{version}/unload")},
  {"PUT", 5, {"api", "v1", "models", "", "traffic"},
   route_index("/api/v1/models/{model}/traffic")},
  {"GET", 4, {"api", "v1", "jobs", ""}, route_index("/api/v1/jobs/{job_id}")},
  {"DELETE", 4, {"api", "v1", "jobs", ""}, route_index("/api/v1/jobs/{job_id}")},
  {"GET", 3, {"v2", "health", "live"}, route_index("/v2/health/live")},
  {"GET", 3, {"v2", "health", "ready"}, route_index("/v2/health/ready")},
  {"GET", 1, {"v2"}, route_index("/v2")},
  {"GET", 3, {"v2", "models", ""}, route_index("/v2/models/{model}")},
  {"GET", 5, {"v2", "models", "", "versions", ""},
   route_index("/v2/models/{model}/versions/{version}")},
  {"GET", 4, {"v2", "models", "", "ready"}, route_index("/v2/models/{model}/ready")},
  {"GET", 6, {"v2", "models", "", "versions", "", "ready"},
   route_index("/v2/models/{model}/versions/{version}/ready")},
  {"POST", 4, {"v2", "models", "", "infer"}, route_index("/v2/models/{model}/infer")},
  {"POST", 6, {"v2", "models", "", "versions", "", "infer"},
   route_index("/v2/models/{model}/versions/{version}/infer")},
  {"POST", 3, {"v2", "repository", "index"}, route_index("/v2/repository/index")},
  {"POST", 5, {"v2", "repository", "models", "", "load"},
   route_index("/v2/repository/models/{model}/load")},
  {"POST", 5, {"v2", "repository", "models", "", "unload"},
   route_index("/v2/repository/models/{model}/unload")},
  {"GET", 3, {"v1", "models", ":"}, route_index("/v1/models/{model}")},
  {"GET", 5, {"v1", "models", ":", "versions", ":"},
   route_index("/v1/models/{model}/versions/{version}")},
  {"GET", 4, {"v1", "models", ":", "metadata"}, route_index("/v1/models/{model}/metadata")},
  {"GET", 6, {"v1", "models", ":", "versions", ":", "metadata"},
   route_index("/v1/models/{model}/versions/{version}/metadata")},
  {"POST", 3, {"v1", "models", ":predict"}, route_index("/v1/models/{model}:predict")},
  {"POST", 5, {"v1", "models", ":", "versions", ":predict"},
   route_index("/v1/models/{model}/versions/{version}:predict")},
}};
// clang-format on

constexpr bool all_routes_known() {
  for (const auto& r : routes)
    if (r.index >= unmatched)
      return false;
  return true;
}
static_assert(all_routes_known(), "every route's template must be in route_templates");

bool segment_matches(std::string_view pattern, std::string_view segment) {
  if (pattern.empty())
    return !segment.empty();
  if (pattern.front() != ':')
    return segment == pattern;
  // A name without ':', then exactly the pattern's suffix (none for ":").
  auto colon = segment.find(':');
  if (segment.empty() || colon == 0)
    return false;
  auto suffix =
      colon == std::string_view::npos ? std::string_view{} : segment.substr(colon);
  return pattern.size() == 1 ? suffix.empty() : suffix == pattern;
}

size_t match_route(std::string_view method, std::string_view path) {
  if (path.empty() || path.front() != '/')
    return unmatched;
  std::array<std::string_view, max_segments> segments;
  size_t count = 0;
  std::string_view rest = path.substr(1);
  for (;;) {
    if (count == max_segments)
      return unmatched; // more segments than any route has
    auto slash = rest.find('/');
    segments[count++] = rest.substr(0, slash);
    if (slash == std::string_view::npos)
      break;
    rest.remove_prefix(slash + 1);
  }
  // httplib dispatches HEAD to the GET handlers.
  std::string_view wanted = method == "HEAD" ? std::string_view{"GET"} : method;
  for (const auto& r : routes) {
    if (r.method != wanted || r.count != count)
      continue;
    bool match = true;
    for (size_t i = 0; i < count && match; ++i)
      match = segment_matches(r.segments[i], segments[i]);
    if (match)
      return r.index;
  }
  return unmatched;
}

} // namespace

std::string route_template(std::string_view method, std::string_view path) {
  return std::string{route_templates[match_route(method, path)]};
}

size_t route_template_index(std::string_view endpoint) {
  for (size_t i = 0; i < route_templates.size(); ++i)
    if (route_templates[i] == endpoint)
      return i;
  return unmatched;
}

} // namespace actorserve
