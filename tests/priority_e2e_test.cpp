// End-to-end tests of request priority (issue 15): the real binary serving
// the test repository's `slow` model (one instance, ~50 ms a row, batches of
// one row) with two priority levels. A flood of low-priority requests fills
// the queue; one high-priority request sent behind it is answered after at
// most the batch that was running when it arrived, through the v1 API and
// the Open Inference Protocol alike, and as an async job. Without a priority
// the same request waits behind the flood, which shows what the first
// assertion measures.
// Ordering and counts are asserted, not latencies (two shared cores).

#include <gtest/gtest.h>

#include <atomic>
#include <functional>
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

constexpr int flood_size = 20;

/// How one door spells a one-row request to `slow` with a priority.
struct door {
  std::string name;
  std::string path;
  std::function<json(int row)> body;
};

json with_priority(json body, std::optional<json> priority) {
  if (priority)
    body["parameters"] = {{"priority", *priority}};
  return body;
}

const door v1_door{"v1", "/api/v1/models/slow/predict", [](int row) {
                     return json{{"instances", {{{"data", {row, 0, 0, 0}}}}}};
                   }};

const door oip_door{"oip", "/v2/models/slow/infer", [](int row) {
                      return json{{"inputs",
                                   {{{"name", "input"},
                                     {"shape", {1, 4}},
                                     {"datatype", "FP32"},
                                     {"data", {row, 0, 0, 0}}}}}};
                    }};

/// What the flood and the request sent behind it saw.
struct race {
  bool flood_queued = false; // the whole flood reached the server
  int queued_at_send = 0;    // flood requests queued when the last one was sent
  int answered_before = -1;  // flood answers after the last request was sent
  int last_status = 0;
  int flood_ok = 0;
};

class priority_e2e : public ::testing::Test {
protected:
  /// `slow` with two levels and a starvation bound far beyond the test.
  void SetUp() override {
    testing::copy_prioritised_slow_model(repository_.path());
    server_ = std::make_unique<testing::server_process>(
        std::vector<std::string>{"--model-repository", repository_.path().string(),
                                 "--anonymous-rate-per-s", "0", "--http-threads", "32"});
  }

  double queue_depth() const {
    auto exposition =
        testing::exchange(server_->port(), testing::get_request("/metrics"), 10s);
    return testing::metric_sum(exposition.body, "actorserve_queue_depth",
                               {"model=\"slow\""});
  }

  testing::http_answer post(const door& d, const json& body) const {
    auto client = server_->client();
    client.set_read_timeout(120s);
    return testing::post_json(client, d.path, body.dump());
  }

  /// Submits a v1 job with priority 1 and waits for it; 200 once succeeded.
  int run_high_priority_job() const {
    auto client = server_->client();
    auto body = with_priority(v1_door.body(100), json(1));
    auto submitted = testing::post_json(client, "/api/v1/models/slow/jobs", body.dump());
    if (submitted.status != 202)
      return submitted.status;
    const auto location = "/api/v1/jobs/" + submitted.body["job_id"].get<std::string>();
    for (int attempt = 0; attempt < 6000; ++attempt) {
      auto answer = testing::get_json(client, location);
      if (answer.status != 202)
        return answer.body["status"] == "succeeded" ? 200 : 500;
      std::this_thread::sleep_for(10ms);
    }
    return 0;
  }

  /// Sends flood_size low-priority requests (no priority, the lowest level
  /// by name, and one above the levels: all the lowest), waits until the
  /// whole flood reached the server, then sends one request with `priority`.
  race flood_then_one(const door& d, std::optional<json> priority) const {
    return flood_then(
        d, [&] { return post(d, with_priority(d.body(100), priority)).status; });
  }

