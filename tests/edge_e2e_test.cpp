// End-to-end tests of the HTTP edge (issue 13, API.md "The edge"): the real
// binary, spoken to over raw sockets. A new client is served in turn with
// busy keep-alive connections; a thousand idle connections cost no thread;
// pipelined requests are all answered in order; a client that goes away
// cancels its queued request; SIGTERM closes idle connections, answers the
// requests in flight and exits 0. Ordering and counts are asserted
// strictly, latencies loosely (two shared cores).

#include <gtest/gtest.h>

#include <atomic>
#include <csignal>
#include <memory>
#include <optional>
#include <thread>

#include "tests/edge_client.hpp"
#include "tests/test_support.hpp"

namespace actorserve {
namespace {

using namespace std::chrono_literals;
using json = nlohmann::json;
namespace fs = std::filesystem;
using clock = std::chrono::steady_clock;
using testing::edge_connection;
using testing::get_request;
using testing::post_request;

/// The `slow` model (tensor input [4], raw output, ~50 ms a row,
/// max_batch_size 1, one instance) of the build's test repository.
fs::path slow_model_folder() {
  return testing::test_repository() / "slow";
}

const std::string digits_path = "/api/v1/models/digits/predict";
const std::string affine_path = "/api/v1/models/affine/predict";
const std::string slow_path = "/api/v1/models/slow/predict";

/// An affine predict body; its answer's output is {2 * first + 1, 3, 5, 7}.
std::string affine_body(int first) {
  return json{{"instances", {{{"data", {{first, 1}, {2, 3}}}}}}}.dump();
}

/// A slow predict body of `rows` rows (about 50 ms of model time each).
std::string slow_body(int rows) {
  json instances = json::array();
  for (int i = 0; i < rows; ++i)
    instances.push_back({{"data", {i, 1, 2, 3}}});
  return json{{"instances", instances}}.dump();
}

std::chrono::milliseconds since(clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(clock::now() - start);
}

/// A prediction that keeps the model busy while it is in flight.
struct busy_prediction {
  std::string model;
  std::string request;
};

class edge_e2e : public ::testing::Test {
protected:
  /// A repository with digits v1, affine and slow.
  void SetUp() override {
    testing::copy_model("digits", repository_.path(), {"1"});
    testing::copy_model("affine", repository_.path());
    fs::copy(slow_model_folder(), repository_.path() / "slow",
             fs::copy_options::recursive);
  }

  /// The server, without a rate limit: the tests send more than 1,000
  /// requests a second from one address.
  std::unique_ptr<testing::server_process> start(std::vector<std::string> flags) {
    flags.insert(flags.begin(), {"--model-repository", repository_.path().string(),
                                 "--anonymous-rate-per-s", "0"});
    return std::make_unique<testing::server_process>(flags);
  }

  /// One slow row: a prediction that keeps a worker waiting ~50 ms.
  busy_prediction one_busy_prediction() const {
    return {"slow", post_request(slow_path, slow_body(1))};
  }

  static double metric(const testing::server_process& server, const std::string& name,
                       const std::vector<std::string>& labels) {
    auto exposition = testing::exchange(server.port(), get_request("/metrics"), 10s);
    return testing::metric_sum(exposition.body, name, labels);
  }

  static bool queue_reaches(const testing::server_process& server,
                            const std::string& model, double depth) {
    return testing::poll_until(
        [&] {
          return metric(server, "actorserve_queue_depth", {"model=\"" + model + "\""}) >=
                 depth;
        },
        20s);
  }

