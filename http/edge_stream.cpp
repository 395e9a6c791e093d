#include "http/edge_stream.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>

#include "messages/error.hpp"

namespace actorserve {

namespace {

using std::chrono::milliseconds;

/// cpp-httplib's own limits for one request line and one header line, plus
/// the CRLF.
constexpr size_t max_line_bytes = 8192 + 2;
/// Response bytes gathered before a send: a digits answer is about 550.
constexpr size_t max_gathered_bytes = 16 * 1024;
/// The read-ahead buffer's first size; it grows to hold a whole header block.
constexpr size_t initial_buffer_bytes = 4096;
/// An idle connection keeps at most this much buffer memory.
constexpr size_t idle_buffer_bytes = 16 * 1024;

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

} // namespace

std::string peer_address(int fd, int& port) {
  sockaddr_storage address{};
  socklen_t length = sizeof address;
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0)
    return {};
  return numeric_host(address, length, port);
}

edge_stream::edge_stream(int fd, const edge_limits& limits) : fd_(fd), limits_(limits) {}

void edge_stream::begin_request(clock::time_point started) {
  refusal_ = 0;
  in_headers_ = true;
  header_bytes_ = 0;
  line_bytes_ = 0;
  first_line_ = true;
  header_deadline_ = started + limits_.header_timeout;
  request_deadline_ = started + limits_.request_timeout;
}

