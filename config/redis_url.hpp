#pragma once

// Where Redis is: `--redis-url redis://[:PASSWORD@]HOST:PORT[/DB]`, parsed
// once at start. The password is a secret: errors and the loggable form never
// show it.

#include <cstdint>
#include <string>

namespace actorserve {

struct redis_endpoint {
  std::string host;
  uint16_t port = 6379;
  std::string password; // empty: no AUTH
  int32_t db = 0;
};

/// Parses a redis:// URL (port 6379 and database 0 when absent). Throws
/// config_error naming `name` and never echoing the password.
redis_endpoint parse_redis_url(const std::string& url, const std::string& name);

/// "redis://HOST:PORT/DB", with ":***@" where a password is set: for logs.
std::string loggable_url(const redis_endpoint& endpoint);

} // namespace actorserve
