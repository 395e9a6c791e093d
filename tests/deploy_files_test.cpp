// The deployment files: the image's files (image-files.sh) against the libraries
// the built binary loads, Prometheus config and rules (promtool), the systemd
// unit (systemd-analyze verify) and its reload, the compose stack, the scripts
// (shellcheck) and the CI workflow.

#include <gtest/gtest.h>

#include <csignal>
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include "tests/deploy_support.hpp"

namespace actorserve {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;
namespace fs = std::filesystem;
using testing::quote;
using testing::run_command;

std::vector<std::string> words(const std::string& text) {
  std::istringstream in{text};
  std::vector<std::string> out;
  for (std::string word; in >> word;)
    out.push_back(word);
  return out;
}

/// The Dockerfile from `FROM ... AS runtime` to the end.
std::string runtime_stage() {
  auto dockerfile = testing::read_file(testing::deploy_dir() / "Dockerfile");
  auto at = dockerfile.find("FROM debian:bookworm-slim AS runtime");
  return at == std::string::npos ? "" : dockerfile.substr(at);
}

/// The packages named by the runtime stage's `apt-get install` command.
std::set<std::string> runtime_packages() {
  auto stage = std::regex_replace(runtime_stage(), std::regex{"\\\\\n"}, " ");
  std::smatch install;
  std::set<std::string> packages;
  if (!std::regex_search(stage, install, std::regex{"apt-get install ([^&\n]*)"}))
    return packages;
  for (const auto& word : words(install[1]))
    if (word[0] != '-')
      packages.insert(word);
  return packages;
}

/// The libraries `ldd` resolves for the binary: soname -> path.
std::map<std::string, std::string> loaded_libraries(const std::string& env = "") {
  auto ldd = run_command(env + "ldd " + quote(ACTORSERVE_BINARY));
  EXPECT_EQ(ldd.code, 0) << ldd.output;
  EXPECT_EQ(ldd.output.find("not found"), std::string::npos) << ldd.output;
  std::map<std::string, std::string> libraries;
  std::regex line{R"((\S+) => (/\S+) \(0x)"};
  for (std::sregex_iterator it{ldd.output.begin(), ldd.output.end(), line}, end;
       it != end; ++it)
    libraries[(*it)[1]] = (*it)[2];
  return libraries;
}

// The runtime stage copies the folder deploy/image-files.sh lays out: the
// binary, the libraries it loads (bundle-runtime-libs.sh), the models. The
// build stage runs it; so does the image test, on this binary (`prebuilt`).
TEST(deploy_files, the_image_files_hold_every_library_the_binary_loads) {
  if (testing::find_tool("dpkg").empty())
    GTEST_SKIP() << "dpkg not found: the bundle script needs Debian";
  auto stage = runtime_stage();
  EXPECT_NE(stage.find("COPY --from=files /image/ /\nRUN ldconfig\n"), std::string::npos);
  auto dockerfile = testing::read_file(testing::deploy_dir() / "Dockerfile");
  EXPECT_NE(dockerfile.find("deploy/image-files.sh build/actorserve models/repository "
                            "/image /base-packages"),
            std::string::npos);
  EXPECT_NE(dockerfile.find("FROM scratch AS prebuilt\nCOPY . /image/\n"),
            std::string::npos);
  EXPECT_NE(dockerfile.find("FROM ${ACTORSERVE_FILES} AS files"), std::string::npos);

  // As the build stage runs it, with libstdc++6 standing for the base image.
  testing::temp_dir dir;
  testing::write_file(dir.path() / "base-packages", "libstdc++6\n");
  auto out = dir.path() / "image";
  auto laid_out = run_command(
      quote((testing::deploy_dir() / "image-files.sh").string()) + " " +
      quote(ACTORSERVE_BINARY) + " " +
      quote((fs::path{ACTORSERVE_MODELS_DIR} / "repository").string()) + " " +
      quote(out.string()) + " " + quote((dir.path() / "base-packages").string()));
  ASSERT_EQ(laid_out.code, 0) << laid_out.output;
  auto lib = out / "usr" / "local" / "lib" / "actorserve";
  auto doc = out / "usr" / "share" / "doc";
  EXPECT_EQ(testing::read_file(out / "etc" / "ld.so.conf.d" / "actorserve.conf"),
            "/usr/local/lib/actorserve\n");
  EXPECT_TRUE(
      fs::exists(out / "opt" / "actorserve" / "models" / "digits" / "config.json"));
  auto binary = out / "usr" / "local" / "bin" / "actorserve";
  ASSERT_TRUE(fs::exists(binary));
  EXPECT_LT(fs::file_size(binary), fs::file_size(ACTORSERVE_BINARY))
      << "debug info stripped";
  EXPECT_NE(fs::status(binary).permissions() & fs::perms::others_exec, fs::perms::none);

  auto on_host = loaded_libraries();
  ASSERT_GT(on_host.size(), 10u);
  // glibc's (always the base image's) and libstdc++6's (listed as in the base).
  std::regex base_library{
      R"(^(libc|libm|libpthread|libdl|libresolv|librt|libstdc\+\+)\.so.*)"};
  auto left_out = [&](const std::string& soname) {
    return std::regex_match(soname, base_library);
  };
  for (const auto& [soname, path] : on_host) {
    if (left_out(soname))
      EXPECT_FALSE(fs::exists(lib / soname)) << soname << " is the base image's";
    else
      EXPECT_EQ(fs::file_size(lib / soname), fs::file_size(fs::canonical(path)))
          << soname << " (" << path << ") is not bundled as the loader finds it";
  }
  // The loader finds everything else in the bundle, as in the image.
  auto from_bundle = loaded_libraries("LD_LIBRARY_PATH=" + quote(lib.string()) + " ");
  for (const auto& [soname, path] : from_bundle) {
    if (!left_out(soname)) {
      EXPECT_EQ(fs::path{path}.parent_path(), lib) << soname << " => " << path;
    }
  }
  // libtorch finds OpenBLAS (libblas.so.3 is an alternative), and each
  // bundled package's licence travels with it.
  EXPECT_TRUE(fs::exists(lib / "libopenblas.so.0"));
  EXPECT_TRUE(fs::exists(doc / "libtorch1.13" / "copyright"));
  EXPECT_TRUE(fs::exists(doc / "libopenblas0-openmp" / "copyright"));
  EXPECT_FALSE(fs::exists(doc / "libc6"));
}

TEST(deploy_files, the_dockerfile_is_multi_stage_slim_and_runs_as_a_user) {
  auto dockerfile = testing::read_file(testing::deploy_dir() / "Dockerfile");
  EXPECT_NE(dockerfile.find("FROM debian:bookworm AS build"), std::string::npos);
  EXPECT_NE(dockerfile.find("deploy/install-deps.sh --build-only"), std::string::npos);
  auto stage = runtime_stage();
  ASSERT_FALSE(stage.empty()) << "no `FROM debian:bookworm-slim AS runtime`";
  for (const auto& package : runtime_packages()) {
    EXPECT_EQ(package.find("-dev"), std::string::npos) << package;
    EXPECT_FALSE(
        std::regex_search(package, std::regex{"^(g\\+\\+|gcc|clang|cmake|python)"}))
        << package;
  }
  EXPECT_TRUE(std::regex_search(stage, std::regex{"\nUSER (?!root)\\w+"}));
  EXPECT_NE(stage.find("\nEXPOSE 8080"), std::string::npos);
  EXPECT_NE(stage.find("\nSTOPSIGNAL SIGTERM"), std::string::npos);
  EXPECT_TRUE(
      std::regex_search(stage, std::regex{"\nHEALTHCHECK [^\n]*\\\\\n[^\n]*/health"}));
}

TEST(deploy_files, prometheus_config_and_alert_rules_pass_promtool) {
  if (testing::find_tool("promtool").empty())
    GTEST_SKIP() << "promtool not found: install the Debian package 'prometheus'";
  auto dir = testing::deploy_dir() / "prometheus";
  auto config =
      run_command("promtool check config " + quote((dir / "prometheus.yml").string()));
  EXPECT_EQ(config.code, 0) << config.output;
  auto rules =
      run_command("promtool check rules " + quote((dir / "alerts.yml").string()));
  EXPECT_EQ(rules.code, 0) << rules.output;
  // Each alert fires on the series it is about (and only then).
  auto unit =
      run_command("promtool test rules " + quote((dir / "alerts_test.yml").string()));
  EXPECT_EQ(unit.code, 0) << unit.output;
  auto alerts = testing::read_file(dir / "alerts.yml");
  auto tests = testing::read_file(dir / "alerts_test.yml");
  for (const auto* alert :
       {"High5xxRate", "HighPredictLatencyP99", "QueueSaturated", "RejectingOverloaded",
        "ModelFailed", "NodeDown", "NoTarget"}) {
    auto name = std::string{"alertname: Actorserve"} + alert;
    EXPECT_NE(tests.find(name), std::string::npos) << "no unit test for " << alert;
    EXPECT_NE(alerts.find("alert: Actorserve" + std::string{alert}), std::string::npos);
  }
}

TEST(deploy_files, the_systemd_unit_is_sandboxed_and_passes_systemd_analyze_verify) {
  auto unit =
      testing::read_file(testing::deploy_dir() / "systemd" / "actorserve.service");
  for (const auto* line :
       {"DynamicUser=yes", "ProtectSystem=strict", "ReadOnlyPaths=/srv/actorserve/models",
        "NoNewPrivileges=yes", "Restart=on-failure", "ExecReload=/bin/kill -HUP $MAINPID",
        "ExecReload=/usr/local/lib/actorserve/actorserve-reload-models",
        "KillSignal=SIGTERM"})
    EXPECT_NE(unit.find(std::string{"\n"} + line), std::string::npos) << line;
  if (testing::find_tool("systemd-analyze").empty())
    GTEST_SKIP() << "systemd-analyze not found: install the Debian package 'systemd'";
  // verify checks that the executables exist: point them at this build.
  unit = std::regex_replace(unit, std::regex{"/usr/local/bin/actorserve"},
                            ACTORSERVE_BINARY);
  unit = std::regex_replace(
      unit, std::regex{"/usr/local/lib/actorserve/actorserve-reload-models"},
      (testing::deploy_dir() / "systemd" / "actorserve-reload-models").string());
  testing::temp_dir dir;
  testing::write_file(dir.path() / "actorserve.service", unit);
  auto verified = run_command("cd " + quote(dir.path().string()) +
                              " && systemd-analyze verify --man=no ./actorserve.service");
  EXPECT_EQ(verified.code, 0) << verified.output;
  EXPECT_EQ(verified.output.find("actorserve.service"), std::string::npos)
      << "systemd-analyze complains:\n"
      << verified.output;
}

TEST(deploy_files, exec_reload_rereads_keys_and_loads_new_model_versions) {
  testing::temp_dir repository;
  testing::copy_model("digits", repository.path(), {"1"});
  std::map<std::string, std::string> keys{
      {"ACTORSERVE_ADMIN_KEYS", "admin-key-1,admin-key-2"}};
  testing::server_process server{
      {"--model-repository", repository.path().string(), "--log-level", "info"}, keys};
  // ExecReload, line 1: SIGHUP re-reads the keys and the server keeps serving.
  ::kill(server.pid(), SIGHUP);
  for (int i = 0;
       i < 100 && server.stderr_text().find("keys_reloaded") == std::string::npos; ++i)
    std::this_thread::sleep_for(20ms);
  EXPECT_NE(server.stderr_text().find("keys_reloaded"), std::string::npos);
  // ExecReload, line 2: a rescan of every model folder picks up version 2.
  fs::copy(testing::generated_repository() / "digits" / "2",
           repository.path() / "digits" / "2", fs::copy_options::recursive);
  auto reloaded = run_command(
      "ACTORSERVE_ADMIN_KEYS=admin-key-1,admin-key-2 " +
      quote((testing::deploy_dir() / "systemd" / "actorserve-reload-models").string()) +
      " " + quote(repository.path().string()) + " " + std::to_string(server.port()));
  EXPECT_EQ(reloaded.code, 0) << reloaded.output;
  auto client = server.client();
  auto status =
      testing::get_json(client, "/api/v1/models/digits", {{"X-API-Key", "admin-key-1"}});
  ASSERT_EQ(status.status, 200) << status.body.dump();
  std::set<std::string> available;
  for (const auto& version : status.body["versions"])
    if (version["state"] == "available")
      available.insert(version["version"].get<std::string>());
  EXPECT_EQ(available, (std::set<std::string>{"1", "2"})) << status.body.dump();
  // Without the admin key, the reload is refused and the script says so.
  auto refused = run_command(
      quote((testing::deploy_dir() / "systemd" / "actorserve-reload-models").string()) +
      " " + quote(repository.path().string()) + " " + std::to_string(server.port()));
  EXPECT_NE(refused.code, 0);
  EXPECT_NE(refused.output.find("reload of digits failed"), std::string::npos)
      << refused.output;
}

TEST(deploy_files, the_compose_stack_has_both_colours_nginx_and_prometheus) {
  const std::string script = R"(
import os, sys, yaml
path = sys.argv[1]
stack = yaml.safe_load(open(path))
services = stack["services"]
assert set(services) == {"blue", "green", "nginx", "prometheus", "redis"}, services
for colour in ("blue", "green"):
    s = services[colour]
    assert s["stop_signal"] == "SIGTERM", colour
    models = [v for v in s["volumes"] if v["target"] == "/models"]
    assert models and models[0]["read_only"] is True, colour
    assert "--model-repository=/models" in s["command"], colour
    assert "ACTORSERVE_API_KEYS" in s["environment"], colour
    assert "--job-store=redis" in s["command"], colour
    assert "--redis-url=redis://redis:6379/0" in s["command"], colour
def mounts(name):
    return [v.split(":") for v in services[name]["volumes"] if isinstance(v, str)]
here = os.path.dirname(path)
for name in ("nginx", "prometheus"):
    for m in mounts(name):
        if m[0].startswith("./"):
            assert os.path.exists(os.path.join(here, m[0])), m
            assert m[-1] == "ro", m
assert ["./nginx/upstream", "/etc/nginx/upstream", "ro"] in mounts("nginx")
assert ["./prometheus/targets", "/etc/prometheus/targets", "ro"] in mounts("prometheus")
print("compose ok")
)";
  auto check = run_command("/usr/bin/python3 -c " + quote(script) + " " +
                           quote((testing::deploy_dir() / "compose.yaml").string()));
  if (check.output.find("No module named 'yaml'") != std::string::npos)
    GTEST_SKIP() << "python3-yaml not installed (deploy/install-deps.sh installs it)";
  EXPECT_EQ(check.code, 0) << check.output;
}

