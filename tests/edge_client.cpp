#include "tests/edge_client.hpp"

#include <algorithm>
#include <cctype>
#include <sstream>
#include <thread>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

namespace actorserve::testing {

namespace {

using clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

std::string lower_case(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return text;
}

std::string trimmed(const std::string& text) {
  auto first = text.find_first_not_of(" \t");
  auto last = text.find_last_not_of(" \t");
  return first == std::string::npos ? std::string{}
                                    : text.substr(first, last - first + 1);
}

/// Parses a response head (status line and header lines, without the blank
/// line); status 0 when it is not an HTTP/1.1 status line.
http_response parse_head(const std::string& head) {
  http_response response;
  std::istringstream lines{head};
  std::string line;
  std::getline(lines, line);
  if (line.rfind("HTTP/1.1 ", 0) != 0)
    return response;
  response.status = std::atoi(line.c_str() + 9);
  while (std::getline(lines, line)) {
    if (!line.empty() && line.back() == '\r')
      line.pop_back();
    auto colon = line.find(':');
    if (colon != std::string::npos)
      response.headers[lower_case(line.substr(0, colon))] =
          trimmed(line.substr(colon + 1));
  }
  return response;
}

std::string request_bytes(const std::string& method, const std::string& path,
                          const header_list& headers, const std::string& body) {
  std::string bytes = method + " " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\n";
  for (const auto& [name, value] : headers)
    bytes += name + ": " + value + "\r\n";
  if (method == "POST")
    bytes += "Content-Type: application/json\r\nContent-Length: " +
             std::to_string(body.size()) + "\r\n";
  return bytes + "\r\n" + body;
}

} // namespace

std::string http_response::header(const std::string& name) const {
  auto found = headers.find(lower_case(name));
  return found == headers.end() ? std::string{} : found->second;
}

edge_connection::edge_connection(int port) : fd_(::socket(AF_INET, SOCK_STREAM, 0)) {
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd_ >= 0 &&
      ::connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0)
    close();
  int one = 1;
  if (fd_ >= 0)
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

edge_connection::~edge_connection() {
  close();
}

edge_connection::edge_connection(edge_connection&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)), pending_(std::move(other.pending_)) {}

void edge_connection::close() {
  if (fd_ >= 0)
    ::close(fd_);
  fd_ = -1;
}

bool edge_connection::send_raw(std::string_view bytes) {
  while (fd_ >= 0 && !bytes.empty()) {
    auto sent = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (sent <= 0)
      return false;
    bytes.remove_prefix(static_cast<size_t>(sent));
  }
  return fd_ >= 0;
}

bool edge_connection::receive_until(clock::time_point deadline) {
  auto left = std::chrono::duration_cast<milliseconds>(deadline - clock::now());
  pollfd entry{fd_, POLLIN, 0};
  if (fd_ < 0 || left.count() <= 0 ||
      ::poll(&entry, 1, static_cast<int>(left.count())) <= 0)
    return false;
  char buffer[65536];
  auto received = ::recv(fd_, buffer, sizeof buffer, 0);
  if (received <= 0)
    return false;
  pending_.append(buffer, static_cast<size_t>(received));
  return true;
}

http_response edge_connection::read_response(milliseconds timeout) {
  auto deadline = clock::now() + timeout;
  size_t head_end;
  while ((head_end = pending_.find("\r\n\r\n")) == std::string::npos)
    if (!receive_until(deadline))
      return {};
  auto response = parse_head(pending_.substr(0, head_end));
  auto length_text = response.header("Content-Length");
  size_t length = length_text.empty() ? 0 : std::stoul(length_text);
  size_t body_start = head_end + 4;
  while (pending_.size() < body_start + length)
    if (!receive_until(deadline))
      return {};
  response.body = pending_.substr(body_start, length);
  pending_.erase(0, body_start + length);
  return response;
}

bool edge_connection::closed_by_server_within(milliseconds timeout) {
  if (!pending_.empty() || fd_ < 0)
    return false;
  pollfd entry{fd_, POLLIN, 0};
  if (::poll(&entry, 1, static_cast<int>(timeout.count())) <= 0)
    return false;
  char byte;
  return ::recv(fd_, &byte, 1, 0) == 0;
}

std::string get_request(const std::string& path, const header_list& headers) {
  return request_bytes("GET", path, headers, {});
}

std::string post_request(const std::string& path, const std::string& body,
                         const header_list& headers) {
  return request_bytes("POST", path, headers, body);
}

http_response exchange(int port, const std::string& request, milliseconds timeout) {
  edge_connection connection{port};
  if (!connection.send_raw(request))
    return {};
  return connection.read_response(timeout);
}

double metric_sum(const std::string& exposition, const std::string& name,
                  const std::vector<std::string>& labels) {
  double sum = 0;
  std::istringstream lines{exposition};
  std::string line;
  while (std::getline(lines, line)) {
    if (line.rfind(name + "{", 0) != 0)
      continue;
    auto labels_end = line.find('}');
    auto label_text = line.substr(0, labels_end);
    bool matches = std::all_of(labels.begin(), labels.end(), [&](const auto& label) {
      return label_text.find(label) != std::string::npos;
    });
    if (matches && labels_end != std::string::npos)
      sum += std::stod(line.substr(labels_end + 1));
  }
  return sum;
}

bool poll_until(const std::function<bool()>& condition, milliseconds timeout) {
  auto deadline = clock::now() + timeout;
  while (!condition()) {
    if (clock::now() >= deadline)
      return false;
    std::this_thread::sleep_for(milliseconds{20});
  }
  return true;
}

bool raise_open_file_limit(size_t count) {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0)
    return false;
  if (limit.rlim_cur >= count)
    return true;
  if (limit.rlim_max != RLIM_INFINITY && limit.rlim_max < count)
    return false;
  limit.rlim_cur = count;
  return ::setrlimit(RLIMIT_NOFILE, &limit) == 0;
}

} // namespace actorserve::testing
