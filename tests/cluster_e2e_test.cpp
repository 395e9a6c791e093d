// End-to-end: actorserve nodes on loopback form a cluster over CAF's
// middleman. A hosts digits, B hosts digits and affine, C hosts nothing and
// joins both: C serves both models, spreads digits over A and B, forwards
// admin messages to B, survives B's SIGKILL without a failed digits request,
// answers affine 503 quickly while B is gone and serves it again once B is
// back. Then the admin tool, and mutual TLS with a private CA.

#include <gtest/gtest.h>

#include <atomic>
#include <csignal>
#include <set>
#include <thread>

#include "tests/test_support.hpp"

namespace actorserve {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;
namespace fs = std::filesystem;
using clock_type = std::chrono::steady_clock;

template <class Predicate>
bool wait_until(Predicate predicate, std::chrono::milliseconds timeout) {
  auto deadline = clock_type::now() + timeout;
  while (clock_type::now() < deadline) {
    if (predicate())
      return true;
    std::this_thread::sleep_for(100ms);
  }
  return predicate();
}

const std::string affine_body = R"({"instances": [{"data": [[1, 2], [3, 4]]}]})";

/// Flags every node of these tests shares: quick catalog sync and heartbeats.
std::vector<std::string> node_args(const fs::path& repository, const std::string& name) {
  return {"--model-repository",
          repository.string(),
          "--node-name",
          name,
          "--cluster-sync-ms",
          "200",
          "--cluster-heartbeat-ms",
          "200",
          "--cluster-timeout-ms",
          "2000",
          "--cluster-retry-max-ms",
          "500",
          "--log-level",
          "warn"};
}

std::vector<std::string> with(std::vector<std::string> args,
                              const std::vector<std::string>& more) {
  args.insert(args.end(), more.begin(), more.end());
  return args;
}

/// The nodes hosting each version of `model` in a node's listing.
std::set<std::string> hosts_of(const testing::server_process& node,
                               const std::string& model) {
  auto client = node.client();
  auto answer = testing::get_json(client, "/api/v1/models/" + model);
  std::set<std::string> hosts;
  if (answer.status == 200)
    for (const auto& version : answer.body["versions"])
      if (version["state"] == "available")
        hosts.insert(version.value("node", ""));
  return hosts;
}

int predict_status(const testing::server_process& node, const std::string& model,
                   const std::string& body, std::string* served_by = nullptr) {
  auto client = node.client();
  auto answer = testing::post_json(client, "/api/v1/models/" + model + "/predict", body);
  if (served_by)
    *served_by = answer.headers.count("X-Served-By")
                     ? answer.headers.find("X-Served-By")->second
                     : "";
  return answer.status;
}

class cluster_e2e : public ::testing::Test {
protected:
  cluster_e2e() {
    testing::copy_model("digits", repo_a.path(), {"1"});
    testing::copy_model("digits", repo_b.path(), {"1"});
    testing::copy_model("affine", repo_b.path());
    a = std::make_unique<testing::server_process>(
        with(node_args(repo_a.path(), "A"), {"--cluster-port", std::to_string(port_a)}));
  }

  void start_b() {
    b = std::make_unique<testing::server_process>(
        with(node_args(repo_b.path(), "B"), {"--cluster-port", std::to_string(port_b)}));
  }