  testing::temp_dir repository_;
};

TEST_F(edge_e2e, a_new_client_is_served_while_16_connections_keep_4_threads_busy) {
  auto server = start({"--http-threads", "4"});
  auto busy = one_busy_prediction();
  std::atomic<bool> stop{false};
  std::atomic<int> answered{0};
  std::atomic<int> failed{0};
  std::atomic<int> failed_status{0}; // of the last failure, 0: no response
  std::vector<std::thread> clients;
  for (int i = 0; i < 16; ++i)
    clients.emplace_back([&] {
      edge_connection connection{server->port()};
      while (!stop) {
        auto status =
            connection.send_raw(busy.request) ? connection.read_response(30s).status : 0;
        if (status != 200) {
          failed_status = status;
          ++failed;
          return;
        }
        ++answered;
      }
    });
  bool busy_started = testing::poll_until([&] { return answered >= 16; }, 30s);
  auto probe_sent = clock::now();
  auto probe = testing::exchange(server->port(), get_request("/health"), 10s);
  auto probe_wait = since(probe_sent);
  stop = true;
  for (auto& client : clients)
    client.join();

  ASSERT_TRUE(busy_started) << "the 16 busy connections got " << answered << " answers";
  EXPECT_EQ(probe.status, 200) << "no answer to GET /health within 10 s";
  EXPECT_LT(probe_wait.count(), 2000)
      << "a new client waited behind the busy connections (" << busy.model
      << " predictions)";
  EXPECT_EQ(failed, 0) << "busy connections that got no 200 (last: " << failed_status
                       << ")";
}

TEST_F(edge_e2e, a_thousand_idle_keep_alive_connections_leave_predictions_unhindered) {
  ASSERT_TRUE(testing::raise_open_file_limit(4096)) << "RLIMIT_NOFILE is too low";
  auto server = start({"--http-threads", "8", "--keep-alive-timeout-s", "60"});
  std::vector<edge_connection> idle;
  idle.reserve(1000);
  while (idle.size() < 1000) {
    idle.emplace_back(server->port());
    bool sent = idle.back().send_raw(get_request("/health"));
    ASSERT_TRUE(sent && idle.back().read_response(10s).status == 200)
        << "connection " << idle.size() << " got no answer to its first GET /health";
  }

  for (int i = 0; i < 20; ++i) {
    auto sent = clock::now();
    auto answer = testing::exchange(
        server->port(), post_request(digits_path, testing::first_digit_body()), 10s);
    EXPECT_EQ(answer.status, 200) << "prediction " << i;
    EXPECT_LT(since(sent).count(), 2000) << "prediction " << i;
    EXPECT_EQ(json::parse(answer.body, nullptr, false)["predictions"].size(), 1u);
  }

  for (size_t i = 0; i < idle.size(); i += 50) {
    ASSERT_TRUE(idle[i].send_raw(get_request("/health"))) << "idle connection " << i;
    EXPECT_EQ(idle[i].read_response(10s).status, 200) << "idle connection " << i;
  }
}

/// 16 requests, GET /health and affine predictions in turn, each with its
/// own X-Request-Id; `starts` holds where each begins in `bytes`.
struct pipelined_requests {
  std::string bytes;
  std::vector<size_t> starts;

  pipelined_requests() {
    for (int i = 0; i < 16; ++i) {
      starts.push_back(bytes.size());
      testing::header_list id{{"X-Request-Id", request_id(i)}};
      bytes += i % 2 == 0 ? get_request("/health", id)
                          : post_request(affine_path, affine_body(i), id);
    }
  }

  static std::string request_id(int i) { return "pipelined-" + std::to_string(i); }

