#include "http/edge_server.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <random>

#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "messages/error.hpp"

namespace actorserve {

namespace {

using clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

/// cpp-httplib's own limits for one request line and one header line, plus
/// the CRLF.
constexpr size_t max_line_bytes = 8192 + 2;
/// How often a connection waiting for its next request checks for a stop.
constexpr milliseconds stop_check_interval{100};
/// Response bytes gathered before a send: a digits answer is about 550.
constexpr size_t max_gathered_bytes = 16 * 1024;

/// Set on the accepting thread while it refuses a connection inline.
thread_local bool refusing_connection = false;
/// The edge's answer to the request being served on this thread (0: none).
thread_local int current_refusal = 0;
/// Set by a handler: close the connection after the current response.
thread_local bool closing_after_response = false;
/// When the first byte of the request being served on this thread arrived.
thread_local clock::time_point current_request_started;

/// cpp-httplib's thread pool with a bound on the connections that wait for a
/// thread; past it, the connection is handed back to the accepting thread to
/// be refused at once. Connections are counted from enqueue until their task
/// ends (not until a worker picks them up, which a busy machine delays), so
/// only connections that really wait behind busy threads count as pending.
class bounded_pool final : public httplib::TaskQueue {
public:
  bounded_pool(size_t threads, size_t max_pending)
      : pool_(threads), max_connections_(threads + max_pending) {}

  void enqueue(std::function<void()> fn) override {
    if (connections_.load() >= max_connections_) {
      refusing_connection = true;
      fn();
      refusing_connection = false;
      return;
    }
    ++connections_;
    pool_.enqueue([this, fn = std::move(fn)] {
      fn();
      --connections_;
    });
  }

  void shutdown() override { pool_.shutdown(); }

private:
  httplib::ThreadPool pool_;
  const size_t max_connections_; // served plus waiting
  std::atomic<size_t> connections_{0};
};

bool wait_for(int fd, short events, milliseconds timeout) {
  pollfd entry{fd, events, 0};
  int ready = ::poll(&entry, 1, static_cast<int>(std::max<int64_t>(0, timeout.count())));
  return ready > 0 && (entry.revents & (events | POLLHUP | POLLERR)) != 0;
}

std::string numeric_host(const sockaddr_storage& address, socklen_t length, int& port) {
  char host[NI_MAXHOST];
  char service[NI_MAXSERV];
  if (::getnameinfo(reinterpret_cast<const sockaddr*>(&address), length, host,
                    sizeof host, service, sizeof service,
                    NI_NUMERICHOST | NI_NUMERICSERV) != 0)
    return {};
  port = std::atoi(service);
  return host;
}

std::string peer_address(int fd, int& port) {
  sockaddr_storage address{};
  socklen_t length = sizeof address;
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0)
    return {};
  return numeric_host(address, length, port);
}

/// One connection, read through a buffer. While a request's line and
/// headers are read, every byte handed to cpp-httplib is counted against
/// the limits and the header deadline; past them reads fail and the
/// connection is marked refused, and cpp-httplib's own error response is
/// swallowed so that the edge can answer instead.
class edge_stream final : public httplib::Stream {
public:
  edge_stream(int fd, const edge_limits& limits, milliseconds read_timeout,
              milliseconds write_timeout)
      : fd_(fd), limits_(limits), read_timeout_(read_timeout),
        write_timeout_(write_timeout) {}

  /// A request starts: its line and headers are counted from here.
  void begin_request() {
    in_headers_ = true;
    header_bytes_ = 0;
    line_bytes_ = 0;
    first_line_ = true;
    current_request_started = clock::now();
    header_deadline_ = current_request_started + limits_.header_timeout;
    request_deadline_ = current_request_started + limits_.request_timeout;
  }

  /// cpp-httplib has parsed the headers: the body follows.
  void end_headers() { in_headers_ = false; }

  /// False when the request line or headers did not parse: the request's
  /// framing is unknown, so nothing more can be read from the connection.
  bool headers_complete() const { return !in_headers_; }

  /// True when the next request has (begun to) arrive within `timeout`: bytes
  /// already read (a pipelined request) or bytes on the socket.
  bool wait_for_request(milliseconds timeout) const {
    return buffered() > 0 || wait_for(fd_, POLLIN, timeout);
  }

  bool is_readable() const override {
    return buffered() > 0 || wait_for(fd_, POLLIN, read_timeout_);
  }

