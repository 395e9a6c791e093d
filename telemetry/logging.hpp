#pragma once

// Logging: spdlog to stderr, one JSON object per line ("json", the default)
// or readable text ("text"). Plain messages become {"time","level","msg"};
// events logged with log_event keep their fields as top-level keys, so an
// access line reads {"time",...,"event":"access","status":200,...}. Safe to
// call from any thread.

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>
#include <spdlog/common.h>

namespace actorserve {

/// Installs the default logger. Throws config_error for an unknown format or
/// level.
void setup_logging(const std::string& format, const std::string& level);

/// Logs a structured event: `fields` (an object) plus "event": name.
void log_event(spdlog::level::level_enum level, std::string_view name,
               nlohmann::json fields);

} // namespace actorserve