edge_stream::receive_result edge_stream::receive_available() {
  make_room(initial_buffer_bytes);
  auto received = ::recv(fd_, buffer_.data() + end_, buffer_.size() - end_, MSG_DONTWAIT);
  if (received > 0) {
    end_ += static_cast<size_t>(received);
    return receive_result::data;
  }
  if (received < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
    return receive_result::nothing;
  return receive_result::closed;
}

bool edge_stream::wait_readable(std::chrono::microseconds timeout) const {
  pollfd entry{fd_, POLLIN, 0};
  timespec wait{0, static_cast<long>(timeout.count() * 1000)};
  return ::ppoll(&entry, 1, &wait, nullptr) > 0 && (entry.revents & POLLIN) != 0;
}

bool edge_stream::request_ready() {
  if (buffered() > limits_.max_header_bytes || line_too_long())
    return true;
  // A header block ends with an empty line; cpp-httplib also takes bare LFs.
  auto from = std::max(begin_, scanned_);
  for (size_t i = from; i < end_; ++i) {
    if (buffer_[i] != '\n')
      continue;
    if ((i >= begin_ + 1 && buffer_[i - 1] == '\n') ||
        (i >= begin_ + 2 && buffer_[i - 1] == '\r' && buffer_[i - 2] == '\n'))
      return true;
  }
  scanned_ = end_;
  return false;
}

bool edge_stream::line_too_long() const {
  if (buffered() < max_line_bytes)
    return false;
  const char* last_line_bytes = buffer_.data() + end_ - max_line_bytes;
  return std::memchr(last_line_bytes, '\n', max_line_bytes) == nullptr;
}

void edge_stream::release_idle_memory() {
  if (buffered() == 0 && buffer_.capacity() > idle_buffer_bytes) {
    std::vector<char>{}.swap(buffer_);
    begin_ = end_ = scanned_ = 0;
  }
  if (gathered_.capacity() > initial_buffer_bytes)
    std::string{}.swap(gathered_);
}

void edge_stream::make_room(size_t wanted) {
  if (begin_ == end_)
    begin_ = end_ = scanned_ = 0;
  if (buffer_.size() - end_ >= wanted)
    return;
  if (begin_ > 0) { // move the unread bytes to the front
    std::memmove(buffer_.data(), buffer_.data() + begin_, buffered());
    scanned_ -= std::min(scanned_, begin_);
    end_ -= begin_;
    begin_ = 0;
  }
  if (buffer_.size() - end_ < wanted)
    buffer_.resize(std::max(buffer_.size() * 2, end_ + wanted));
}

bool edge_stream::is_readable() const {
  return buffered() > 0 ||
         wait_for(fd_, POLLIN,
                  std::chrono::duration_cast<milliseconds>(limits_.read_timeout));
}

bool edge_stream::is_writable() const {
  return wait_for(fd_, POLLOUT,
                  std::chrono::duration_cast<milliseconds>(limits_.write_timeout));
}

ssize_t edge_stream::read(char* ptr, size_t size) {
  if (refusal_ != 0)
    return -1;
  if (buffered() == 0 && !fill())
    return last_read_;
  size_t count = std::min(size, buffered());
  if (in_headers_ && !count_header_bytes(buffer_.data() + begin_, count))
    return -1;
  std::memcpy(ptr, buffer_.data() + begin_, count);
  begin_ += count;
  return static_cast<ssize_t>(count);
}

/// Gathers what cpp-httplib writes (it writes a response's headers and body
/// apart), so that a response goes out in one send and one segment; flush()
/// sends it. Larger writes go out at once.
ssize_t edge_stream::write(const char* ptr, size_t size) {
  if (refusal_ != 0)
    return static_cast<ssize_t>(size); // the edge answers instead
  if (gathered_.size() + size <= max_gathered_bytes) {
    gathered_.append(ptr, size);
    return static_cast<ssize_t>(size);
  }
  if (!flush() || !send_all(ptr, size))
    return -1;
  return static_cast<ssize_t>(size);
}

bool edge_stream::flush() {
  bool sent = send_all(gathered_.data(), gathered_.size());
  gathered_.clear();
  return sent;
}

// cpp-httplib asks for both addresses on every request; they are looked up
// once per connection.
void edge_stream::get_remote_ip_and_port(std::string& ip, int& port) const {
  if (!remote_.known) {
    remote_.known = true;
    remote_.ip = peer_address(fd_, remote_.port);
  }
  ip = remote_.ip;
  port = remote_.port;
}

void edge_stream::get_local_ip_and_port(std::string& ip, int& port) const {
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

/// Reads what the socket has into the empty buffer, waiting up to the read
/// timeout (and never past the request's deadlines); false (with last_read_
/// set to 0 or -1) at the end of the stream, on a timeout or an error.
bool edge_stream::fill() {
  // The client may wait for what was written (a 100 Continue) before it
  // sends more.
  if (!flush()) {
    last_read_ = -1;
    return false;
  }
  make_room(initial_buffer_bytes);
  // Bytes usually wait already: poll only when there are none.
  auto received = ::recv(fd_, buffer_.data() + end_, buffer_.size() - end_, MSG_DONTWAIT);
  if (received < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
    auto deadline = in_headers_ ? header_deadline_ : request_deadline_;
    auto left = std::chrono::duration_cast<milliseconds>(deadline - clock::now());
    auto read_timeout = std::chrono::duration_cast<milliseconds>(limits_.read_timeout);
    if (!wait_for(fd_, POLLIN, std::min(read_timeout, left))) {
      if (in_headers_) // a stall before the headers are complete
        refusal_ = http_status(ec::request_timeout);
      last_read_ = -1;
      return false;
    }
    received = ::recv(fd_, buffer_.data() + end_, buffer_.size() - end_, 0);
  }
  if (received <= 0) {
    last_read_ = received < 0 ? -1 : 0;
    return false;
  }
  end_ += static_cast<size_t>(received);
  return true;
}

/// Sends all `size` bytes, waiting up to the write timeout whenever the
/// socket takes none.
bool edge_stream::send_all(const char* data, size_t size) {
  auto write_timeout = std::chrono::duration_cast<milliseconds>(limits_.write_timeout);
  while (size > 0) {
    auto sent = ::send(fd_, data, size, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (sent > 0) {
      data += sent;
      size -= static_cast<size_t>(sent);
    } else if (sent < 0 && errno == EINTR) {
      continue;
    } else if (sent < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (!wait_for(fd_, POLLOUT, write_timeout))
        return false;
    } else {
      return false;
    }
  }
  return true;
}

/// Counts bytes of the request line and headers; false once over a limit.
bool edge_stream::count_header_bytes(const char* bytes, size_t count) {
  for (size_t i = 0; i < count; ++i) {
    ++header_bytes_;
    ++line_bytes_;
    if (line_bytes_ > max_line_bytes) {
      refusal_ =
          http_status(first_line_ ? ec::uri_too_long : ec::header_fields_too_large);
      return false;
    }
    if (header_bytes_ > limits_.max_header_bytes) {
      refusal_ = http_status(ec::header_fields_too_large);
      return false;
    }
    if (bytes[i] == '\n') {
      line_bytes_ = 0;
      first_line_ = false;
    }
  }
  return true;
}

} // namespace actorserve
