#pragma once

// A raw HTTP/1.1 client over POSIX sockets for the edge's end-to-end tests:
// byte-exact requests (pipelined or split anywhere), responses read one at a
// time with the bytes after each kept for the next, and precise control of
// when the socket closes. No HTTP library, so nothing hides what the server
// really did.

#include <chrono>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace actorserve::testing {

using header_list = std::vector<std::pair<std::string, std::string>>;

/// One response, or status 0 when the connection closed, failed or timed
/// out before the whole response (head and Content-Length body) arrived.
struct http_response {
  int status = 0;
  std::map<std::string, std::string> headers; // names in lower case
  std::string body;

  /// The value of header `name` (any case), empty when absent.
  std::string header(const std::string& name) const;
};

/// One client connection to 127.0.0.1:port, with TCP_NODELAY.
class edge_connection {
public:
  explicit edge_connection(int port);
  ~edge_connection();
  edge_connection(edge_connection&& other) noexcept;
  edge_connection& operator=(edge_connection&&) = delete;
  edge_connection(const edge_connection&) = delete;
  edge_connection& operator=(const edge_connection&) = delete;

  bool connected() const { return fd_ >= 0; }

  /// Sends all bytes; false when the connection failed.
  bool send_raw(std::string_view bytes);

  /// Reads the next response; bytes past it stay for the next call.
  http_response read_response(std::chrono::milliseconds timeout);

  /// True when the server closes the connection (a read returns 0) within
  /// `timeout` and sent nothing before.
  bool closed_by_server_within(std::chrono::milliseconds timeout);

  /// Closes the socket at once (the client goes away).
  void close();

private:
  /// Appends what the socket has to `pending_`, waiting until `deadline`;
  /// false at the end of the stream, on an error or at the deadline.
  bool receive_until(std::chrono::steady_clock::time_point deadline);

  int fd_ = -1;
  std::string pending_; // received, not yet returned
};

/// The bytes of a GET request (HTTP/1.1, keep-alive).
std::string get_request(const std::string& path, const header_list& headers = {});

/// The bytes of a POST request with a JSON body.
std::string post_request(const std::string& path, const std::string& body,
                         const header_list& headers = {});

/// Sends `request` on a new connection and reads its response.
http_response exchange(int port, const std::string& request,
                       std::chrono::milliseconds timeout);

/// The sum of the samples of metric `name` whose labels include every one
/// of `labels` (each written as in the exposition: model="slow"); 0 when
/// there is none.
double metric_sum(const std::string& exposition, const std::string& name,
                  const std::vector<std::string>& labels);

/// Calls `condition` every 20 ms until it holds or `timeout` passes; returns
/// its last result.
bool poll_until(const std::function<bool()>& condition,
                std::chrono::milliseconds timeout);

/// Raises this process's soft open-file limit to at least `count` (child
/// processes inherit it); false when the hard limit is lower.
bool raise_open_file_limit(size_t count);

} // namespace actorserve::testing