  testing::temp_dir repo_a, repo_b, repo_c;
  int port_a = testing::free_port();
  int port_b = testing::free_port();
  std::unique_ptr<testing::server_process> a, b;
};

TEST_F(cluster_e2e, a_gateway_serves_spreads_forwards_and_survives_a_node_loss) {
  start_b();
  // The 4 loopback clients below are one anonymous client to C and pass its
  // default 1,000/s: its limit is off (the limiter has its own tests).
  testing::server_process c{with(
      node_args(repo_c.path(), "C"),
      {"--join",
       "127.0.0.1:" + std::to_string(port_a) + ",127.0.0.1:" + std::to_string(port_b),
       "--anonymous-rate-per-s", "0"})};
  ASSERT_TRUE(wait_until(
      [&] {
        return hosts_of(c, "digits") == std::set<std::string>{"A", "B"} &&
               hosts_of(c, "affine") == std::set<std::string>{"B"};
      },
      30s))
      << "C's listing never showed digits on A and B, affine on B";

  // C serves both models and spreads digits over A and B.
  std::map<std::string, int> served_by;
  const auto digits = testing::first_digit_body();
  for (int i = 0; i < 20; ++i) {
    std::string node;
    ASSERT_EQ(predict_status(c, "digits", digits, &node), 200);
    ++served_by[node];
  }
  EXPECT_GE(served_by["A"], 5);
  EXPECT_GE(served_by["B"], 5);
  std::string node;
  EXPECT_EQ(predict_status(c, "affine", affine_body, &node), 200);
  EXPECT_EQ(node, "B");

  // A reload sent to C reaches B, which hosts the model.
  fs::create_directories(repo_b.path() / "affine" / "2");
  fs::copy_file(repo_b.path() / "affine" / "1" / "model.pt",
                repo_b.path() / "affine" / "2" / "model.pt");
  auto client_c = c.client();
  auto reload = testing::post_json(client_c, "/api/v1/models/affine/reload", "{}");
  ASSERT_EQ(reload.status, 200) << reload.body.dump();
  auto client_b = b->client();
  auto on_b = testing::get_json(client_b, "/api/v1/models/affine");
  bool version_2_available = false;
  for (const auto& version : on_b.body["versions"])
    version_2_available |= version["version"] == "2" && version["state"] == "available";
  EXPECT_TRUE(version_2_available) << on_b.body.dump();

  // Clients keep sending digits through C while B is killed.
  std::atomic<bool> stop{false};
  std::atomic<int> served{0}, failed_after_grace{0};
  std::atomic<clock_type::rep> killed_at{0};
  std::vector<std::thread> clients;
  for (int t = 0; t < 4; ++t)
    clients.emplace_back([&] {
      while (!stop) {
        auto status = predict_status(c, "digits", digits);
        auto killed = killed_at.load();
        bool after_grace =
            killed != 0 &&
            clock_type::now() > clock_type::time_point{clock_type::duration{killed}} + 2s;
        if (status == 200)
          ++served;
        else if (after_grace)
          ++failed_after_grace;
      }
    });
  std::this_thread::sleep_for(1s);
  auto kill_time = clock_type::now();
  ::kill(b->pid(), SIGKILL);
  killed_at = kill_time.time_since_epoch().count();

  // affine has no host left: C answers 503 quickly.
  ASSERT_TRUE(
      wait_until([&] { return predict_status(c, "affine", affine_body) == 503; }, 5s));
  auto no_host_after = clock_type::now() - kill_time;
  EXPECT_LT(no_host_after, 5s);
  auto started = clock_type::now();
  auto client = c.client();
  auto unavailable =
      testing::post_json(client, "/api/v1/models/affine/predict", affine_body);
  EXPECT_EQ(unavailable.status, 503);
  EXPECT_EQ(unavailable.body["error"]["code"], "unavailable");
  EXPECT_LT(clock_type::now() - started, 1s);

  std::this_thread::sleep_for(4s);
  EXPECT_TRUE(hosts_of(c, "digits") == std::set<std::string>{"A"});
  stop = true;
  for (auto& t : clients)
    t.join();
  EXPECT_EQ(failed_after_grace, 0);
  EXPECT_GT(served, 0);
  std::printf(
      "[ digits via C: %d served; affine 503 %lld ms after B's SIGKILL ]\n",
      served.load(),
      static_cast<long long>(
          std::chrono::duration_cast<std::chrono::milliseconds>(no_host_after).count()));

  // B starts again on its port: C rejoins it by itself.
  b.reset();
  start_b();
  EXPECT_TRUE(
      wait_until([&] { return predict_status(c, "affine", affine_body) == 200; }, 20s));
}

TEST_F(cluster_e2e, a_silent_peer_is_dropped_at_the_heartbeat_timeout_and_rejoins) {
  start_b();
  testing::server_process c{with(node_args(repo_c.path(), "C"),
                                 {"--join", "127.0.0.1:" + std::to_string(port_b)})};
  ASSERT_TRUE(
      wait_until([&] { return predict_status(c, "affine", affine_body) == 200; }, 30s));
  // SIGSTOP keeps B's sockets open: only the missing heartbeats tell.
  ::kill(b->pid(), SIGSTOP);
  auto stopped = clock_type::now();
  auto client = c.client();
  auto pending = testing::post_json(client, "/api/v1/models/affine/predict", affine_body);
  auto answered_after = clock_type::now() - stopped;
  EXPECT_EQ(pending.status, 503) << pending.body.dump();
  EXPECT_LT(answered_after, 5s) << "--cluster-timeout-ms is 2000";
  ::kill(b->pid(), SIGCONT);
  EXPECT_TRUE(
      wait_until([&] { return predict_status(c, "affine", affine_body) == 200; }, 20s));
}

TEST_F(cluster_e2e, the_admin_tool_talks_to_a_node_as_a_peer) {
  auto ctl = std::string{ACTORSERVE_CTL_BINARY} +
             " --connect 127.0.0.1:" + std::to_string(port_a);
  auto [code, listing] = testing::run_command("(" + ctl + " list 2>/dev/null)");
  ASSERT_EQ(code, 0) << listing;
  auto models = json::parse(listing)["models"];
  ASSERT_EQ(models.size(), 1u);
  EXPECT_EQ(models[0]["name"], "digits");

  auto [unknown, ignored] = testing::run_command(ctl + " reload nosuchmodel");
  EXPECT_EQ(unknown, 1);

  auto [reloaded, status] =
      testing::run_command("(" + ctl + " reload digits 1 2>/dev/null)");
  ASSERT_EQ(reloaded, 0) << status;
  EXPECT_EQ(json::parse(status)["name"], "digits");
  auto [refused, message] = testing::run_command(ctl + " unload digits 1");
  EXPECT_EQ(refused, 1);
  EXPECT_NE(message.find("conflict"), std::string::npos) << message;

  // Whole models: unloaded, gone, loaded again from the node's repository.
  EXPECT_EQ(testing::run_command(ctl + " load nosuchmodel").code, 1);
  auto [unloaded, drained] =
      testing::run_command("(" + ctl + " unload digits 2>/dev/null)");
  ASSERT_EQ(unloaded, 0) << drained;
  auto [absent, why] = testing::run_command(ctl + " status digits");
  EXPECT_EQ(absent, 1);
  EXPECT_NE(why.find("model_not_found"), std::string::npos) << why;
  auto [loaded, serving] = testing::run_command("(" + ctl + " load digits 2>/dev/null)");
  ASSERT_EQ(loaded, 0) << serving;
  EXPECT_EQ(json::parse(serving)["versions"][0]["state"], "available");
}

/// A private CA and node certificates made with the openssl command.
class certificates {
public:
  explicit certificates(const std::string& ca_name) {
    sh("openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=" + ca_name +
       " -keyout " + file("ca.key") + " -out " + file("ca.pem"));
  }

