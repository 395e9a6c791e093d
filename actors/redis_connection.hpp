#pragma once

// One synchronous connection to Redis (hiredis), used by one thread at a time:
// the detached actor that owns it (the Redis job store, the Redis response
// cache). Every call blocks that thread for at most the timeout, never a
// scheduler thread or an HTTP thread.
//
// A broken connection is dropped and dialled again on a later call, no sooner
// than its backoff allows (doubling from 100 ms up to max_backoff): while
// Redis is away, calls fail at once with `unavailable` instead of each
// waiting for a connect timeout.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <caf/expected.hpp>

#include "config/redis_url.hpp"

struct redisContext;

namespace actorserve {

/// A Redis reply as plain data. Error replies never get here: they become
/// `internal` errors carrying Redis's message.
struct redis_reply {
  enum class kind : uint8_t { nil, integer, text, array };
  kind type = kind::nil;
  int64_t integer = 0;
  std::string text; // bulk and status strings
  std::vector<redis_reply> elements;

  bool is_nil() const { return type == kind::nil; }
};

struct redis_settings {
  redis_endpoint endpoint;
  std::chrono::milliseconds timeout{500}; // connect, and each command
  std::chrono::milliseconds max_backoff{5000};
};

class redis_connection {
public:
  explicit redis_connection(redis_settings settings);
  ~redis_connection();
  redis_connection(const redis_connection&) = delete;
  redis_connection& operator=(const redis_connection&) = delete;

  /// Runs one command (binary-safe arguments). `unavailable` when Redis
  /// cannot be reached or did not answer in time, `internal` for an error
  /// reply.
  caf::expected<redis_reply> run(const std::vector<std::string>& command);

  /// Sends the commands in one round trip and returns their replies in
  /// order; the first failure fails the whole call.
  caf::expected<std::vector<redis_reply>>
  run_all(const std::vector<std::vector<std::string>>& commands);

  /// Runs a Lua script (EVAL) with its keys and arguments.
  caf::expected<redis_reply> eval(const std::string& script,
                                  const std::vector<std::string>& keys,
                                  const std::vector<std::string>& args);

  /// True while a connection is open (it may still turn out broken).
  bool connected() const { return context_ != nullptr; }

  /// Where it connects, without the password: for logs.
  std::string describe() const { return loggable_url(settings_.endpoint); }

private:
  caf::error ensure_connected();
  caf::error connect_now();
  caf::error broken(const std::string& why);

  redis_settings settings_;
  redisContext* context_ = nullptr;
  std::chrono::steady_clock::time_point next_attempt_{};
  std::chrono::milliseconds backoff_{100};
};

} // namespace actorserve