  /// The flood of flood_then_one, then `send_last`, which returns a status.
  race flood_then(const door& d, const std::function<int()>& send_last) const {
    const std::optional<json> low_spellings[] = {std::nullopt, json(2), json(9)};
    std::atomic<int> answered{0};
    std::atomic<int> ok{0};
    std::vector<std::thread> flood;
    for (int i = 0; i < flood_size; ++i)
      flood.emplace_back([&, i] {
        if (post(d, with_priority(d.body(i), low_spellings[i % 3])).status == 200)
          ++ok;
        ++answered;
      });
    race result;
    // Queued, plus answered, plus the one running: the whole flood arrived. (A
    // poll for a queue depth alone can miss its moment for good on a slow box.)
    result.flood_queued = testing::poll_until(
        [&] {
          result.queued_at_send = static_cast<int>(queue_depth());
          return result.queued_at_send + answered >= flood_size - 1;
        },
        60s);
    if (result.flood_queued) {
      const int answered_at_send = answered;
      result.last_status = send_last();
      result.answered_before = answered - answered_at_send;
    }
    for (auto& thread : flood)
      thread.join();
    result.flood_ok = ok;
    return result;
  }

  testing::temp_dir repository_;
  std::unique_ptr<testing::server_process> server_;
};

TEST_F(priority_e2e, a_high_priority_request_overtakes_a_low_priority_flood) {
  for (const door& d : {v1_door, oip_door}) {
    SCOPED_TRACE(d.name);
    auto result = flood_then_one(d, json(1));
    ASSERT_TRUE(result.flood_queued) << "the flood never reached the server";
    // Enough of the flood waits ahead of it for the overtaking to mean something.
    EXPECT_GE(result.queued_at_send, 7);
    EXPECT_EQ(result.last_status, 200);
    // The batch running when it arrived, and at most one more that started
    // while it was on its way from the client to the queue.
    EXPECT_LE(result.answered_before, 2);
    EXPECT_EQ(result.flood_ok, flood_size);
  }
}

TEST_F(priority_e2e, a_high_priority_job_overtakes_a_low_priority_flood) {
  auto result = flood_then(v1_door, [&] { return run_high_priority_job(); });
  ASSERT_TRUE(result.flood_queued) << "the flood never reached the server";
  EXPECT_GE(result.queued_at_send, 7);
  EXPECT_EQ(result.last_status, 200);
  // As above, plus one row that may end while the job's answer is polled.
  EXPECT_LE(result.answered_before, 3);
  EXPECT_EQ(result.flood_ok, flood_size);
}

TEST_F(priority_e2e, without_a_priority_the_same_request_waits_behind_the_flood) {
  for (const door& d : {v1_door, oip_door}) {
    SCOPED_TRACE(d.name);
    auto result = flood_then_one(d, std::nullopt);
    ASSERT_TRUE(result.flood_queued) << "the flood never reached the server";
    EXPECT_GE(result.queued_at_send, 7);
    EXPECT_EQ(result.last_status, 200);
    // It waits behind everything queued when it was sent, but the last one or two.
    EXPECT_GE(result.answered_before, result.queued_at_send - 2);
    EXPECT_EQ(result.flood_ok, flood_size);
  }
}

TEST_F(priority_e2e, a_bad_priority_is_a_400_naming_it) {
  auto v1 = post(v1_door, with_priority(v1_door.body(1), json(-1)));
  EXPECT_EQ(v1.status, 400);
  EXPECT_EQ(v1.body["error"]["field"], "parameters.priority") << v1.body.dump();
  v1 = post(v1_door, with_priority(v1_door.body(1), json(1.5)));
  EXPECT_EQ(v1.status, 400);
  EXPECT_EQ(v1.body["error"]["field"], "parameters.priority") << v1.body.dump();

  auto oip = post(oip_door, with_priority(oip_door.body(1), json("high")));
  EXPECT_EQ(oip.status, 400);
  ASSERT_TRUE(oip.body["error"].is_string()) << oip.body.dump();
  EXPECT_NE(oip.body["error"].get<std::string>().find("parameters.priority"),
            std::string::npos)
      << oip.body.dump();
  oip = post(oip_door, with_priority(oip_door.body(1), json(-3)));
  EXPECT_EQ(oip.status, 400);
  EXPECT_NE(oip.body.dump().find("parameters.priority"), std::string::npos)
      << oip.body.dump();
}

} // namespace
} // namespace actorserve
