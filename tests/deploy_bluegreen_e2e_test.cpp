// End-to-end: blue-green switches of two real actorserve processes behind a
// real nginx (deploy/bluegreen.sh, plain-process mode) while clients keep
// predicting through nginx.

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>

#include "tests/deploy_support.hpp"
#include "tests/redis_server.hpp"

namespace actorserve {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;
namespace fs = std::filesystem;
using clock_type = std::chrono::steady_clock;

/// One answered (or failed) request as a client saw it.
struct record {
  clock_type::time_point start, end;
  std::string version; // "" when it failed
  std::string id;      // X-Request-Id
};

class deploy_bluegreen_e2e : public ::testing::Test {
protected:
  void SetUp() override {
    if (testing::find_tool("nginx").empty())
      GTEST_SKIP() << "nginx not found: install the Debian package 'nginx' "
                      "(deploy/install-deps.sh does)";
    // Blue starts with version 1, the switches alternate 2, 1, 2.
    for (const auto& version : {"1", "2"})
      testing::copy_model("digits", dir.path() / ("v" + std::string{version}), {version});
    nginx = std::make_unique<testing::nginx_process>(
        dir.path() / "nginx", dir.path() / "state" / "upstream.conf",
        testing::free_port());
  }

  void TearDown() override {
    if (nginx) {
      auto stopped = bluegreen("stop");
      EXPECT_EQ(stopped.code, 0) << stopped.output;
      nginx->stop();
    }
  }

  testing::command_result bluegreen(const std::string& command,
                                    const std::string& server_flags = "") {
    auto line = testing::quote((testing::deploy_dir() / "bluegreen.sh").string()) +
                " --state-dir " + testing::quote((dir.path() / "state").string()) +
                " --binary " + testing::quote(ACTORSERVE_BINARY) + " --nginx " +
                testing::quote(nginx->command()) + " --nginx-pid " +
                testing::quote(nginx->pid_file().string()) +
                " --ready-timeout-s 120 --drain-timeout-s 30 " + command;
    if (!server_flags.empty())
      line += " -- " + server_flags;
    return testing::run_command(line);
  }

  std::string repository_flags(const std::string& version) {
    // Info: the access lines show which requests each colour served. Every
    // client here is 127.0.0.1 behind one nginx, so the per-client anonymous
    // rate limit (1,000/s, tested in hostile_e2e) would throttle the test
    // itself: it is off.
    return "--model-repository " +
           testing::quote((dir.path() / ("v" + version)).string()) +
           " --log-level info --anonymous-rate-per-s 0";
  }

  httplib::Client client(bool keep_alive) const {
    httplib::Client client{"127.0.0.1", nginx->port()};
    client.set_read_timeout(60, 0);
    client.set_keep_alive(keep_alive);
    client.set_tcp_nodelay(true);
    return client;
  }

