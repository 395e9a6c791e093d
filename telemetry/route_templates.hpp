#pragma once

// The route templates of the HTTP API (../shared/API.md), the label every
// request is counted and logged under: a request's method and path matched
// as cpp-httplib matches its routes, without regexes, so that no raw path
// ever becomes a label. Pure functions, thread-safe.

#include <array>
#include <cstddef>
#include <string>
#include <string_view>

namespace actorserve {

/// Every value route_template() can return, "unmatched" last.
inline constexpr std::array<std::string_view, 36> route_templates{
    "/health",
    "/ready",
    "/metrics",
    "/dashboard",
    "/api/v1/stats",
    "/openapi.json",
    "/api/v1/models",
    "/api/v1/models/{model}",
    "/api/v1/models/{model}/predict",
    "/api/v1/models/{model}/versions/{version}/predict",
    "/api/v1/models/{model}/jobs",
    "/api/v1/models/{model}/reload",
    "/api/v1/models/{model}/load",
    "/api/v1/models/{model}/unload",
    "/api/v1/models/{model}/versions/{version}/unload",
    "/api/v1/models/{model}/traffic",
    "/api/v1/jobs/{job_id}",
    "/v2/health/live",
    "/v2/health/ready",
    "/v2",
    "/v2/models/{model}",
    "/v2/models/{model}/versions/{version}",
    "/v2/models/{model}/ready",
    "/v2/models/{model}/versions/{version}/ready",
    "/v2/models/{model}/infer",
    "/v2/models/{model}/versions/{version}/infer",
    "/v2/repository/index",
    "/v2/repository/models/{model}/load",
    "/v2/repository/models/{model}/unload",
    "/v1/models/{model}",
    "/v1/models/{model}/versions/{version}",
    "/v1/models/{model}/metadata",
    "/v1/models/{model}/versions/{version}/metadata",
    "/v1/models/{model}:predict",
    "/v1/models/{model}/versions/{version}:predict",
    "unmatched",
};

/// The route template a request belongs to, for labels and logs: the routes of
/// API.md, matched as httplib matches them (method and path; a parameter is one
/// non-empty segment without '/', or before a literal suffix such as
/// ":predict"; GET routes also take HEAD). A path no route
/// takes, or a route's path with another method (GET .../predict), is
/// "unmatched". Pure string work, no regex.
std::string route_template(std::string_view method, std::string_view path);

/// The index of `endpoint` in route_templates; that of "unmatched" when it
/// is none of them.
size_t route_template_index(std::string_view endpoint);

} // namespace actorserve