  /// Makes NAME.pem and NAME.key signed by this CA; returns the node's flags.
  std::vector<std::string> node(const std::string& name) {
    sh("openssl req -newkey rsa:2048 -nodes -subj /CN=" + name + " -keyout " +
       file(name + ".key") + " -out " + file(name + ".csr"));
    sh("openssl x509 -req -days 2 -in " + file(name + ".csr") + " -CA " + file("ca.pem") +
       " -CAkey " + file("ca.key") + " -CAcreateserial -out " + file(name + ".pem"));
    return {"--cluster-tls-cert", file(name + ".pem"), "--cluster-tls-key",
            file(name + ".key"),  "--cluster-tls-ca",  file("ca.pem")};
  }

private:
  std::string file(const std::string& name) const {
    return (dir_.path() / name).string();
  }
  static void sh(const std::string& command) {
    auto result = testing::run_command(command);
    ASSERT_EQ(result.code, 0) << command << "\n" << result.output;
  }
  testing::temp_dir dir_;
};

TEST(cluster_tls, only_nodes_with_certificates_from_the_same_ca_join) {
  testing::temp_dir repo_a, empty;
  testing::copy_model("digits", repo_a.path(), {"1"});
  certificates ours{"actorserve-ca"}, foreign{"someone-else"};
  auto port_a = testing::free_port();
  auto join_a = std::vector<std::string>{"--join", "127.0.0.1:" + std::to_string(port_a)};
  testing::server_process a{with(with(node_args(repo_a.path(), "A"), ours.node("a")),
                                 {"--cluster-port", std::to_string(port_a)})};
  testing::server_process member{
      with(with(node_args(empty.path(), "member"), ours.node("member")), join_a)};
  testing::server_process stranger{
      with(with(node_args(empty.path(), "stranger"), foreign.node("stranger")), join_a)};
  testing::server_process plain{with(node_args(empty.path(), "plain"), join_a)};

  EXPECT_TRUE(wait_until([&] { return hosts_of(member, "digits").count("A") == 1; }, 20s))
      << "a node with a certificate from the cluster's CA must join";
  EXPECT_EQ(predict_status(member, "digits", testing::first_digit_body()), 200);
  // By now the refused nodes have tried several times.
  EXPECT_TRUE(hosts_of(stranger, "digits").empty());
  EXPECT_TRUE(hosts_of(plain, "digits").empty());
  EXPECT_EQ(predict_status(stranger, "digits", testing::first_digit_body()), 404);
}

TEST(cluster_options, plain_cluster_traffic_beyond_loopback_is_refused) {
  auto [code, output] = testing::run_command(
      std::string{ACTORSERVE_BINARY} + " --cluster-port 7400 --cluster-host 0.0.0.0");
  EXPECT_EQ(code, 2);
  EXPECT_NE(output.find("--allow-insecure-cluster"), std::string::npos) << output;
  auto [half, message] =
      testing::run_command(std::string{ACTORSERVE_BINARY} + " --cluster-tls-cert x.pem");
  EXPECT_EQ(half, 2);
  EXPECT_NE(message.find("all three"), std::string::npos) << message;
}

} // namespace
} // namespace actorserve