  bool is_writable() const override { return wait_for(fd_, POLLOUT, write_timeout_); }

  ssize_t read(char* ptr, size_t size) override {
    if (current_refusal != 0)
      return -1;
    if (buffered() == 0 && !fill())
      return last_read_;
    size_t count = std::min(size, buffered());
    if (in_headers_ && !count_header_bytes(buffer_ + begin_, count))
      return -1;
    std::memcpy(ptr, buffer_ + begin_, count);
    begin_ += count;
    return static_cast<ssize_t>(count);
  }

  /// Gathers what cpp-httplib writes (it writes a response's headers and
  /// body apart), so that a response goes out in one send and one segment;
  /// flush() sends it. Larger writes go out at once.
  ssize_t write(const char* ptr, size_t size) override {
    if (current_refusal != 0)
      return static_cast<ssize_t>(size); // the edge answers instead
    if (gathered_.size() + size <= max_gathered_bytes) {
      gathered_.append(ptr, size);
      return static_cast<ssize_t>(size);
    }
    if (!flush() || !send_all(ptr, size))
      return -1;
    return static_cast<ssize_t>(size);
  }

  /// Sends what write() gathered; false when the connection failed or the
  /// peer took nothing for a write timeout.
  bool flush() {
    bool sent = send_all(gathered_.data(), gathered_.size());
    gathered_.clear();
    return sent;
  }

  // cpp-httplib asks for both addresses on every request; they are looked
  // up once per connection.
  void get_remote_ip_and_port(std::string& ip, int& port) const override {
    if (!remote_.known) {
      remote_.known = true;
      remote_.ip = peer_address(fd_, remote_.port);
    }
    ip = remote_.ip;
    port = remote_.port;
  }

  void get_local_ip_and_port(std::string& ip, int& port) const override {
    if (!local_.known) {
      sockaddr_storage address{};
      socklen_t length = sizeof address;
      local_.known = true;
      if (::getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &length) == 0)
        local_.ip = numeric_host(address, length, local_.port);
    }
    ip = local_.ip;
    port = local_.port;
  }

  socket_t socket() const override { return fd_; }

private:
  size_t buffered() const { return end_ - begin_; }

  /// Reads what the socket has into the empty buffer; false (with
  /// last_read_ set to 0 or -1) at the end of the stream, on a timeout or an
  /// error.
  bool fill() {
    // The client may wait for what was written (a 100 Continue) before it
    // sends more.
    if (!flush()) {
      last_read_ = -1;
      return false;
    }
    // Bytes usually wait already: poll only when there are none.
    auto received = ::recv(fd_, buffer_, sizeof buffer_, MSG_DONTWAIT);
    if (received < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      auto deadline = in_headers_ ? header_deadline_ : request_deadline_;
      auto left = std::chrono::duration_cast<milliseconds>(deadline - clock::now());
      if (!wait_for(fd_, POLLIN, std::min(read_timeout_, left))) {
        if (in_headers_) // a stall before the headers are complete
          current_refusal = http_status(ec::request_timeout);
        last_read_ = -1;
        return false;
      }
      received = ::recv(fd_, buffer_, sizeof buffer_, 0);
    }
    if (received <= 0) {
      last_read_ = received < 0 ? -1 : 0;
      return false;
    }
    begin_ = 0;
    end_ = static_cast<size_t>(received);
    return true;
  }

