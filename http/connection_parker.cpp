#include "http/connection_parker.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <system_error>

namespace actorserve {

namespace {

/// How often idle, stalled and lingering connections are checked.
constexpr std::chrono::milliseconds sweep_interval{100};
/// A lingering close reads and drops the client's bytes at most this long.
constexpr std::chrono::seconds lingering_time{2};
constexpr int max_events = 256;

constexpr uint32_t wait_for_request = EPOLLIN | EPOLLRDHUP | EPOLLONESHOT;
constexpr uint32_t wait_for_hangup = EPOLLRDHUP | EPOLLONESHOT;
constexpr uint32_t hangup_events = EPOLLRDHUP | EPOLLHUP | EPOLLERR;
/// No event (a one-shot entry reports even EPOLLHUP at most once).
constexpr uint32_t disarmed = EPOLLONESHOT;

} // namespace

connection_parker::connection_parker(const edge_limits& limits, dispatch_fn dispatch,
                                     stalled_fn stalled)
    : limits_(limits), dispatch_(std::move(dispatch)), stalled_(std::move(stalled)) {
  epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
  wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (epoll_fd_ < 0 || wake_fd_ < 0)
    throw std::system_error(errno, std::generic_category(), "epoll/eventfd");
  epoll_event wake_event{};
  wake_event.events = EPOLLIN;
  wake_event.data.ptr = nullptr;
  ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &wake_event);
  thread_ = std::thread{[this] { run(); }};
}

connection_parker::~connection_parker() {
  stopping_ = true;
  wake();
  thread_.join();
  // Workers are gone: whatever is still open is closed here.
  std::vector<edge_connection*> left;
  {
    std::lock_guard<std::mutex> guard{mutex_};
    for (auto& [pointer, connection] : open_)
      left.push_back(pointer);
  }
  for (auto* connection : left)
    finish(*connection);
  free_finished();
  ::close(wake_fd_);
  ::close(epoll_fd_);
}

bool connection_parker::adopt(int fd) {
  auto connection = std::make_unique<edge_connection>(fd, limits_);
  auto* pointer = connection.get();
  {
    std::lock_guard<std::mutex> guard{mutex_};
    if (closing_idle_ || open_.size() >= limits_.max_connections)
      return false;
    open_.emplace(pointer, std::move(connection));
  }
  int on = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
  epoll_event event{};
  event.events = wait_for_request;
  event.data.ptr = pointer;
  if (::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &event) != 0) {
    std::lock_guard<std::mutex> guard{mutex_};
    open_.erase(pointer); // the caller still owns fd
    return false;
  }
  return true;
}

void connection_parker::park(edge_connection& connection) {
  if (closing_idle_) {
    finish(connection);
    return;
  }
  connection.idle_since = clock::now();
  connection.request_began.reset();
  if (connection.stream.buffered() > 0) // part of a pipelined request
    connection.request_began = connection.idle_since;
  connection.stream.release_idle_memory();
  connection.owner = edge_connection::state::parked;
  arm(connection, wait_for_request);
}

void connection_parker::linger(edge_connection& connection) {
  ::shutdown(connection.fd, SHUT_WR);
  connection.linger_until = clock::now() + lingering_time;
  connection.owner = edge_connection::state::lingering;
  arm(connection, wait_for_request);
}

void connection_parker::close(edge_connection& connection) {
  finish(connection);
}

void connection_parker::watch_hangup(edge_connection& connection,
                                     std::function<void()> on_hangup) {
  {
    std::lock_guard<std::mutex> guard{connection.hangup_mutex};
    connection.on_hangup = std::move(on_hangup);
  }
  arm(connection, wait_for_hangup);
}

void connection_parker::unwatch_hangup(edge_connection& connection) {
  {
    std::lock_guard<std::mutex> guard{connection.hangup_mutex};
    connection.on_hangup = nullptr;
  }
  // Disarmed, so that a hang-up cannot reach the parking thread after the
  // worker hands the connection back (it might close it while the worker
  // re-arms it).
  arm(connection, disarmed);
}

void connection_parker::close_idle() {
  closing_idle_ = true;
  wake();
}

size_t connection_parker::connections() const {
  std::lock_guard<std::mutex> guard{mutex_};
  return open_.size();
}

bool connection_parker::wait_until_closed(std::chrono::milliseconds timeout) const {
  std::unique_lock<std::mutex> guard{mutex_};
  return all_closed_.wait_for(guard, timeout, [this] { return open_.empty(); });
}

