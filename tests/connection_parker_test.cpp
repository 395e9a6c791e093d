// The parking thread's bookkeeping, on socket pairs: when a parked
// connection goes to a worker, idle and stalled connections, lingering
// closes, hang-ups while busy, the connection cap and closing on stop.

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>
#include <vector>

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http/connection_parker.hpp"

namespace actorserve {
namespace {

using namespace std::chrono_literals;
using clock = std::chrono::steady_clock;

/// Polls `condition` every 5 ms for up to `timeout`.
template <class Condition>
bool eventually(Condition condition, std::chrono::milliseconds timeout = 3000ms) {
  auto until = clock::now() + timeout;
  while (clock::now() < until) {
    if (condition())
      return true;
    std::this_thread::sleep_for(5ms);
  }
  return condition();
}

/// True when the peer of `fd` closed or shut down its sending side.
bool sees_eof(int fd, std::chrono::milliseconds timeout = 3000ms) {
  pollfd entry{fd, POLLIN, 0};
  if (::poll(&entry, 1, static_cast<int>(timeout.count())) <= 0)
    return false;
  char byte;
  return ::recv(fd, &byte, 1, MSG_DONTWAIT) == 0;
}

void send_text(int fd, const std::string& text) {
  ASSERT_EQ(::send(fd, text.data(), text.size(), MSG_NOSIGNAL), ssize_t(text.size()));
}

/// A parker whose dispatched and stalled connections are recorded (and stay
/// busy until the test hands them back).
class parker_test : public ::testing::Test {
protected:
  void SetUp() override {
    limits.idle_timeout = 1s;
    limits.header_timeout = 1s;
    limits.max_connections = 4;
  }

  void start() {
    parker = std::make_unique<connection_parker>(
        limits,
        [this](edge_connection& connection) {
          std::lock_guard<std::mutex> guard{mutex};
          dispatched.push_back(&connection);
        },
        [this](edge_connection& connection) {
          std::lock_guard<std::mutex> guard{mutex};
          stalled.push_back(&connection);
        });
  }

  /// A new connection: the parker takes one end, the test keeps the other.
  int connect() {
    int ends[2];
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, ends), 0);
    if (!parker->adopt(ends[0])) {
      ::close(ends[0]);
      ::close(ends[1]);
      return -1;
    }
    clients.push_back(ends[1]);
    return ends[1];
  }

  /// Sends a whole request head on `client` and returns its connection once
  /// the parker dispatched it (busy from then on).
  edge_connection& dispatch_request(int client) {
    send_text(client, "GET / HTTP/1.1\r\n\r\n");
    auto before = dispatched_count();
    EXPECT_TRUE(eventually([&] { return dispatched_count() == before + 1; }));
    std::lock_guard<std::mutex> guard{mutex};
    return *dispatched.back();
  }

  size_t dispatched_count() {
    std::lock_guard<std::mutex> guard{mutex};
    return dispatched.size();
  }

  void TearDown() override {
    parker.reset();
    for (int fd : clients)
      ::close(fd);
  }

  edge_limits limits;
  std::unique_ptr<connection_parker> parker;
  std::mutex mutex;
  std::vector<edge_connection*> dispatched;
  std::vector<edge_connection*> stalled;
  std::vector<int> clients;
};

TEST_F(parker_test, dispatches_a_connection_once_its_request_head_is_complete) {
  start();
  int client = connect();
  send_text(client, "GET /health HTTP/1.1\r\nHost: x\r\n");
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(dispatched_count(), 0u) << "half a head must not take a worker";
  send_text(client, "\r\n");
  ASSERT_TRUE(eventually([&] { return dispatched_count() == 1; }));
  auto& connection = *dispatched.front();
  EXPECT_EQ(connection.owner.load(), edge_connection::state::busy);
  EXPECT_EQ(connection.stream.buffered(), 33u)
      << "the head waits in the read-ahead buffer";
  EXPECT_TRUE(connection.request_began.has_value());
}