  testing::temp_dir dir;
  std::unique_ptr<testing::nginx_process> nginx;
  std::unique_ptr<testing::redis_server> redis; // outlives the colours' stop
};

TEST_F(deploy_bluegreen_e2e, three_switches_under_load_fail_no_request) {
  auto first = bluegreen("switch", repository_flags("1"));
  ASSERT_EQ(first.code, 0) << first.output;
  ASSERT_NE(first.output.find("blue\n"), std::string::npos) << first.output;
  nginx->start();

  // 8 clients keep their connection to nginx alive, 4 open one per request.
  // nginx closes idle kept-alive connections when its old workers exit on a
  // reload; a client whose connection closes before any byte of an answer
  // sends that request again on a new connection, as HTTP clients do
  // (RFC 9112, 9.3.1). Any HTTP error, or a second transport error, fails.
  const std::string body = testing::first_digit_body();
  std::atomic<bool> stop{false};
  std::atomic<int> resent{0};
  std::mutex records_mutex;
  std::vector<record> records;
  std::vector<std::string> failures;
  std::vector<std::thread> clients;
  for (int t = 0; t < 12; ++t)
    clients.emplace_back([&, t, keep_alive = t < 8] {
      auto http = client(keep_alive);
      std::vector<record> mine;
      std::vector<std::string> failed;
      for (int n = 0; !stop; ++n) {
        record r{
            clock_type::now(), {}, {}, "c" + std::to_string(t) + "-" + std::to_string(n)};
        httplib::Headers id{{"X-Request-Id", r.id}};
        auto result =
            http.Post("/api/v1/models/digits/predict", id, body, "application/json");
        if (!result && keep_alive) { // the same request again, with the same id
          resent += 1;
          result =
              http.Post("/api/v1/models/digits/predict", id, body, "application/json");
        }
        r.end = clock_type::now();
        auto answer = testing::to_answer(result);
        if (answer.status == 200 && answer.body.is_object())
          r.version = answer.body.value("version", "");
        if (r.version.empty())
          failed.push_back(std::to_string(answer.status) + " " +
                           (result ? result->body : httplib::to_string(result.error())));
        mine.push_back(r);
      }
      std::lock_guard lock{records_mutex};
      records.insert(records.end(), mine.begin(), mine.end());
      failures.insert(failures.end(), failed.begin(), failed.end());
    });

  // Three switches back and forth: green (2), blue (1), green (2).
  struct window {
    clock_type::time_point start, end;
    std::string to;
  };
  std::vector<window> switches;
  std::this_thread::sleep_for(1s);
  for (const auto& [colour, version] :
       {std::pair{"green", "2"}, {"blue", "1"}, {"green", "2"}}) {
    auto start = clock_type::now();
    auto switched = bluegreen("switch", repository_flags(version));
    switches.push_back({start, clock_type::now(), version});
    EXPECT_EQ(switched.code, 0) << switched.output;
    std::string old_colour = std::string{colour} == "green" ? "blue" : "green";
    EXPECT_NE(switched.output.find(old_colour + " drained and exited 0"),
              std::string::npos)
        << "the old colour must drain and exit 0:\n"
        << switched.output;
    std::this_thread::sleep_for(1s);
  }
  stop = true;
  for (auto& c : clients)
    c.join();

  EXPECT_TRUE(failures.empty())
      << failures.size()
      << " failed requests, first: " << (failures.empty() ? "" : failures.front());
  // Every request sent after a switch returned was answered by the new colour
  // (the old one has exited), and every switch moved the answers.
  std::sort(records.begin(), records.end(),
            [](const record& a, const record& b) { return a.start < b.start; });
  int before = 0, before_wrong = 0;
  for (const auto& r : records)
    if (r.end < switches.front().start) {
      before += 1;
      before_wrong += r.version != "1";
    }
  EXPECT_GT(before, 0);
  EXPECT_EQ(before_wrong, 0) << "blue serves version 1";
  int served_during_switches = 0;
  clock_type::duration longest_during_switch{};
  for (size_t i = 0; i < switches.size(); ++i) {
    const auto& s = switches[i];
    auto next =
        i + 1 < switches.size() ? switches[i + 1].start : clock_type::time_point::max();
    int after = 0, wrong = 0;
    for (const auto& r : records) {
      if (r.end >= s.start && r.start <= s.end) {
        served_during_switches += r.version.empty() ? 0 : 1;
        longest_during_switch = std::max(longest_during_switch, r.end - r.start);
      }
      if (r.start > s.end && r.end < next && !r.version.empty()) {
        after += 1;
        wrong += r.version != s.to;
      }
    }
    EXPECT_GT(after, 0) << "no answers after switch " << i + 1;
    EXPECT_EQ(wrong, 0) << "after switch " << i + 1 << " to version " << s.to;
  }

  // The colours' access lines: every request served exactly once (a request
  // sent again had never reached a server), by the version it answered with.
  auto stopped = bluegreen("stop");
  ASSERT_EQ(stopped.code, 0) << stopped.output;
  std::map<std::string, std::string> served_by; // request id -> version
  int served_twice = 0;
  for (const auto* colour : {"blue", "green"}) {
    std::istringstream log{
        testing::read_file(dir.path() / "state" / (colour + std::string{".log"}))};
    for (std::string line; std::getline(log, line);) {
      auto entry = json::parse(line, nullptr, false);
      if (entry.is_object() && entry.value("event", "") == "access" &&
          entry.value("route", "") == "/api/v1/models/{model}/predict")
        served_twice +=
            !served_by.emplace(entry.value("request_id", ""), entry.value("version", ""))
                 .second;
    }
  }
  EXPECT_EQ(served_twice, 0);
  EXPECT_EQ(served_by.size(), records.size());
  int mismatched = 0;
  for (const auto& r : records)
    mismatched += served_by.count(r.id) == 0 || served_by[r.id] != r.version;
  EXPECT_EQ(mismatched, 0) << "requests the clients saw answered that no colour logged";

  auto ms = std::chrono::duration<double, std::milli>(longest_during_switch).count();
  std::printf("blue-green: %zu requests in all, %d served during the 3 switches, "
              "longest request during a switch %.1f ms, %d resent after nginx closed an "
              "idle kept-alive connection, %zu failed\n",
              records.size(), served_during_switches, ms, resent.load(), failures.size());
  RecordProperty("served_during_switches", served_during_switches);
  RecordProperty("longest_ms_during_switch", std::to_string(ms));
}

TEST_F(deploy_bluegreen_e2e, a_colour_that_never_gets_ready_leaves_the_old_one_serving) {
  auto first = bluegreen("switch", repository_flags("1"));
  ASSERT_EQ(first.code, 0) << first.output;
  nginx->start();
  auto upstream_before = testing::read_file(dir.path() / "state" / "upstream.conf");

  // A repository whose only model is broken: the server starts, /ready stays 503.
  testing::copy_model("digits", dir.path() / "broken", {"2"});
  testing::write_file(dir.path() / "broken" / "digits" / "2" / "model.pt",
                      "not torchscript");
  auto refused =
      bluegreen("--ready-timeout-s 10 switch",
                "--model-repository " + testing::quote((dir.path() / "broken").string()));
  EXPECT_NE(refused.code, 0) << refused.output;
  EXPECT_NE(refused.output.find("blue keeps serving"), std::string::npos)
      << refused.output;
  EXPECT_EQ(testing::read_file(dir.path() / "state" / "upstream.conf"), upstream_before);

  auto http = client(true);
  auto answer = testing::post_json(http, "/api/v1/models/digits/predict",
                                   testing::first_digit_body());
  EXPECT_EQ(answer.status, 200);
  EXPECT_EQ(answer.body["version"], "1");
  auto status = bluegreen("status");
  EXPECT_EQ(status.output.substr(0, 5), "blue ") << status.output;
}

TEST_F(deploy_bluegreen_e2e,
       jobs_submitted_to_blue_are_read_through_green_after_the_switch) {
  // Both colours keep their jobs in one Redis, as in the compose stack.
  redis = std::make_unique<testing::redis_server>();
  auto flags = [&](const std::string& version) {
    return repository_flags(version) + " --job-store redis --redis-url " + redis->url();
  };
  auto first = bluegreen("switch", flags("1"));
  ASSERT_EQ(first.code, 0) << first.output;
  nginx->start();
  auto http = client(true);
  std::vector<std::string> ids;
  for (int i = 0; i < 20; ++i) {
    auto submitted = testing::post_json(http, "/api/v1/models/digits/jobs",
                                        testing::first_digit_body());
    ASSERT_EQ(submitted.status, 202) << submitted.body.dump();
    ids.push_back(submitted.body["job_id"]);
  }

  auto switched = bluegreen("switch", flags("2"));
  ASSERT_EQ(switched.code, 0) << switched.output;
  EXPECT_NE(switched.output.find("blue drained and exited 0"), std::string::npos)
      << switched.output;
  auto fresh = client(false); // a new connection: green answers
  EXPECT_EQ(testing::post_json(fresh, "/api/v1/models/digits/predict",
                               testing::first_digit_body())
                .body["version"],
            "2");
  for (const auto& id : ids) {
    auto job = testing::get_json(fresh, "/api/v1/jobs/" + id);
    for (int attempt = 0; attempt < 200 && job.status == 202; ++attempt) {
      std::this_thread::sleep_for(25ms);
      job = testing::get_json(fresh, "/api/v1/jobs/" + id);
    }
    ASSERT_EQ(job.status, 200) << id << " " << job.body.dump();
    EXPECT_EQ(job.body["status"], "succeeded") << job.body.dump();
    EXPECT_EQ(job.body["result"]["predictions"].size(), 1u);
  }
}

} // namespace
} // namespace actorserve
