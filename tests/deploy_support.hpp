#pragma once

// Shared by the deploy tests: find tools and run nginx (the Debian package) as a non-root
// child on loopback with its own prefix, config, pid and log files.

#include <chrono>
#include <csignal>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <thread>

#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/test_support.hpp"

namespace actorserve::testing {

/// The source tree's deploy/ folder.
inline std::filesystem::path deploy_dir() {
  return std::filesystem::path{ACTORSERVE_SOURCE_DIR} / "deploy";
}

/// Single-quotes a word for sh.
inline std::string quote(const std::string& word) {
  std::string out = "'";
  for (char c : word)
    out += c == '\'' ? std::string{"'\\''"} : std::string(1, c);
  return out + "'";
}

/// The tool's full path, or "" when it is not installed.
inline std::string find_tool(const std::string& name) {
  auto found = run_command("command -v " + quote(name));
  if (found.code != 0)
    return "";
  while (!found.output.empty() && found.output.back() == '\n')
    found.output.pop_back();
  return found.output;
}

/// nginx in the foreground (`daemon off`), a child of the test that dies with
/// it; everything it writes lives under `prefix`.
class nginx_process {
public:
  /// Writes prefix/nginx.conf: an http block that includes `upstream_file` and
  /// serves deploy/nginx/proxy.conf on 127.0.0.1:port.
  nginx_process(const std::filesystem::path& prefix,
                const std::filesystem::path& upstream_file, int port)
      : prefix_{prefix}, port_{port} {
    std::filesystem::create_directories(prefix / "logs"); // nginx's -p default log
    auto p = prefix.string();
    write_file(conf(), "worker_processes 2;\n"
                       "pid " +
                           pid_file().string() +
                           ";\n"
                           "error_log " +
                           p +
                           "/error.log notice;\n"
                           "events { worker_connections 1024; }\n"
                           "http {\n"
                           "  access_log " +
                           p +
                           "/access.log;\n"
                           "  client_body_temp_path " +
                           p +
                           "/body;\n"
                           "  proxy_temp_path " +
                           p +
                           "/proxy;\n"
                           "  fastcgi_temp_path " +
                           p +
                           "/fastcgi;\n"
                           "  uwsgi_temp_path " +
                           p +
                           "/uwsgi;\n"
                           "  scgi_temp_path " +
                           p +
                           "/scgi;\n"
                           "  include " +
                           upstream_file.string() +
                           ";\n"
                           "  server {\n"
                           "    listen 127.0.0.1:" +
                           std::to_string(port) +
                           ";\n"
                           "    include " +
                           (deploy_dir() / "nginx" / "proxy.conf").string() +
                           ";\n"
                           "  }\n"
                           "}\n");
  }

  ~nginx_process() { stop(); }
  nginx_process(const nginx_process&) = delete;
  nginx_process& operator=(const nginx_process&) = delete;

  /// The nginx command line without the action, for `bluegreen.sh --nginx`.
  std::string command() const {
    return "nginx -p " + prefix_.string() + " -c " + conf().string();
  }
  std::filesystem::path conf() const { return prefix_ / "nginx.conf"; }
  std::filesystem::path pid_file() const { return prefix_ / "nginx.pid"; }
  std::string error_log() const { return read_file(prefix_ / "error.log"); }
  int port() const { return port_; }

  /// Starts nginx and waits until it accepts connections.
  void start() {
    pid_ = ::fork();
    if (pid_ == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      auto p = prefix_.string(), c = conf().string();
      ::execlp("nginx", "nginx", "-p", p.c_str(), "-c", c.c_str(), "-g", "daemon off;",
               static_cast<char*>(nullptr));
      ::_exit(127);
    }
    httplib::Client client{"127.0.0.1", port_};
    for (int i = 0; i < 200; ++i) {
      if (client.Get("/health"))
        return;
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        throw std::runtime_error("nginx exited:\n" + error_log());
      }
      std::this_thread::sleep_for(std::chrono::milliseconds{50});
    }
    throw std::runtime_error("nginx did not listen:\n" + error_log());
  }

  /// Graceful stop (SIGQUIT), then SIGKILL after 10 s.
  void stop() {
    if (pid_ <= 0)
      return;
    ::kill(pid_, SIGQUIT);
    for (int i = 0; i < 200; ++i) {
      if (::waitpid(pid_, nullptr, WNOHANG) == pid_) {
        pid_ = -1;
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds{50});
    }
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

private:
  std::filesystem::path prefix_;
  int port_ = 0;
  int pid_ = -1;
};

} // namespace actorserve::testing