TEST_F(parker_test, a_parked_connection_is_dispatched_again_on_its_next_request) {
  start();
  int client = connect();
  send_text(client, "GET / HTTP/1.1\n\n");
  ASSERT_TRUE(eventually([&] { return dispatched_count() == 1; }));
  auto& connection = *dispatched.front();
  char head[64];
  ASSERT_EQ(connection.stream.read(head, sizeof head), 16);
  parker->park(connection);
  send_text(client, "GET / HTTP/1.1\n\n");
  ASSERT_TRUE(eventually([&] { return dispatched_count() == 2; }));
  EXPECT_EQ(dispatched.back(), &connection);
}

TEST_F(parker_test, closes_a_connection_idle_past_the_idle_timeout) {
  start();
  int idle = connect();
  auto opened = clock::now();
  ASSERT_TRUE(sees_eof(idle, 3000ms));
  EXPECT_GE(clock::now() - opened, 900ms);
  EXPECT_TRUE(eventually([&] { return parker->connections() == 0; }));
}

TEST_F(parker_test, reports_a_request_head_that_stalls_past_the_header_timeout) {
  start();
  int slow = connect();
  send_text(slow, "GET / HTTP/1.1\r\nHost: ");
  ASSERT_TRUE(eventually([&] {
    std::lock_guard<std::mutex> guard{mutex};
    return stalled.size() == 1;
  }));
  EXPECT_EQ(stalled.front()->owner.load(), edge_connection::state::busy);
  EXPECT_EQ(dispatched_count(), 0u);
  parker->close(*stalled.front());
  EXPECT_TRUE(sees_eof(slow));
}

TEST_F(parker_test, a_lingering_connection_reads_until_the_client_closes) {
  start();
  int client = connect();
  send_text(client, "POST / HTTP/1.1\r\nContent-Length: 100000\r\n\r\n");
  ASSERT_TRUE(eventually([&] { return dispatched_count() == 1; }));
  parker->linger(*dispatched.front());
  EXPECT_TRUE(sees_eof(client)) << "no more bytes come from the server";
  // The client may still send its body without being reset.
  std::string body(50000, 'x');
  send_text(client, body);
  EXPECT_EQ(parker->connections(), 1u);
  ::shutdown(client, SHUT_WR);
  EXPECT_TRUE(eventually([&] { return parker->connections() == 0; }));
}

TEST_F(parker_test, tells_a_busy_connection_that_its_client_hung_up) {
  start();
  int client = connect();
  auto& connection = dispatch_request(client);
  std::atomic<int> hangups{0};
  parker->watch_hangup(connection, [&] { ++hangups; });
  std::this_thread::sleep_for(50ms);
  EXPECT_EQ(hangups.load(), 0);
  ::shutdown(client, SHUT_WR);
  EXPECT_TRUE(eventually([&] { return hangups.load() == 1; }));
  parker->unwatch_hangup(connection);
  parker->close(connection);
}

TEST_F(parker_test, a_watch_cleared_before_the_hangup_is_not_called) {
  start();
  int client = connect();
  auto& connection = dispatch_request(client);
  std::atomic<int> hangups{0};
  parker->watch_hangup(connection, [&] { ++hangups; });
  parker->unwatch_hangup(connection);
  ::shutdown(client, SHUT_WR);
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(hangups.load(), 0);
  parker->close(connection);
}

TEST_F(parker_test, refuses_connections_past_max_connections) {
  start();
  for (size_t i = 0; i < limits.max_connections; ++i)
    ASSERT_GE(connect(), 0);
  EXPECT_EQ(connect(), -1);
  EXPECT_EQ(parker->connections(), limits.max_connections);
}

TEST_F(parker_test, close_idle_closes_parked_connections_and_busy_ones_when_handed_back) {
  limits.idle_timeout = 60s;
  start();
  int idle = connect();
  int busy = connect();
  auto& busy_connection = dispatch_request(busy);
  parker->close_idle();
  EXPECT_TRUE(sees_eof(idle));
  EXPECT_TRUE(eventually([&] { return parker->connections() == 1; }))
      << "the busy connection stays until handed back";
  EXPECT_FALSE(parker->wait_until_closed(50ms));
  EXPECT_EQ(connect(), -1) << "no new connections once closing";
  parker->park(busy_connection);
  EXPECT_TRUE(sees_eof(busy));
  EXPECT_TRUE(parker->wait_until_closed(1000ms));
}

} // namespace
} // namespace actorserve