void connection_parker::run() {
  epoll_event events[max_events];
  auto next_sweep = clock::now() + sweep_interval;
  while (!stopping_) {
    auto wait =
        std::chrono::duration_cast<std::chrono::milliseconds>(next_sweep - clock::now());
    int count = ::epoll_wait(epoll_fd_, events, max_events,
                             static_cast<int>(std::max<int64_t>(0, wait.count())));
    for (int i = 0; i < count; ++i) {
      if (events[i].data.ptr == nullptr) {
        uint64_t ignored;
        [[maybe_unused]] auto read = ::read(wake_fd_, &ignored, sizeof ignored);
        continue;
      }
      on_event(*static_cast<edge_connection*>(events[i].data.ptr), events[i].events);
    }
    auto now = clock::now();
    if (now >= next_sweep || closing_idle_) {
      sweep(now);
      next_sweep = now + sweep_interval;
    }
    free_finished();
  }
}

void connection_parker::on_event(edge_connection& connection, uint32_t events) {
  switch (connection.owner.load()) {
    case edge_connection::state::parked:
      on_readable(connection);
      return;
    case edge_connection::state::lingering:
      drain_lingering(connection);
      return;
    case edge_connection::state::busy: {
      if ((events & hangup_events) == 0)
        return;
      std::function<void()> on_hangup;
      {
        std::lock_guard<std::mutex> guard{connection.hangup_mutex};
        on_hangup = std::move(connection.on_hangup);
        connection.on_hangup = nullptr;
      }
      if (on_hangup)
        on_hangup();
      return;
    }
    case edge_connection::state::closed:
      return;
  }
}

void connection_parker::on_readable(edge_connection& connection) {
  auto received = connection.stream.receive_available();
  if (received == edge_stream::receive_result::closed) {
    finish(connection); // the client left (idle, or in the middle of a request)
    return;
  }
  if (connection.stream.buffered() > 0 && !connection.request_began)
    connection.request_began = clock::now();
  if (connection.stream.buffered() > 0 && connection.stream.request_ready() &&
      !closing_idle_) {
    connection.owner = edge_connection::state::busy;
    dispatch_(connection);
    return;
  }
  arm(connection, wait_for_request);
}

void connection_parker::drain_lingering(edge_connection& connection) {
  char sink[16384];
  for (;;) {
    auto received = ::recv(connection.fd, sink, sizeof sink, MSG_DONTWAIT);
    if (received > 0)
      continue;
    if (received < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      arm(connection, wait_for_request);
      return;
    }
    finish(connection); // the client closed too, or the connection failed
    return;
  }
}

void connection_parker::sweep(clock::time_point now) {
  std::vector<edge_connection*> expired;
  std::vector<edge_connection*> stalled;
  {
    std::lock_guard<std::mutex> guard{mutex_};
    for (auto& [pointer, connection] : open_) {
      auto owner = connection->owner.load();
      if (owner == edge_connection::state::lingering) {
        if (closing_idle_ || now >= connection->linger_until)
          expired.push_back(pointer);
      } else if (owner == edge_connection::state::parked) {
        if (closing_idle_)
          expired.push_back(pointer);
        else if (connection->request_began &&
                 now - *connection->request_began >= limits_.header_timeout)
          stalled.push_back(pointer);
        else if (!connection->request_began &&
                 now - connection->idle_since >= limits_.idle_timeout)
          expired.push_back(pointer);
      }
    }
  }
  for (auto* connection : expired)
    finish(*connection);
  for (auto* connection : stalled) {
    connection->owner = edge_connection::state::busy;
    stalled_(*connection);
  }
}

void connection_parker::arm(edge_connection& connection, uint32_t events) {
  epoll_event event{};
  event.events = events;
  event.data.ptr = &connection;
  ::epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, connection.fd, &event);
}

void connection_parker::finish(edge_connection& connection) {
  connection.owner = edge_connection::state::closed;
  ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, connection.fd, nullptr);
  ::shutdown(connection.fd, SHUT_RDWR);
  ::close(connection.fd);
  std::lock_guard<std::mutex> guard{mutex_};
  auto node = open_.extract(&connection);
  if (node)
    finished_.push_back(std::move(node.mapped()));
  if (open_.empty())
    all_closed_.notify_all();
}

void connection_parker::free_finished() {
  std::vector<std::unique_ptr<edge_connection>> done;
  std::lock_guard<std::mutex> guard{mutex_};
  done.swap(finished_);
}

void connection_parker::wake() {
  uint64_t one = 1;
  [[maybe_unused]] auto written = ::write(wake_fd_, &one, sizeof one);
}

} // namespace actorserve