TEST(deploy_files, the_shell_scripts_pass_shellcheck) {
  if (testing::find_tool("shellcheck").empty())
    GTEST_SKIP() << "shellcheck not found: install the Debian package 'shellcheck'";
  auto d = testing::deploy_dir();
  auto checked = run_command(
      "shellcheck " + quote((d / "bluegreen.sh").string()) + " " +
      quote((d / "dev.sh").string()) + " " + quote((d / "install-deps.sh").string()) +
      " " + quote((d / "make-base-image.sh").string()) + " " +
      quote((d / "bundle-runtime-libs.sh").string()) + " " +
      quote((d / "image-files.sh").string()) + " " +
      quote((d.parent_path() / "tests" / "docker_image_test.sh").string()) + " " +
      quote((d / "systemd" / "actorserve-reload-models").string()));
  EXPECT_EQ(checked.code, 0) << checked.output;
}

TEST(deploy_files, the_github_workflow_runs_the_readme_test_command) {
  auto workflow = testing::read_file(fs::path{ACTORSERVE_SOURCE_DIR} / ".github" /
                                     "workflows" / "ci.yml");
  EXPECT_NE(workflow.find("run: ./deploy/dev.sh test"), std::string::npos) << workflow;
  EXPECT_NE(workflow.find("debian:bookworm"), std::string::npos) << workflow;
}

} // namespace
} // namespace actorserve

