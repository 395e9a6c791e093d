#include "http/edge_server.hpp"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "http/connection_parker.hpp"
#include "messages/error.hpp"

namespace actorserve {

namespace {

using clock = std::chrono::steady_clock;

/// The connection whose request is being served on this thread, and the
/// parker it goes back to.
thread_local edge_connection* current_connection = nullptr;
thread_local connection_parker* current_parker = nullptr;
/// Set by a handler: close the connection after the current response.
thread_local bool closing_after_response = false;
/// When the first byte of the request being served on this thread arrived.
thread_local clock::time_point current_request_started;

/// What cpp-httplib's accept loop hands accepted sockets to: they are taken
/// on the accepting thread itself (the edge parks them), and the end of the
/// loop starts the edge's drain.
class accepting_queue final : public httplib::TaskQueue {
public:
  explicit accepting_queue(std::function<void()> on_shutdown)
      : on_shutdown_(std::move(on_shutdown)) {}
  void enqueue(std::function<void()> fn) override { fn(); }
  void shutdown() override { on_shutdown_(); }

private:
  std::function<void()> on_shutdown_;
};

ec code_for_status(int status) {
  switch (status) {
    case 408:
      return ec::request_timeout;
    case 414:
      return ec::uri_too_long;
    case 431:
      return ec::header_fields_too_large;
    default:
      return ec::overloaded;
  }
}

std::string_view reason_phrase(int status) {
  switch (status) {
    case 408:
      return "Request Timeout";
    case 414:
      return "URI Too Long";
    case 431:
      return "Request Header Fields Too Large";
    default:
      return "Service Unavailable";
  }
}

/// The whole response the edge sends when it refuses a request.
std::string refusal_response(int status) {
  auto code = code_for_status(status);
  auto body = nlohmann::json{{"error",
                              {{"code", code_name(code)},
                               {"message", "refused by the server's connection limits"}}}}
                  .dump();
  std::string response = "HTTP/1.1 " + std::to_string(status) + " " +
                         std::string{reason_phrase(status)} +
                         "\r\nContent-Type: application/json\r\nContent-Length: " +
                         std::to_string(body.size()) + "\r\nConnection: close\r\n" +
                         "X-Request-Id: " + random_request_id() + "\r\n";
  if (wants_retry_after(code))
    response += "Retry-After: 1\r\n";
  return response + "\r\n" + body;
}

/// How long a worker waits on its connection for the next request before it
/// parks the connection: a loopback client turns an answer around in tens of
/// microseconds, a busy one in a few hundred.
constexpr std::chrono::microseconds next_request_wait{1000};

/// Descriptors kept for everything but client connections (model files,
/// the listener, cluster peers, logs).
constexpr size_t reserved_descriptors = 64;

/// max_connections, bounded by the open-file limit: past it accept() would
/// fail instead of the edge answering 503.
edge_limits within_descriptor_limit(edge_limits limits) {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY &&
      limit.rlim_cur > reserved_descriptors)
    limits.max_connections =
        std::min<size_t>(limits.max_connections, limit.rlim_cur - reserved_descriptors);
  return limits;
}

/// A few hundred bytes fit any socket buffer: never blocks on a hostile peer.
void send_refusal(int fd, int status) {
  auto response = refusal_response(status);
  ::send(fd, response.data(), response.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
}

} // namespace

/// The workers: connections with a request wait in one FIFO queue (first
/// come, first served) for one of a fixed number of threads.
class request_pool {
public:
  using serve_fn = std::function<void(edge_connection&)>;

  request_pool(size_t threads, size_t max_waiting, serve_fn serve)
      : max_waiting_(max_waiting), serve_(std::move(serve)) {
    for (size_t i = 0; i < threads; ++i)
      threads_.emplace_back([this] { work(); });
  }

  ~request_pool() { shutdown(); }

  /// True while some worker waits for a connection: one that keeps waiting
  /// on its own connection delays no one.
  bool has_idle_worker() const {
    return idle_workers_.load(std::memory_order_relaxed) > 0;
  }

  /// False, and nothing queued, when max_waiting connections already wait.
  bool enqueue(edge_connection& connection) {
    {
      std::lock_guard<std::mutex> guard{mutex_};
      if (waiting_.size() >= max_waiting_)
        return false;
      waiting_.push_back(&connection);
    }
    ready_.notify_one();
    return true;
  }

  /// Serves what waits, then joins the threads.
  void shutdown() {
    {
      std::lock_guard<std::mutex> guard{mutex_};
      if (stopping_)
        return;
      stopping_ = true;
    }
    ready_.notify_all();
    for (auto& thread : threads_)
      thread.join();
  }

private:
  void work() {
    for (;;) {
      edge_connection* connection = nullptr;
      {
        std::unique_lock<std::mutex> guard{mutex_};
        ++idle_workers_;
        ready_.wait(guard, [this] { return stopping_ || !waiting_.empty(); });
        --idle_workers_;
        if (waiting_.empty())
          return; // stopping, nothing left
        connection = waiting_.front();
        waiting_.pop_front();
      }
      serve_(*connection);
    }
  }

