// The edge on a real loopback socket with plain routes: idle connections
// hold no worker, pipelined requests are answered in order, the request cap
// per connection; and its generated request ids.

#include <gtest/gtest.h>

#include <chrono>
#include <set>
#include <string>
#include <thread>

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http/edge_server.hpp"

namespace actorserve {
namespace {

using namespace std::chrono_literals;

/// An edge_server with GET /ok and GET /slow (sleeps 300 ms), both echoing
/// X-Request-Id, on a free port.
class running_edge {
public:
  explicit running_edge(edge_limits limits)
      : server_(limits, [](int, const std::string&) {}) {
    server_.Get("/ok", [](const httplib::Request& req, httplib::Response& res) {
      res.set_header("X-Request-Id", req.get_header_value("X-Request-Id"));
      res.set_content("ok", "text/plain");
    });
    server_.Get("/slow", [](const httplib::Request& req, httplib::Response& res) {
      std::this_thread::sleep_for(300ms);
      res.set_header("X-Request-Id", req.get_header_value("X-Request-Id"));
      res.set_content("slow", "text/plain");
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread{[this] { server_.listen_after_bind(); }};
  }
  ~running_edge() {
    server_.stop();
    thread_.join();
  }
  int port() const { return port_; }
  edge_server& server() { return server_; }

private:
  edge_server server_;
  int port_ = 0;
  std::thread thread_;
};

int connect_to(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
  return fd;
}

void send_text(int fd, const std::string& text) {
  ASSERT_EQ(::send(fd, text.data(), text.size(), MSG_NOSIGNAL), ssize_t(text.size()));
}

/// Reads until `count` responses ("HTTP/1.1 " starts) with bodies of known
/// size arrived, the peer closed, or 5 s passed; returns all bytes read.
std::string read_responses(int fd, size_t count, const std::string& last_body) {
  std::string bytes;
  auto until = std::chrono::steady_clock::now() + 5s;
  auto responses = [&] {
    size_t found = 0;
    for (auto at = bytes.find("HTTP/1.1 "); at != std::string::npos;
         at = bytes.find("HTTP/1.1 ", at + 1))
      ++found;
    return found;
  };
  while (std::chrono::steady_clock::now() < until) {
    if (responses() >= count && bytes.size() >= last_body.size() &&
        bytes.compare(bytes.size() - last_body.size(), last_body.size(), last_body) == 0)
      break;
    pollfd entry{fd, POLLIN, 0};
    if (::poll(&entry, 1, 100) <= 0)
      continue;
    char chunk[4096];
    auto received = ::recv(fd, chunk, sizeof chunk, 0);
    if (received <= 0)
      break;
    bytes.append(chunk, static_cast<size_t>(received));
  }
  return bytes;
}

bool closed_by_server(int fd) {
  pollfd entry{fd, POLLIN, 0};
  char byte;
  return ::poll(&entry, 1, 2000) > 0 && ::recv(fd, &byte, 1, 0) == 0;
}

TEST(edge_server, idle_keep_alive_connections_hold_no_worker) {
  edge_limits limits;
  limits.worker_threads = 2;
  running_edge edge{limits};
  std::vector<int> idle;
  for (int i = 0; i < 20; ++i) {
    idle.push_back(connect_to(edge.port()));
    send_text(idle.back(), "GET /ok HTTP/1.1\r\nHost: x\r\n\r\n");
    ASSERT_NE(read_responses(idle.back(), 1, "ok").find("200 OK"), std::string::npos);
  }
  // 20 kept-alive connections and 2 workers: a new client is still served.
  int fresh = connect_to(edge.port());
  auto started = std::chrono::steady_clock::now();
  send_text(fresh, "GET /ok HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_NE(read_responses(fresh, 1, "ok").find("200 OK"), std::string::npos);
  EXPECT_LT(std::chrono::steady_clock::now() - started, 1s);
  EXPECT_EQ(edge.server().open_connections(), 21u);
  // And the idle ones still answer.
  send_text(idle.front(), "GET /ok HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_NE(read_responses(idle.front(), 1, "ok").find("200 OK"), std::string::npos);
  for (int fd : idle)
    ::close(fd);
  ::close(fresh);
}

TEST(edge_server, answers_pipelined_requests_in_order) {
  running_edge edge{edge_limits{}};
  int fd = connect_to(edge.port());
  std::string requests;
  for (int i = 0; i < 16; ++i)
    requests += "GET /" + std::string{i % 4 == 1 ? "slow" : "ok"} +
                " HTTP/1.1\r\nHost: x\r\nX-Request-Id: r" + std::to_string(i) +
                "\r\n\r\n";
  send_text(fd, requests);
  auto answers = read_responses(fd, 16, "ok");
  size_t at = 0;
  for (int i = 0; i < 16; ++i) {
    auto id = answers.find("r" + std::to_string(i) + "\r\n", at);
    ASSERT_NE(id, std::string::npos) << "answer " << i << " missing or out of order";
    at = id;
  }
  ::close(fd);
}

TEST(edge_server, closes_a_connection_after_its_request_cap) {
  edge_limits limits;
  limits.max_requests_per_connection = 3;
  running_edge edge{limits};
  int fd = connect_to(edge.port());
  for (int i = 1; i <= 3; ++i) {
    send_text(fd, "GET /ok HTTP/1.1\r\nHost: x\r\n\r\n");
    auto answer = read_responses(fd, 1, "ok");
    EXPECT_NE(answer.find("200 OK"), std::string::npos);
    EXPECT_EQ(answer.find("Connection: close") != std::string::npos, i == 3) << answer;
  }
  EXPECT_TRUE(closed_by_server(fd));
  ::close(fd);
}

TEST(edge_server, stop_closes_idle_connections_and_finishes_busy_ones) {
  auto edge = std::make_unique<running_edge>(edge_limits{});
  int idle = connect_to(edge->port());
  send_text(idle, "GET /ok HTTP/1.1\r\nHost: x\r\n\r\n");
  read_responses(idle, 1, "ok");
  int busy = connect_to(edge->port());
  send_text(busy, "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n");
  std::this_thread::sleep_for(100ms); // the slow request is on a worker
  edge.reset();                       // stop: drains, then returns
  auto answer = read_responses(busy, 1, "slow");
  EXPECT_NE(answer.find("200 OK"), std::string::npos) << answer;
  EXPECT_TRUE(closed_by_server(idle));
  ::close(idle);
  ::close(busy);
}

TEST(random_request_id, is_32_lowercase_hex_digits_and_never_repeats) {
  std::set<std::string> seen;
  std::set<char> digits_used;
  for (int i = 0; i < 10000; ++i) {
    auto id = random_request_id();
    ASSERT_EQ(id.size(), 32u) << id;
    for (char c : id) {
      ASSERT_TRUE((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')) << id;
      digits_used.insert(c);
    }
    EXPECT_TRUE(seen.insert(id).second) << "repeated: " << id;
  }
  EXPECT_EQ(digits_used.size(), 16u); // every hex digit turns up
}

} // namespace
} // namespace actorserve
