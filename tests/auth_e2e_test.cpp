// End-to-end: API keys with roles, key rotation on SIGHUP, and the loopback
// rule, through the real binary.

#include <gtest/gtest.h>

#include <csignal>
#include <thread>

#include <sys/wait.h>

#include "tests/test_support.hpp"

namespace actorserve {
namespace {

using namespace std::chrono_literals;

const std::string predict_key = "predict-key-0123456789";
const std::string admin_key = "admin-key-0123456789ab";
const std::string body = R"({"instances": [{"data": [[1, 2], [3, 4]]}]})";

TEST(auth_e2e, roles_decide_who_may_predict_and_who_may_administer) {
  testing::temp_dir repository;
  testing::copy_model("affine", repository.path());
  testing::server_process server{
      {"--model-repository", repository.path().string()},
      {{"ACTORSERVE_API_KEYS", predict_key}, {"ACTORSERVE_ADMIN_KEYS", admin_key}}};
  auto client = server.client();
  auto predict = [&](const std::string& key) {
    httplib::Headers headers;
    if (!key.empty())
      headers.emplace("X-API-Key", key);
    return testing::post_json(client, "/api/v1/models/affine/predict", body, headers);
  };
  auto reload = [&](const std::string& key) {
    return testing::post_json(client, "/api/v1/models/affine/reload", "{}",
                              {{"X-API-Key", key}});
  };
  EXPECT_EQ(predict("").status, 401);
  EXPECT_EQ(predict("").body["error"]["code"], "unauthorized");
  EXPECT_EQ(predict("wrong-key-0123456789").status, 401);
  EXPECT_EQ(predict(predict_key).status, 200);
  EXPECT_EQ(predict(admin_key).status, 200);
  EXPECT_EQ(reload(predict_key).status, 403);
  EXPECT_EQ(reload(predict_key).body["error"]["code"], "forbidden");
  EXPECT_EQ(reload(admin_key).status, 200);
  EXPECT_EQ(testing::get_json(client, "/api/v1/models").status, 401);
  EXPECT_EQ(
      testing::get_json(client, "/api/v1/models", {{"X-API-Key", predict_key}}).status,
      200);
  // Liveness and readiness stay open.
  EXPECT_EQ(testing::get_json(client, "/health").status, 200);
  EXPECT_EQ(testing::get_json(client, "/ready").status, 200);
  // No key ever reaches the logs.
  auto logs = server.stderr_text();
  EXPECT_EQ(logs.find(predict_key), std::string::npos);
  EXPECT_EQ(logs.find(admin_key), std::string::npos);
}

TEST(auth_e2e, a_key_file_rotates_on_sighup_without_a_restart) {
  testing::temp_dir repository;
  testing::copy_model("affine", repository.path());
  auto key_file = repository.path() / "keys.txt";
  testing::write_file(key_file, "# rotated by ops\npredict:first-key-0123456789\n");
  testing::server_process server{{"--model-repository", repository.path().string(),
                                  "--api-key-file", key_file.string()}};
  auto client = server.client();
  auto status_with = [&](const std::string& key) {
    return testing::post_json(client, "/api/v1/models/affine/predict", body,
                              {{"X-API-Key", key}})
        .status;
  };
  EXPECT_EQ(status_with("first-key-0123456789"), 200);
  testing::write_file(key_file.string() + ".new", "predict:second-key-0123456789\n");
  std::filesystem::rename(key_file.string() + ".new", key_file);
  ::kill(server.pid(), SIGHUP);
  int status = 0;
  for (int i = 0; i < 100 && status != 200; ++i) {
    std::this_thread::sleep_for(20ms);
    status = status_with("second-key-0123456789");
  }
  EXPECT_EQ(status, 200);
  EXPECT_EQ(status_with("first-key-0123456789"), 401);
}

TEST(auth_e2e, without_keys_only_loopback_addresses_are_served) {
  std::string command = std::string{ACTORSERVE_BINARY} +
                        " --host 0.0.0.0 --port 0 --model-repository /nonexistent 2>&1";
  auto* pipe = ::popen(command.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string output;
  char buffer[512];
  while (auto n = std::fread(buffer, 1, sizeof buffer, pipe))
    output.append(buffer, n);
  auto status = ::pclose(pipe);
  EXPECT_EQ(WEXITSTATUS(status), 2);
  EXPECT_NE(output.find("--allow-unauthenticated"), std::string::npos) << output;
}

} // namespace
} // namespace actorserve