namespace actorserve {
namespace {

// A stand-in for `docker` that logs each call and plays a compose stack where
// blue serves: the idle colour is ready at once, nginx's workers change on
// reload, a stopped colour exited 0.
constexpr const char* fake_docker = R"(#!/usr/bin/env bash
set -euo pipefail
here=$(dirname "$0")
echo "$*" >>"$here/calls"
[[ $1 == inspect ]] && { echo 0; exit 0; }
shift 3 # compose -f FILE
case "$*" in
    "ps -q --status running nginx") echo nginx-container ;;
    "ps -aq "*) echo "$2-container" ;;
    "exec -T nginx nginx -s reload") touch "$here/reloaded" ;;
    "exec -T nginx sh -c "*) [[ -e $here/reloaded ]] && printf '21\n22\n' || printf '11\n12\n' ;;
esac
)";

TEST(deploy_files, bluegreen_drives_the_compose_stack_in_order) {
  testing::temp_dir dir;
  testing::write_file(dir.path() / "bin" / "docker", fake_docker);
  fs::permissions(dir.path() / "bin" / "docker", fs::perms::owner_all);
  auto upstream = dir.path() / "upstream" / "actorserve.conf";
  auto targets = dir.path() / "targets" / "actorserve.json";
  testing::write_file(upstream, "upstream actorserve {\n    server blue:8080;\n}\n");
  auto switched =
      run_command("PATH=" + quote(dir.path().string() + "/bin:" + std::getenv("PATH")) +
                  " " + quote((testing::deploy_dir() / "bluegreen.sh").string()) +
                  " --compose --upstream " + quote(upstream.string()) + " --targets " +
                  quote(targets.string()) + " switch");
  ASSERT_EQ(switched.code, 0) << switched.output;
  EXPECT_NE(switched.output.find("blue drained and exited 0"), std::string::npos)
      << switched.output;
  EXPECT_NE(testing::read_file(upstream).find("server green:8080 "), std::string::npos);
  EXPECT_EQ(json::parse(testing::read_file(targets))[0]["targets"][0], "green:8080");

  // Start green, wait for its /ready, reload nginx, then stop blue (SIGTERM).
  auto calls = testing::read_file(dir.path() / "bin" / "calls");
  auto compose = "compose -f " + (testing::deploy_dir() / "compose.yaml").string() + " ";
  std::vector<std::string> order{compose + "up -d --no-deps green",
                                 compose + "exec -T green curl -fsS -o /dev/null "
                                           "http://127.0.0.1:8080/ready",
                                 compose + "exec -T nginx nginx -s reload",
                                 compose + "stop -t 60 blue"};
  size_t at = 0;
  for (const auto& call : order) {
    auto found = calls.find(call, at);
    ASSERT_NE(found, std::string::npos) << "missing, or out of order: " << call << "\n"
                                        << calls;
    at = found;
  }
  EXPECT_EQ(
      run_command("PATH=" + quote(dir.path().string() + "/bin:" + std::getenv("PATH")) +
                  " " + quote((testing::deploy_dir() / "bluegreen.sh").string()) +
                  " --compose --upstream " + quote(upstream.string()) + " status")
          .output,
      "green green:8080\n");
}

} // namespace
} // namespace actorserve
