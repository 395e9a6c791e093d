#include "config/redis_url.hpp"

#include <charconv>
#include <string_view>

#include "config/model_config.hpp" // config_error

namespace actorserve {

namespace {

/// Digits only, within [min, max]; false otherwise.
bool parse_number(std::string_view text, int64_t min, int64_t max, int64_t& value) {
  if (text.empty())
    return false;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  return error == std::errc{} && end == text.data() + text.size() && value >= min &&
         value <= max;
}

} // namespace

redis_endpoint parse_redis_url(const std::string& url, const std::string& name) {
  constexpr std::string_view scheme = "redis://";
  auto fail = [&name](const std::string& why) {
    throw config_error(name + ": " + why +
                       " (expected redis://[:PASSWORD@]HOST:PORT[/DB])");
  };
  std::string_view rest{url};
  if (rest.substr(0, scheme.size()) != scheme)
    fail("must start with redis://");
  rest.remove_prefix(scheme.size());
  redis_endpoint endpoint;
  if (auto at = rest.rfind('@'); at != std::string_view::npos) {
    auto credentials = rest.substr(0, at);
    rest.remove_prefix(at + 1);
    // "user:password" (Redis 6 ACL users are not supported) or ":password".
    auto colon = credentials.find(':');
    if (colon != 0)
      fail("only a password is supported before '@', as ':PASSWORD@'");
    endpoint.password = std::string{credentials.substr(1)};
    if (endpoint.password.empty())
      fail("the password after ':' is empty");
  }
  if (auto slash = rest.find('/'); slash != std::string_view::npos) {
    int64_t db = 0;
    if (!parse_number(rest.substr(slash + 1), 0, 1 << 20, db))
      fail("the database after '/' must be a number");
    endpoint.db = static_cast<int32_t>(db);
    rest = rest.substr(0, slash);
  }
  if (auto colon = rest.rfind(':'); colon != std::string_view::npos) {
    int64_t port = 0;
    if (!parse_number(rest.substr(colon + 1), 1, 65535, port))
      fail("the port must be 1..65535");
    endpoint.port = static_cast<uint16_t>(port);
    rest = rest.substr(0, colon);
  }
  if (rest.empty())
    fail("the host is missing");
  endpoint.host = std::string{rest};
  return endpoint;
}

std::string loggable_url(const redis_endpoint& endpoint) {
  return "redis://" + std::string{endpoint.password.empty() ? "" : ":***@"} +
         endpoint.host + ":" + std::to_string(endpoint.port) + "/" +
         std::to_string(endpoint.db);
}

} // namespace actorserve
