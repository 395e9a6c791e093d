#pragma once

// The parking thread of the edge: every open client connection that has no
// request on a worker waits here, in one epoll set, costing no thread. It
// reads what idle connections send into their read-ahead buffers and hands a
// connection to the workers (the `dispatch` callback, first come first
// served) once a whole request head has arrived. It closes connections idle
// past the idle timeout, reports requests whose head does not arrive within
// the header timeout, finishes lingering closes, and, while a worker serves
// a request that asked for it, notices the client hanging up.
//
// Ownership: a connection belongs to exactly one party at a time. The parker
// owns it while it is parked or lingering; a worker owns it from dispatch
// until it calls park(), linger() or close(). Only the parker frees
// connections, after the epoll events that may name them are handled.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>
#include <vector>

#include "http/edge_stream.hpp"

namespace actorserve {

/// One client connection.
struct edge_connection {
  using clock = std::chrono::steady_clock;

  edge_connection(int fd, const edge_limits& limits) : fd(fd), stream(fd, limits) {}

  enum class state : uint8_t { parked, busy, lingering, closed };

  const int fd;
  edge_stream stream;
  std::atomic<state> owner{state::parked};
  size_t requests_served = 0;
  clock::time_point idle_since = clock::now(); // parked since (idle timeout)
  /// First byte of a request whose head is not complete yet.
  std::optional<clock::time_point> request_began;
  clock::time_point linger_until; // lingering: close by then at the latest

  std::mutex hangup_mutex;
  std::function<void()> on_hangup; // set while a worker waits on a reply
};

class connection_parker {
public:
  using clock = std::chrono::steady_clock;
  /// Called on the parking thread when a connection has a request for a
  /// worker; the connection is busy from then on.
  using dispatch_fn = std::function<void(edge_connection&)>;
  /// Called on the parking thread for a connection whose request head did
  /// not arrive within the header timeout; the connection is busy and must
  /// be handed back (linger() or close()).
  using stalled_fn = std::function<void(edge_connection&)>;

  connection_parker(const edge_limits& limits, dispatch_fn dispatch, stalled_fn stalled);
  ~connection_parker();
  connection_parker(const connection_parker&) = delete;
  connection_parker& operator=(const connection_parker&) = delete;

  /// Takes a newly accepted socket (TCP_NODELAY set here) and parks it;
  /// false, and nothing taken, when max_connections are open or stopped.
  bool adopt(int fd);

  /// A worker is done with a request and the connection waits for the next.
  void park(edge_connection& connection);

  /// A worker is done with the connection after a refused or unread
  /// request: no more sending; what the client still sends is read and
  /// dropped for a while (as nginx's lingering close does), so that a client
  /// still sending reads the answer instead of a reset.
  void linger(edge_connection& connection);

  /// A worker is done with the connection: closed now.
  void close(edge_connection& connection);

  /// While a worker serves `connection`, calls `on_hangup` (on the parking
  /// thread) if the client closes its side; cleared by unwatch_hangup().
  void watch_hangup(edge_connection& connection, std::function<void()> on_hangup);
  void unwatch_hangup(edge_connection& connection);

  /// Stops taking connections and closes every parked and lingering one;
  /// busy connections are closed when their worker hands them back.
  void close_idle();

  /// Open connections, busy ones included.
  size_t connections() const;

  /// Waits until no connection is open or `timeout` passed; true if none is.
  bool wait_until_closed(std::chrono::milliseconds timeout) const;

private:
  void run();
  void on_event(edge_connection& connection, uint32_t events);
  void on_readable(edge_connection& connection);
  void drain_lingering(edge_connection& connection);
  void sweep(clock::time_point now);
  /// Arms the connection for its next epoll event.
  void arm(edge_connection& connection, uint32_t events);
  /// Closes and forgets a connection the calling party owns.
  void finish(edge_connection& connection);
  void free_finished();
  void wake();

  const edge_limits& limits_;
  dispatch_fn dispatch_;
  stalled_fn stalled_;
  int epoll_fd_ = -1;
  int wake_fd_ = -1;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> closing_idle_{false};

  mutable std::mutex mutex_; // guards open_ and finished_
  mutable std::condition_variable all_closed_;
  std::unordered_map<edge_connection*, std::unique_ptr<edge_connection>> open_;
  std::vector<std::unique_ptr<edge_connection>> finished_; // freed by the parking thread
  std::thread thread_;
};

} // namespace actorserve