  const size_t max_waiting_;
  serve_fn serve_;
  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<edge_connection*> waiting_;
  std::atomic<size_t> idle_workers_{0};
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

std::string random_request_id() {
  thread_local std::mt19937_64 random{std::random_device{}()};
  constexpr char hex_digits[] = "0123456789abcdef";
  // Hand-rolled: snprintf's format parsing was ~1 % of a digits profile.
  std::string text(32, '0');
  for (size_t half = 0; half < 2; ++half) {
    auto bits = random();
    for (size_t i = 0; i < 16; ++i, bits >>= 4)
      text[half * 16 + 15 - i] = hex_digits[bits & 0xf];
  }
  return text;
}

edge_server::edge_server(edge_limits limits, refusal_observer on_refusal)
    : limits_(within_descriptor_limit(limits)), on_refusal_(std::move(on_refusal)) {
  pool_ = std::make_unique<request_pool>(
      limits_.worker_threads, limits_.max_pending_requests,
      [this](edge_connection& connection) { serve(connection); });
  parker_ = std::make_unique<connection_parker>(
      limits_,
      [this](edge_connection& connection) {
        if (!pool_->enqueue(connection))
          refuse(connection, http_status(ec::overloaded));
      },
      [this](edge_connection& connection) {
        refuse(connection, http_status(ec::request_timeout));
      });
  new_task_queue = [this] { return new accepting_queue([this] { drain(); }); };
}

edge_server::~edge_server() {
  pool_.reset(); // workers hand their connections back before the parker goes
  parker_.reset();
}

bool edge_server::set_backlog(int backlog) {
  return ::listen(svr_sock_, backlog) == 0;
}

int edge_server::refusal_status() {
  return current_connection == nullptr ? 0 : current_connection->stream.refusal();
}

void edge_server::close_after_response() {
  closing_after_response = true;
}

std::chrono::steady_clock::time_point edge_server::request_started() {
  return current_request_started;
}

size_t edge_server::open_connections() const {
  return parker_->connections();
}

edge_server::hangup_watch::hangup_watch(std::function<void()> on_hangup)
    : connection_(current_connection), parker_(current_parker) {
  if (connection_ != nullptr)
    parker_->watch_hangup(*connection_, std::move(on_hangup));
}

edge_server::hangup_watch::~hangup_watch() {
  if (connection_ != nullptr)
    parker_->unwatch_hangup(*connection_);
}

bool edge_server::process_and_close_socket(socket_t sock) {
  if (!parker_->adopt(sock))
    refuse_socket(sock);
  return true;
}

void edge_server::refuse_socket(int fd) {
  auto status = http_status(ec::overloaded);
  send_refusal(fd, status);
  int port = 0;
  auto client = peer_address(fd, port);
  ::close(fd);
  on_refusal_(status, client);
}

void edge_server::refuse(edge_connection& connection, int status) {
  send_refusal(connection.fd, status);
  int port = 0;
  on_refusal_(status, peer_address(connection.fd, port));
  parker_->linger(connection);
}

void edge_server::serve(edge_connection& connection) {
  current_parker = parker_.get();
  current_connection = &connection;
  for (;;) {
    current_request_started = connection.request_began.value_or(clock::now());
    connection.stream.begin_request(current_request_started);
    closing_after_response = false;
    bool last = ++connection.requests_served >= limits_.max_requests_per_connection ||
                svr_sock_ == INVALID_SOCKET;
    bool closed = false;
    bool served = process_request(
        connection.stream, last, closed,
        [&connection](httplib::Request&) { connection.stream.end_headers(); });
    served = connection.stream.flush() && served;
    current_connection = nullptr;
    if (connection.stream.refusal() != 0)
      return refuse(connection, connection.stream.refusal());
    if (closing_after_response || !connection.stream.headers_complete())
      return parker_->linger(connection);
    if (!served || closed || last)
      return parker_->close(connection);
    if (!next_request_arrives(connection))
      return parker_->park(connection);
    // The next request is pipelined behind this one: served at once.
    connection.request_began = clock::now();
    current_connection = &connection;
  }
}

/// A client that sends its next request right after an answer (a busy
/// keep-alive client) is served by the same worker, sparing two thread
/// hand-offs (to the parking thread and back), as long as another worker is
/// free for everyone else; otherwise the connection is parked at once.
bool edge_server::next_request_arrives(edge_connection& connection) {
  if (connection.stream.request_ready())
    return true; // pipelined
  if (svr_sock_ == INVALID_SOCKET || !pool_->has_idle_worker() ||
      !connection.stream.wait_readable(next_request_wait))
    return false;
  connection.stream.receive_available();
  return connection.stream.request_ready();
}

void edge_server::drain() {
  parker_->close_idle();
  // Requests waiting for a worker or in flight are answered (Connection:
  // close) and their connections closed; the process's drain timeout bounds
  // this wait.
  while (!parker_->wait_until_closed(std::chrono::milliseconds{100})) {
  }
  pool_->shutdown();
}

edge_server& edge_server::Get(const std::string& pattern, Handler handler) {
  routes_.push_back({"GET", pattern});
  httplib::Server::Get(pattern, std::move(handler));
  return *this;
}

edge_server& edge_server::Post(const std::string& pattern, Handler handler) {
  routes_.push_back({"POST", pattern});
  httplib::Server::Post(pattern, std::move(handler));
  return *this;
}

edge_server& edge_server::Post(const std::string& pattern,
                               HandlerWithContentReader handler) {
  routes_.push_back({"POST", pattern});
  httplib::Server::Post(pattern, std::move(handler));
  return *this;
}

edge_server& edge_server::Put(const std::string& pattern, Handler handler) {
  routes_.push_back({"PUT", pattern});
  httplib::Server::Put(pattern, std::move(handler));
  return *this;
}

edge_server& edge_server::Put(const std::string& pattern,
                              HandlerWithContentReader handler) {
  routes_.push_back({"PUT", pattern});
  httplib::Server::Put(pattern, std::move(handler));
  return *this;
}

edge_server& edge_server::Delete(const std::string& pattern, Handler handler) {
  routes_.push_back({"DELETE", pattern});
  httplib::Server::Delete(pattern, std::move(handler));
  return *this;
}

} // namespace actorserve
