// End-to-end: the Open Inference Protocol over gRPC on the real binary, driven
// by a Python grpcio client (tests/grpc/oip_client.py) whose stubs are
// generated here from grpc/inference.proto by Debian's protoc and
// grpc_python_plugin, as a user of the published proto would. Answers equal
// in-process torch and the HTTP door; errors, auth, rate limits, deadlines,
// cancellation and the drain on SIGTERM.

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "tests/edge_client.hpp"
#include "tests/test_support.hpp"

namespace actorserve {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

const fs::path source_dir{ACTORSERVE_SOURCE_DIR};

/// The Python stubs, generated once for the suite.
class grpc_stubs {
public:
  grpc_stubs() {
    auto result = testing::run_command(
        "/usr/bin/protoc --proto_path=" + (source_dir / "grpc").string() +
        " --python_out=" + dir_.path().string() + " --grpc_out=" + dir_.path().string() +
        " --plugin=protoc-gen-grpc=/usr/bin/grpc_python_plugin inference.proto 2>&1");
    EXPECT_EQ(result.code, 0) << result.output;
  }
  const fs::path& path() const { return dir_.path(); }

private:
  testing::temp_dir dir_;
};

/// A server serving digits, affine and slow with its gRPC door on.
struct grpc_server {
  explicit grpc_server(std::vector<std::string> extra = {},
                       std::map<std::string, std::string> env = {})
      : grpc_port(testing::free_port()) {
    testing::copy_model("digits", repository.path(), {"1"});
    testing::copy_model("affine", repository.path());
    testing::copy_prioritised_slow_model(repository.path());
    std::vector<std::string> args{"--model-repository", repository.path().string(),
                                  "--grpc-port", std::to_string(grpc_port)};
    args.insert(args.end(), extra.begin(), extra.end());
    process = std::make_unique<testing::server_process>(args, env);
  }

  std::string address() const { return "127.0.0.1:" + std::to_string(grpc_port); }

  double metric(const std::string& name, const std::vector<std::string>& labels) const {
    auto exposition =
        testing::exchange(process->port(), testing::get_request("/metrics"), 10s);
    return testing::metric_sum(exposition.body, name, labels);
  }

  testing::temp_dir repository;
  int grpc_port;
  std::unique_ptr<testing::server_process> process;
};

class grpc_e2e_test : public ::testing::Test {
protected:
  static void SetUpTestSuite() {
    stubs_ = new grpc_stubs;
    // The scenarios poll /metrics and send floods: no per-client rate limit
    // (keys_and_rate_limits_hold_on_the_grpc_door has its own server).
    server_ = new grpc_server{{"--anonymous-rate-per-s", "0"}};
  }
  static void TearDownTestSuite() {
    delete server_;
    delete stubs_;
  }

  /// Runs a scenario of the Python client against `server`.
  static testing::command_result run_client(const grpc_server& server,
                                            const std::string& scenario,
                                            const std::vector<std::string>& args = {}) {
    std::string command =
        "/usr/bin/python3 " + (source_dir / "tests/grpc/oip_client.py").string() + " " +
        stubs_->path().string() + " " + server.address() + " " + scenario;
    for (const auto& arg : args)
      command += " '" + arg + "'";
    return testing::run_command(command + " 2>&1");
  }

  static void expect_ok(const testing::command_result& result) {
    EXPECT_EQ(result.code, 0) << result.output;
    EXPECT_NE(result.output.find("ok"), std::string::npos) << result.output;
  }

  static grpc_stubs* stubs_;
  static grpc_server* server_;
};

grpc_stubs* grpc_e2e_test::stubs_ = nullptr;
grpc_server* grpc_e2e_test::server_ = nullptr;

TEST_F(grpc_e2e_test, health_metadata_and_repository_index) {
  expect_ok(run_client(*server_, "metadata"));
  // Access log lines name the protocol and the RPC.
  EXPECT_NE(server_->process->stderr_text().find(R"("protocol":"oip-grpc")"),
            std::string::npos);
  EXPECT_NE(server_->process->stderr_text().find(
                R"("route":"/inference.GRPCInferenceService/ModelMetadata")"),
            std::string::npos);
}

TEST_F(grpc_e2e_test, tensor_inference_equals_in_process_torch) {
  auto model = server_->repository.path() / "affine" / "1" / "model.pt";
  expect_ok(run_client(*server_, "affine", {model.string()}));
}

TEST_F(grpc_e2e_test, image_inference_equals_the_http_door_and_classifies) {
  expect_ok(run_client(*server_, "digits",
                       {testing::digits_holdout_file().string(),
                        "http://127.0.0.1:" + std::to_string(server_->process->port())}));
}

TEST_F(grpc_e2e_test, bad_requests_get_clear_status_codes) {
  // 10 MiB is the default body limit, which the message limit follows.
  expect_ok(run_client(*server_, "errors", {std::to_string(10 * 1024 * 1024)}));
  EXPECT_GT(server_->metric("actorserve_grpc_requests_total",
                            {"rpc=\"ModelInfer\"", "code=\"INVALID_ARGUMENT\""}),
            0);
}

TEST_F(grpc_e2e_test, deadlines_end_calls_with_deadline_exceeded) {
  expect_ok(run_client(*server_, "deadline"));
}

TEST_F(grpc_e2e_test, a_cancelled_call_withdraws_its_request) {
  const std::vector<std::string> labels{"model=\"slow\"", "reason=\"client_gone\""};
  auto before = server_->metric("actorserve_cancelled_requests_total", labels);
  expect_ok(run_client(*server_, "cancel"));
  EXPECT_TRUE(testing::poll_until(
      [&] {
        return server_->metric("actorserve_cancelled_requests_total", labels) >=
               before + 1;
      },
      10s));
}

TEST_F(grpc_e2e_test, a_high_priority_call_overtakes_a_low_priority_flood) {
  expect_ok(run_client(*server_, "priority",
                       {"http://127.0.0.1:" + std::to_string(server_->process->port())}));
}

TEST_F(grpc_e2e_test, repository_rpcs_unload_and_load_a_model) {
  expect_ok(run_client(*server_, "lifecycle"));
}

TEST_F(grpc_e2e_test, keys_and_rate_limits_hold_on_the_grpc_door) {
  grpc_server guarded{{"--predict-rate-per-s", "1", "--predict-burst", "5"},
                      {{"ACTORSERVE_API_KEYS", "grpc-key-1"}}};
  expect_ok(run_client(guarded, "auth", {"grpc-key-1", "5"}));
}

TEST_F(grpc_e2e_test, sigterm_drains_calls_in_flight) {
  grpc_server draining;
  testing::temp_dir scratch;
  auto started = scratch.path() / "started";
  std::thread client{
      [&] { expect_ok(run_client(draining, "drain", {started.string()})); }};
  ASSERT_TRUE(testing::poll_until([&] { return fs::exists(started); }, 60s));
  EXPECT_EQ(draining.process->terminate(), 0);
  client.join();
}

} // namespace
} // namespace actorserve
