#include "telemetry/logging.hpp"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include "config/model_config.hpp" // config_error

namespace actorserve {

namespace {

/// Marks a payload that is already a JSON object (from log_event).
constexpr char structured_marker = '\x1e';

/// `%j`: the members of a structured event, or "msg": the escaped text.
class json_payload_flag : public spdlog::custom_flag_formatter {
public:
  void format(const spdlog::details::log_msg& msg, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    std::string_view payload{msg.payload.data(), msg.payload.size()};
    std::string text;
    if (!payload.empty() && payload.front() == structured_marker) {
      // "{...}" without its braces: its members join the line's object.
      auto object = payload.substr(1);
      text = object.size() > 2 ? std::string{object.substr(1, object.size() - 2)} : "";
    } else {
      text = "\"msg\":" + nlohmann::json(std::string{payload}).dump();
    }
    dest.append(text.data(), text.data() + text.size());
  }

  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<json_payload_flag>();
  }
};

/// `%j` in text mode: the payload without the structured marker.
class text_payload_flag : public spdlog::custom_flag_formatter {
public:
  void format(const spdlog::details::log_msg& msg, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    std::string_view payload{msg.payload.data(), msg.payload.size()};
    if (!payload.empty() && payload.front() == structured_marker)
      payload.remove_prefix(1);
    dest.append(payload.data(), payload.data() + payload.size());
  }

  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<text_payload_flag>();
  }
};

} // namespace

void setup_logging(const std::string& format, const std::string& level) {
  auto formatter = std::make_unique<spdlog::pattern_formatter>();
  if (format == "json") {
    formatter->add_flag<json_payload_flag>('j').set_pattern(
        R"({"time":"%Y-%m-%dT%H:%M:%S.%f%z","level":"%l",%j})");
  } else if (format == "text") {
    formatter->add_flag<text_payload_flag>('j').set_pattern(
        "%Y-%m-%d %H:%M:%S.%e [%l] %j");
  } else {
    throw config_error("log_format: must be \"json\" or \"text\", not \"" + format +
                       "\"");
  }
  auto parsed = spdlog::level::from_str(level);
  if (parsed == spdlog::level::off && level != "off")
    throw config_error("log_level: unknown level \"" + level + "\"");
  auto logger = spdlog::stderr_logger_mt("actorserve");
  logger->set_formatter(std::move(formatter));
  logger->set_level(parsed);
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(logger);
}

void log_event(spdlog::level::level_enum level, std::string_view name,
               nlohmann::json fields) {
  if (!spdlog::should_log(level))
    return;
  fields["event"] = name;
  auto text = structured_marker +
              fields.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  spdlog::log(level, "{}", text);
}

} // namespace actorserve