  /// Reads the 16 answers and checks their order and bodies.
  static void expect_answers_in_order(edge_connection& connection) {
    for (int i = 0; i < 16; ++i) {
      auto answer = connection.read_response(15s);
      ASSERT_EQ(answer.status, 200) << "answer " << i << " of 16";
      EXPECT_EQ(answer.header("X-Request-Id"), request_id(i));
      auto body = json::parse(answer.body, nullptr, false);
      if (i % 2 == 0)
        EXPECT_EQ(body["status"], "healthy") << answer.body;
      else
        EXPECT_EQ(body["predictions"][0]["output"], json({2 * i + 1, 3, 5, 7}))
            << answer.body;
    }
  }
};

TEST_F(edge_e2e, sixteen_requests_in_one_send_are_all_answered_in_order) {
  auto server = start({});
  pipelined_requests requests;
  edge_connection connection{server->port()};
  ASSERT_TRUE(connection.send_raw(requests.bytes));
  pipelined_requests::expect_answers_in_order(connection);
}

TEST_F(edge_e2e, pipelined_requests_split_inside_one_request_are_all_answered_in_order) {
  auto server = start({});
  pipelined_requests requests;
  // The middle of the 10th request: a prediction, cut inside its headers.
  auto split = (requests.starts[9] + requests.starts[10]) / 2;
  std::string_view bytes{requests.bytes};
  edge_connection connection{server->port()};
  ASSERT_TRUE(connection.send_raw(bytes.substr(0, split)));
  std::this_thread::sleep_for(100ms); // the server reads the first part alone
  ASSERT_TRUE(connection.send_raw(bytes.substr(split)));
  pipelined_requests::expect_answers_in_order(connection);
}

TEST_F(edge_e2e, clients_that_close_while_queued_cancel_their_requests) {
  auto server = start({"--http-threads", "8"});
  edge_connection first{server->port()};
  ASSERT_TRUE(first.send_raw(post_request(slow_path, slow_body(20)))); // ~1 s
  std::vector<edge_connection> leaving;
  for (int i = 0; i < 3; ++i) {
    leaving.emplace_back(server->port());
    ASSERT_TRUE(leaving.back().send_raw(post_request(slow_path, slow_body(40)))); // ~2 s
  }
  ASSERT_TRUE(queue_reaches(*server, "slow", 4)) << "the 4 requests were never queued";
  for (auto& connection : leaving)
    connection.close();

  auto sent = clock::now();
  auto last =
      testing::exchange(server->port(), post_request(slow_path, slow_body(1)), 20s);
  auto waited = since(sent);
  EXPECT_EQ(last.status, 200);
  EXPECT_LT(waited.count(), 3000)
      << "the 3 withdrawn requests (6 s of model time) were computed";

  auto cancelled = [&] {
    return metric(*server, "actorserve_cancelled_requests_total",
                  {"model=\"slow\"", "reason=\"client_gone\""});
  };
  EXPECT_TRUE(testing::poll_until([&] { return cancelled() >= 3; }, 5s))
      << "cancelled_requests_total{model=\"slow\",reason=\"client_gone\"} = "
      << cancelled();
  auto answer = first.read_response(20s);
  ASSERT_EQ(answer.status, 200);
  EXPECT_EQ(json::parse(answer.body)["predictions"].size(), 20u);
}

TEST_F(edge_e2e, sigterm_closes_idle_connections_answers_requests_in_flight_exits_0) {
  // Four requests stay in flight for a while: 10 slow rows each.
  std::string model = "slow";
  std::string request = post_request(slow_path, slow_body(10));
  auto server = start({});
  std::vector<edge_connection> idle;
  for (int i = 0; i < 50; ++i) {
    idle.emplace_back(server->port());
    ASSERT_TRUE(idle.back().send_raw(get_request("/health")));
    ASSERT_EQ(idle.back().read_response(10s).status, 200) << "idle connection " << i;
  }
  std::vector<edge_connection> in_flight;
  for (int i = 0; i < 4; ++i) {
    in_flight.emplace_back(server->port());
    ASSERT_TRUE(in_flight.back().send_raw(request));
  }
  ASSERT_TRUE(queue_reaches(*server, model, 4)) << "the 4 requests were never queued";

  ASSERT_EQ(::kill(server->pid(), SIGTERM), 0);
  auto signalled = clock::now();
  for (size_t i = 0; i < idle.size(); ++i)
    EXPECT_TRUE(idle[i].closed_by_server_within(
        std::max(0ms, 5s - since(signalled)))) // all within 5 s of the signal
        << "idle connection " << i << " was not closed";
  for (size_t i = 0; i < in_flight.size(); ++i)
    EXPECT_EQ(in_flight[i].read_response(30s).status, 200) << "request in flight " << i;
  EXPECT_EQ(server->wait_for_exit(30s), 0);
  EXPECT_LT(since(signalled).count(), 15000) << "ms from SIGTERM to exit";
}

} // namespace
} // namespace actorserve
