#pragma once

// One client connection as cpp-httplib reads and writes it. The stream lives
// as long as the connection, so its read-ahead buffer survives between
// requests: bytes of a pipelined request read together with the one before
// are served next, and bytes the parking thread read while the connection was
// idle are parsed by the worker that takes it.
//
// Owned by one thread at a time: the parking thread while the connection is
// parked (it only calls receive_available() and request_ready()), a worker
// while a request is served on it.
//
// While a request's line and headers are read, every byte handed to
// cpp-httplib is counted against the edge limits and the header deadline;
// past them reads fail and refusal() says which status the edge answers with
// (cpp-httplib's own error response is swallowed).

#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

#include <httplib.h>

namespace actorserve {

struct edge_limits {
  size_t worker_threads = 128;              // requests served at once
  size_t max_pending_requests = 1024;       // readable connections waiting for a worker
  size_t max_connections = 10000;           // open connections, idle ones included
  size_t max_header_bytes = 64 * 1024;      // request line and header lines together
  std::chrono::seconds header_timeout{10};  // first byte to the end of the headers
  std::chrono::seconds request_timeout{60}; // line, headers and body
  std::chrono::seconds read_timeout{10};    // longest wait for a body's next bytes
  std::chrono::seconds write_timeout{10};   // longest wait for the client to take bytes
  std::chrono::seconds idle_timeout{5};     // keep-alive connection with no request
  size_t max_requests_per_connection = 10000;
};

class edge_stream final : public httplib::Stream {
public:
  using clock = std::chrono::steady_clock;

  /// What a non-blocking receive found.
  enum class receive_result { data, nothing, closed };

  edge_stream(int fd, const edge_limits& limits);

  /// A request starts (its first byte arrived at `started`): its line and
  /// headers are counted, and its deadlines run, from here.
  void begin_request(clock::time_point started);

  /// cpp-httplib has parsed the headers: the body follows.
  void end_headers() { in_headers_ = false; }

  /// False when the request line or headers did not parse: the request's
  /// framing is unknown, so nothing more can be read from the connection.
  bool headers_complete() const { return !in_headers_; }

  /// The status (408, 414, 431) the edge answers the current request with
  /// because it broke a limit; 0 while it is within them.
  int refusal() const { return refusal_; }

  /// Reads what the socket holds now into the read-ahead buffer, without
  /// waiting (parking thread).
  receive_result receive_available();

  /// True when the buffered bytes hold a whole request line and header block,
  /// or more than a line's or the header limit (a worker then refuses it at
  /// once).
  bool request_ready();

  /// Waits up to `timeout` for bytes on the socket; true when there are.
  bool wait_readable(std::chrono::microseconds timeout) const;

  /// Bytes read from the socket and not handed to cpp-httplib yet.
  size_t buffered() const { return end_ - begin_; }

  /// Gives back buffer memory an idle connection does not need.
  void release_idle_memory();

  /// Sends what write() gathered; false when the connection failed or the
  /// peer took nothing for a write timeout.
  bool flush();

  // httplib::Stream
  bool is_readable() const override;
  bool is_writable() const override;
  ssize_t read(char* ptr, size_t size) override;
  ssize_t write(const char* ptr, size_t size) override;
  void get_remote_ip_and_port(std::string& ip, int& port) const override;
  void get_local_ip_and_port(std::string& ip, int& port) const override;
  socket_t socket() const override { return fd_; }

private:
  bool fill();
  /// The last line buffered is longer than any line may be.
  bool line_too_long() const;
  bool send_all(const char* data, size_t size);
  bool count_header_bytes(const char* bytes, size_t count);
  /// Room for at least `wanted` more bytes at the end of the buffer.
  void make_room(size_t wanted);

  const int fd_;
  const edge_limits& limits_;

  struct endpoint {
    bool known = false;
    std::string ip;
    int port = 0;
  };
  mutable endpoint remote_;
  mutable endpoint local_;

  std::vector<char> buffer_; // read-ahead: [begin_, end_) not consumed yet
  size_t begin_ = 0;
  size_t end_ = 0;
  size_t scanned_ = 0; // buffer_[begin_, scanned_) holds no header block end
  ssize_t last_read_ = 0;
  std::string gathered_; // written, not sent yet

  int refusal_ = 0;
  bool in_headers_ = false;
  size_t header_bytes_ = 0;
  size_t line_bytes_ = 0;
  bool first_line_ = true;
  clock::time_point header_deadline_;
  clock::time_point request_deadline_;
};

/// The numeric address of a connected socket's peer ("" if unknown).
std::string peer_address(int fd, int& port);

} // namespace actorserve
