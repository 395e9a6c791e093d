#pragma once

// A real redis-server (Debian's) for tests: started on a free loopback port
// with no persistence, in a temporary folder; stopped on destruction. It can
// be stopped and started again on the same port, to test what happens while
// Redis is away.

#include <string>

#include "tests/test_support.hpp"

namespace actorserve::testing {

class redis_server {
public:
  /// Starts it; with a password, clients must AUTH.
  explicit redis_server(std::string password = {});
  ~redis_server();
  redis_server(const redis_server&) = delete;
  redis_server& operator=(const redis_server&) = delete;

  int port() const { return port_; }
  /// redis://[:PASSWORD@]127.0.0.1:PORT/0
  std::string url() const;
  /// Stops it (SIGTERM) and waits for it to exit.
  void stop();
  /// Starts it again on the same port, empty (nothing is persisted).
  void start();
  /// Runs a redis-cli command line against it, e.g. "DBSIZE"; its output.
  std::string cli(const std::string& arguments) const;

private:
  std::string password_;
  int port_ = 0;
  int pid_ = -1;
  temp_dir dir_;
};

} // namespace actorserve::testing
