#pragma once

// cpp-httplib's server with a front that owns its sockets (issue 13): cpp-
// httplib accepts, parses and routes; the edge decides where a connection
// waits.
//
// - A connection with no request on it is parked in one epoll thread (see
//   http/connection_parker.hpp) and holds no thread; a worker of a fixed pool
//   (worker_threads, sized for requests in flight, not connections) takes it
//   once a whole request head has arrived, first come, first served, and
//   hands it back after the response. Requests pipelined behind it are
//   served in order from the connection's read-ahead buffer.
// - Limits (see edge_limits): the request line and header lines are bounded
//   in bytes while they are read (414 for the request line, else 431); the
//   head must arrive within header_timeout of its first byte (else 408), the
//   whole request within request_timeout (else the body is cut short: 400);
//   when max_pending_requests readable connections already wait for a
//   worker, or max_connections are open, the edge answers 503. Idle keep-
//   alive connections close after idle_timeout; a connection serves at most
//   max_requests_per_connection requests.
// - Refused or unread requests end with a lingering close, done by the
//   parking thread, so the client reads the answer instead of a reset.
// - stop(): the listener closes, parked connections close at once, requests
//   in flight (and those already waiting for a worker) are answered with
//   "Connection: close", then serve() returns.
//
// Refusals are answered here, not by the routes, and reported to the
// refusal observer; cpp-httplib still calls its logger for some of them, so
// the logger skips requests whose refusal_status() is set.

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <httplib.h>

#include "http/edge_stream.hpp"

namespace actorserve {

class connection_parker;
struct edge_connection;
class request_pool;

/// A route as installed: its method and cpp-httplib's path pattern (a regular
/// expression such as "/v2/models/([^/]+)").
struct route_pattern {
  std::string method;
  std::string pattern;
};

class edge_server : public httplib::Server {
public:
  /// Called once per refusal (408, 414, 431 or 503); `client` is the peer
  /// address. Called on a worker, the parking or the accepting thread.
  using refusal_observer = std::function<void(int status, const std::string& client)>;

  edge_server(edge_limits limits, refusal_observer on_refusal);
  ~edge_server() override;

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

  /// While it lives, `on_hangup` is called (once, on the parking thread) if
  /// the client of the request served on this thread closes its connection:
  /// the request's answer has no one to go to. For handlers that wait on a
  /// reply that can be withdrawn.
  class hangup_watch {
  public:
    explicit hangup_watch(std::function<void()> on_hangup);
    ~hangup_watch();
    hangup_watch(const hangup_watch&) = delete;
    hangup_watch& operator=(const hangup_watch&) = delete;

  private:
    edge_connection* connection_;
    connection_parker* parker_;
  };

  /// Open client connections, idle ones included.
  size_t open_connections() const;

  /// Every route installed so far, in order: what the OpenAPI document must
  /// describe (tests compare the two).
  const std::vector<route_pattern>& routes() const { return routes_; }

  // cpp-httplib's route installers, each recording its route first.
  edge_server& Get(const std::string& pattern, Handler handler);
  edge_server& Post(const std::string& pattern, Handler handler);
  edge_server& Post(const std::string& pattern, HandlerWithContentReader handler);
  edge_server& Put(const std::string& pattern, Handler handler);
  edge_server& Put(const std::string& pattern, HandlerWithContentReader handler);
  edge_server& Delete(const std::string& pattern, Handler handler);

private:
  bool process_and_close_socket(socket_t sock) override;
  /// Serves the requests waiting on a connection; on a worker.
  void serve(edge_connection& connection);
  /// True when the connection's next request is (soon) buffered.
  bool next_request_arrives(edge_connection& connection);
  /// Sends the refusal response for `status`, reports it and lingers.
  void refuse(edge_connection& connection, int status);
  /// Answers 503 and closes a socket that could not be taken.
  void refuse_socket(int fd);
  /// Last step of listen(): parked connections close, the rest finish.
  void drain();

  edge_limits limits_;
  refusal_observer on_refusal_;
  std::unique_ptr<connection_parker> parker_;
  std::unique_ptr<request_pool> pool_;
  std::vector<route_pattern> routes_;
};

/// A random request id (32 hex digits), for responses without the client's.
std::string random_request_id();

} // namespace actorserve
