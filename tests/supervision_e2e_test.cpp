// End-to-end: a crashed model instance is replaced and serves again; one that
// keeps crashing fails its version; requests in flight during a crash are
// answered at once. Crashes are provoked with --enable-fault-injection (off
// by default), whose sentinel input makes the instance throw out of its
// handler like a real fault.

#include <gtest/gtest.h>

#include <mutex>
#include <thread>

#include "tests/test_support.hpp"

namespace actorserve {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

const std::string good_body = R"({"instances": [{"data": [[1, 2], [3, 4]]}]})";
const std::string crash_body = R"({"instances": [{"data": [[-7777777, 0], [0, 0]]}]})";

class supervision_e2e : public ::testing::Test {
protected:
  supervision_e2e() {
    testing::copy_model("affine", repository.path());
    server = std::make_unique<testing::server_process>(
        std::vector<std::string>{"--model-repository", repository.path().string(),
                                 "--log-level", "warn", "--enable-fault-injection",
                                 // Four clients on one address may outrun the
                                 // per-client rate limit (tested in hostile_e2e).
                                 "--anonymous-rate-per-s", "0"});
  }

  /// Sends good requests until one succeeds; returns how long that took.
  clock_type::duration time_to_recover() {
    auto client = server->client();
    auto started = clock_type::now();
    while (clock_type::now() - started < 10s) {
      if (testing::post_json(client, "/api/v1/models/affine/predict", good_body).status ==
          200)
        break;
      std::this_thread::sleep_for(5ms);
    }
    return clock_type::now() - started;
  }

  testing::temp_dir repository;
  std::unique_ptr<testing::server_process> server;
};

TEST_F(supervision_e2e, a_crashed_instance_is_replaced_within_a_second) {
  auto client = server->client();
  auto started = clock_type::now();
  auto crashed = testing::post_json(client, "/api/v1/models/affine/predict", crash_body);
  EXPECT_LT(clock_type::now() - started, 1s) << "answered at once, not at a timeout";
  EXPECT_EQ(crashed.status, 503);
  EXPECT_EQ(crashed.body["error"]["code"], "unavailable");
  auto recovery = time_to_recover();
  EXPECT_LT(recovery, 1s);
  std::printf("recovered from a crash in %.1f ms\n",
              std::chrono::duration<double, std::milli>(recovery).count());
  auto answer = testing::post_json(client, "/api/v1/models/affine/predict", good_body);
  EXPECT_EQ(answer.status, 200);
  EXPECT_EQ(answer.body["predictions"][0]["output"], json({3.0, 5.0, 7.0, 9.0}));
}

TEST_F(supervision_e2e, requests_in_flight_during_a_crash_are_answered) {
  // Requests keep flowing from 4 clients while crashes happen; every one is
  // answered (200, or 503 for those that shared the crashing batch), none
  // hangs until its timeout.
  std::atomic<bool> stop{false};
  std::atomic<int> ok{0}, unavailable{0}, other{0};
  std::mutex first_other_mutex;
  std::string first_other; // the first answer that was neither, for the report
  std::vector<std::thread> clients;
  for (int t = 0; t < 4; ++t)
    clients.emplace_back([&] {
      auto own = server->client();
      while (!stop) {
        auto started = clock_type::now();
        auto answer = testing::post_json(own, "/api/v1/models/affine/predict", good_body);
        bool slow = clock_type::now() - started > 2s;
        if (!slow && answer.status == 200) {
          ok += 1;
        } else if (!slow && answer.status == 503) {
          unavailable += 1;
        } else {
          other += 1;
          std::lock_guard lock{first_other_mutex};
          if (first_other.empty())
            first_other = (slow ? "slow " : "") + std::to_string(answer.status) + " " +
                          answer.body.dump();
        }
      }
    });
  auto client = server->client();
  for (int crash = 0; crash < 3; ++crash) {
    EXPECT_EQ(
        testing::post_json(client, "/api/v1/models/affine/predict", crash_body).status,
        503);
    std::this_thread::sleep_for(300ms);
  }
  stop = true;
  for (auto& thread : clients)
    thread.join();
  EXPECT_EQ(other.load(), 0) << "first: " << first_other;
  EXPECT_GT(ok.load(), 0);
  EXPECT_LT(time_to_recover(), 1s);
}

TEST_F(supervision_e2e, a_version_that_keeps_crashing_ends_failed) {
  auto client = server->client();
  // The budget is 5 restarts in 60 s: the sixth crash fails the version.
  for (int crash = 0; crash < 6; ++crash) {
    auto answer = testing::post_json(client, "/api/v1/models/affine/predict", crash_body);
    EXPECT_EQ(answer.status, 503) << answer.body.dump();
    time_to_recover();
  }
  json status;
  for (int i = 0; i < 100; ++i) {
    status = testing::get_json(client, "/api/v1/models/affine").body;
    if (status["versions"][0]["state"] == "failed")
      break;
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_EQ(status["versions"][0]["state"], "failed") << status.dump();
  EXPECT_NE(status["versions"][0]["error"].get<std::string>().find("crashed"),
            std::string::npos);
  EXPECT_EQ(testing::get_json(client, "/ready").status, 503);
  auto refused = testing::post_json(client, "/api/v1/models/affine/predict", good_body);
  EXPECT_EQ(refused.status, 503);
  // An operator's reload brings it back.
  EXPECT_EQ(testing::post_json(client, "/api/v1/models/affine/reload", "{}").status, 200);
  EXPECT_EQ(testing::post_json(client, "/api/v1/models/affine/predict", good_body).status,
            200);
}

TEST(supervision_off_by_default, the_sentinel_is_only_a_number_without_the_flag) {
  testing::temp_dir repository;
  testing::copy_model("affine", repository.path());
  testing::server_process server{{"--model-repository", repository.path().string()}};
  auto client = server.client();
  auto answer = testing::post_json(client, "/api/v1/models/affine/predict", crash_body);
  EXPECT_EQ(answer.status, 200);
  EXPECT_EQ(answer.body["predictions"][0]["output"][0], -7777777 * 2.0 + 1);
}

} // namespace
} // namespace actorserve
