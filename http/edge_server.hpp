#pragma once

// cpp-httplib's server with the edge limits that cpp-httplib 0.11 lacks
// (issue 5, "Limits"): it reads each connection through its own stream, so
//
// - the request line and header lines of a request are bounded in bytes (each
//   line at most 8 KiB, all of them at most max_header_bytes) while they are
//   read, not after: an endless header line or a flood of header lines is cut
//   off at the limit (414 for the request line, else 431, connection closed)
//   instead of growing in memory;
// - all of them must arrive within header_timeout of the request's first byte
//   (else 408, connection closed), and the whole request within
//   request_timeout (else the body is cut short: 400), so a client trickling
//   bytes (slowloris) holds a thread for a bounded time, not forever;
// - connections accepted while every worker thread is busy wait in a queue of
//   at most max_pending_connections; beyond it a connection is answered 503
//   on the accepting thread and closed at once;
// - idle keep-alive connections are closed as soon as the server stops.
//
// Refusals are answered here, not by the routes, and reported to the
// refusal observer; cpp-httplib still calls its logger for some of them, so
// the logger skips requests whose refusal_status() is set.

#include <atomic>
#include <chrono>
#include <cstddef>
#include <functional>
#include <string>

#include <httplib.h>

namespace actorserve {

struct edge_limits {
  size_t worker_threads = 128;
  size_t max_pending_connections = 1024;
  size_t max_header_bytes = 64 * 1024; // request line and header lines together
  std::chrono::seconds header_timeout{10};
  std::chrono::seconds request_timeout{60}; // line, headers and body
};

class edge_server : public httplib::Server {
public:
  /// Called once per refusal (408, 414, 431, or 503 for a full queue, then on
  /// the accepting thread); `client` is the peer address.
  using refusal_observer = std::function<void(int status, const std::string& client)>;

  edge_server(edge_limits limits, refusal_observer on_refusal);

  /// cpp-httplib listens with a backlog of 5; listen() again on the bound
  /// socket raises it (Linux allows it).
  bool set_backlog(int backlog);

  /// Nonzero (408, 414 or 431) while the edge refuses the request being
  /// served on this thread; 0 when the routes answer it.
  static int refusal_status();

  /// Closes the connection of the request served on this thread once its
  /// response is sent. cpp-httplib 0.11 sends a handler's "Connection: close"
  /// but keeps reading; handlers that leave a body unread must call this.
  static void close_after_response();

  /// When the first byte of the request served on this thread arrived.
  static std::chrono::steady_clock::time_point request_started();

private:
  bool process_and_close_socket(socket_t sock) override;
  /// Sends the refusal response for `status` and reports it.
  void refuse(int fd, int status);

  edge_limits limits_;
  refusal_observer on_refusal_;
};

/// A random request id (32 hex digits), for responses without the client's.
std::string random_request_id();

} // namespace actorserve