  /// Sends all `size` bytes, waiting up to the write timeout whenever the
  /// socket takes none.
  bool send_all(const char* data, size_t size) {
    while (size > 0) {
      auto sent = ::send(fd_, data, size, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (sent > 0) {
        data += sent;
        size -= static_cast<size_t>(sent);
      } else if (sent < 0 && errno == EINTR) {
        continue;
      } else if (sent < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        if (!wait_for(fd_, POLLOUT, write_timeout_))
          return false;
      } else {
        return false;
      }
    }
    return true;
  }

  /// Counts bytes of the request line and headers; false once over a limit.
  bool count_header_bytes(const char* bytes, size_t count) {
    for (size_t i = 0; i < count; ++i) {
      ++header_bytes_;
      ++line_bytes_;
      if (line_bytes_ > max_line_bytes) {
        current_refusal =
            http_status(first_line_ ? ec::uri_too_long : ec::header_fields_too_large);
        return false;
      }
      if (header_bytes_ > limits_.max_header_bytes) {
        current_refusal = http_status(ec::header_fields_too_large);
        return false;
      }
      if (bytes[i] == '\n') {
        line_bytes_ = 0;
        first_line_ = false;
      }
    }
    return true;
  }

  const int fd_;
  const edge_limits& limits_;
  const milliseconds read_timeout_;
  const milliseconds write_timeout_;

  struct endpoint {
    bool known = false;
    std::string ip;
    int port = 0;
  };
  mutable endpoint remote_;
  mutable endpoint local_;

  char buffer_[4096];
  std::string gathered_; // written, not sent yet
  size_t begin_ = 0;
  size_t end_ = 0;
  ssize_t last_read_ = 0;

  bool in_headers_ = false;
  size_t header_bytes_ = 0;
  size_t line_bytes_ = 0;
  bool first_line_ = true;
  clock::time_point header_deadline_;
  clock::time_point request_deadline_;
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

/// The whole response the edge sends when it refuses a connection.
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

void close_connection(int fd) {
  ::shutdown(fd, SHUT_RDWR);
  ::close(fd);
}

/// Closes after a refusal (a request whose rest is not read): stops sending,
/// then reads and drops what the client still sends, as nginx's lingering
/// close does, so that closing with unread input (a TCP reset, or EPIPE for
/// a client still sending its body) does not destroy the answer before the
/// client reads it. Bounded in time: at most `lingering_time` in all, and
/// `lingering_timeout` without data.
void linger_close(int fd) {
  constexpr milliseconds lingering_time{2000};
  constexpr milliseconds lingering_timeout{500};
  ::shutdown(fd, SHUT_WR);
  auto until = clock::now() + lingering_time;
  char sink[16384];
  while (clock::now() < until && wait_for(fd, POLLIN, lingering_timeout) &&
         ::recv(fd, sink, sizeof sink, MSG_DONTWAIT) > 0) {
  }
  ::close(fd);
}

} // namespace

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
    : limits_(limits), on_refusal_(std::move(on_refusal)) {
  new_task_queue = [threads = limits_.worker_threads,
                    pending = limits_.max_pending_connections] {
    return new bounded_pool(threads, pending);
  };
}

bool edge_server::set_backlog(int backlog) {
  return ::listen(svr_sock_, backlog) == 0;
}

int edge_server::refusal_status() {
  return current_refusal;
}

void edge_server::close_after_response() {
  closing_after_response = true;
}

std::chrono::steady_clock::time_point edge_server::request_started() {
  return current_request_started;
}

void edge_server::refuse(int fd, int status) {
  // A few hundred bytes fit the socket buffer; never block on a hostile peer.
  auto response = refusal_response(status);
  ::send(fd, response.data(), response.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  int port = 0;
  on_refusal_(status, peer_address(fd, port));
}

bool edge_server::process_and_close_socket(socket_t sock) {
  if (refusing_connection) {
    refuse(sock, http_status(ec::overloaded));
    close_connection(sock);
    return false;
  }
  auto read_timeout = std::chrono::seconds{read_timeout_sec_};
  edge_stream stream{sock, limits_, read_timeout,
                     std::chrono::seconds{write_timeout_sec_}};
  auto idle_timeout = std::chrono::seconds{keep_alive_timeout_sec_};
  bool served = false;
  for (size_t left = keep_alive_max_count_; left > 0; --left) {
    // Wait for the next request, closing idle connections once stopped.
    auto idle_until = clock::now() + idle_timeout;
    bool readable = false;
    while (!readable && svr_sock_ != INVALID_SOCKET && clock::now() < idle_until)
      readable = stream.wait_for_request(stop_check_interval);
    if (!readable)
      break;
    stream.begin_request();
    current_refusal = 0;
    closing_after_response = false;
    bool closed = false;
    served = process_request(stream, left == 1, closed,
                             [&stream](httplib::Request&) { stream.end_headers(); });
    served = stream.flush() && served;
    if (current_refusal != 0) {
      refuse(sock, current_refusal);
      current_refusal = 0;
      linger_close(sock);
      return false;
    }
    if (closing_after_response || !stream.headers_complete()) {
      linger_close(sock);
      return served;
    }
    if (!served || closed)
      break;
  }
  current_refusal = 0;
  close_connection(sock);
  return served;
}

} // namespace actorserve
