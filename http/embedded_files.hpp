#pragma once

// Files served as they are, compiled into the binary at build time (see
// CMakeLists.txt, "embedded files"), so the server needs nothing beside it.

#include <string_view>

namespace actorserve {

/// http/dashboard.html: GET /dashboard, a self-contained page.
std::string_view dashboard_html();

/// http/openapi.json: GET /openapi.json, the OpenAPI 3.1 document of API.md.
std::string_view openapi_document();

} // namespace actorserve
