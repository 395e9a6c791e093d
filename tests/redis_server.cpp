#include "tests/redis_server.hpp"

#include <chrono>
#include <csignal>
#include <stdexcept>
#include <thread>
#include <vector>

#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

namespace actorserve::testing {

redis_server::redis_server(std::string password)
    : password_(std::move(password)), port_(free_port()) {
  start();
}

redis_server::~redis_server() {
  stop();
}

std::string redis_server::url() const {
  return "redis://" + (password_.empty() ? "" : ":" + password_ + "@") +
         "127.0.0.1:" + std::to_string(port_) + "/0";
}

void redis_server::start() {
  if (pid_ > 0)
    return;
  std::vector<std::string> args{"redis-server",
                                "--port",
                                std::to_string(port_),
                                "--bind",
                                "127.0.0.1",
                                "--save",
                                "",
                                "--appendonly",
                                "no",
                                "--dir",
                                dir_.path().string(),
                                "--logfile",
                                (dir_.path() / "redis.log").string()};
  if (!password_.empty()) {
    args.push_back("--requirepass");
    args.push_back(password_);
  }
  pid_ = ::fork();
  if (pid_ == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL); // never outlive a crashed test
    std::vector<char*> argv;
    for (auto& arg : args)
      argv.push_back(arg.data());
    argv.push_back(nullptr);
    ::execvp(argv[0], argv.data());
    ::_exit(127);
  }
  for (int attempt = 0; attempt < 200; ++attempt) {
    if (cli("PING").find("PONG") != std::string::npos)
      return;
    std::this_thread::sleep_for(std::chrono::milliseconds{50});
  }
  stop();
  throw std::runtime_error("redis-server did not answer on port " +
                           std::to_string(port_));
}

void redis_server::stop() {
  if (pid_ <= 0)
    return;
  ::kill(pid_, SIGTERM);
  int status = 0;
  ::waitpid(pid_, &status, 0);
  pid_ = -1;
}

std::string redis_server::cli(const std::string& arguments) const {
  std::string auth = password_.empty() ? "" : " --no-auth-warning -a '" + password_ + "'";
  return run_command("redis-cli -h 127.0.0.1 -p " + std::to_string(port_) + auth + " " +
                     arguments + " 2>&1")
      .output;
}

} // namespace actorserve::testing
