#include "tests/test_support.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>
#include <thread>

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "messages/type_ids.hpp"

namespace fs = std::filesystem;

namespace actorserve::testing {

temp_dir::temp_dir() {
  static std::atomic<int> counter{0};
  std::random_device random;
  path_ = fs::temp_directory_path() /
          ("actorserve-test-" + std::to_string(::getpid()) + "-" +
           std::to_string(counter++) + "-" + std::to_string(random()));
  fs::create_directories(path_);
}

temp_dir::~temp_dir() {
  std::error_code ignored;
  fs::remove_all(path_, ignored);
}

caf::actor_system_config& registered_actor_config() {
  static caf::actor_system_config config = [] {
    caf::actor_system_config result;
    register_message_types(result);
    return result;
  }();
  return config;
}

fs::path generated_repository() {
  return fs::path{ACTORSERVE_MODELS_DIR} / "repository";
}

fs::path digits_holdout_file() {
  return fs::path{ACTORSERVE_MODELS_DIR} / "digits-holdout.jsonl";
}

fs::path test_repository() {
  return fs::path{ACTORSERVE_MODELS_DIR} / "test-repository";
}

void copy_prioritised_slow_model(const fs::path& target) {
  fs::copy(test_repository() / "slow", target / "slow", fs::copy_options::recursive);
  write_file(target / "slow" / "config.json", R"({
      "input": {"type": "tensor", "shape": [4]},
      "output": {"type": "raw"},
      "batching": {"max_batch_size": 1, "max_queue_delay_us": 0, "max_queue_size": 64,
                   "priority_levels": 2, "max_priority_wait_us": 600000000},
      "instances": 1})");
}

void copy_model(const std::string& model, const fs::path& target,
                const std::vector<std::string>& versions) {
  auto source = generated_repository() / model;
  if (!fs::exists(source))
    throw std::runtime_error("missing generated model " + source.string() +
                             ": build the 'models' target first");
  fs::create_directories(target / model);
  for (const auto& item : fs::directory_iterator(source)) {
    auto name = item.path().filename().string();
    bool is_version = item.is_directory();
    if (is_version && !versions.empty() &&
        std::find(versions.begin(), versions.end(), name) == versions.end())
      continue;
    fs::copy(item.path(), target / model / name, fs::copy_options::recursive);
  }
}

void write_file(const fs::path& file, const std::string& content) {
  fs::create_directories(file.parent_path());
  std::ofstream out{file, std::ios::binary};
  out << content;
}

std::string read_file(const fs::path& file) {
  std::ifstream in{file, std::ios::binary};
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

std::string base64_encode(const std::string& bytes) {
  static constexpr char alphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    uint32_t n =
        (uint8_t(bytes[i]) << 16) | (uint8_t(bytes[i + 1]) << 8) | uint8_t(bytes[i + 2]);
    out += alphabet[(n >> 18) & 63];
    out += alphabet[(n >> 12) & 63];
    out += alphabet[(n >> 6) & 63];
    out += alphabet[n & 63];
  }
  if (i + 1 == bytes.size()) {
    uint32_t n = uint8_t(bytes[i]) << 16;
    out += alphabet[(n >> 18) & 63];
    out += alphabet[(n >> 12) & 63];
    out += "==";
  } else if (i + 2 == bytes.size()) {
    uint32_t n = (uint8_t(bytes[i]) << 16) | (uint8_t(bytes[i + 1]) << 8);
    out += alphabet[(n >> 18) & 63];
    out += alphabet[(n >> 12) & 63];
    out += alphabet[(n >> 6) & 63];
    out += '=';
  }
  return out;
}

namespace {

/// Reads stdout until the ready line "... http://HOST:PORT" and returns PORT.
int wait_for_ready_line(int fd, std::chrono::seconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  std::string line;
  while (std::chrono::steady_clock::now() < deadline) {
    char c;
    auto n = ::read(fd, &c, 1);
    if (n == 1) {
      if (c != '\n') {
        line += c;
        continue;
      }
      auto at = line.rfind(':');
      if (line.find("ready") != std::string::npos && at != std::string::npos)
        return std::stoi(line.substr(at + 1));
      line.clear();
    } else if (n == 0) {
      return -1; // the process closed stdout: it exited
    } else {
      std::this_thread::sleep_for(std::chrono::milliseconds{10});
    }
  }
  return -1;
}

} // namespace

server_process::server_process(std::vector<std::string> args,
                               std::map<std::string, std::string> env,
                               std::chrono::seconds ready_timeout) {
  stderr_file_ = logs_.path() / "stderr.log";
  int out[2];
  if (::pipe(out) != 0)
    throw std::runtime_error("pipe failed");
  pid_ = ::fork();
  if (pid_ == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL); // never outlive a crashed test
    ::dup2(out[1], STDOUT_FILENO);
    int err = ::open(stderr_file_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(err, STDERR_FILENO);
    ::close(out[0]);
    for (const auto& [key, value] : env)
      ::setenv(key.c_str(), value.c_str(), 1);
    std::vector<std::string> full{ACTORSERVE_BINARY, "--port", "0"};
    full.insert(full.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& arg : full)
      argv.push_back(arg.data());
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  ::close(out[1]);
  ::fcntl(out[0], F_SETFL, O_NONBLOCK);
  port_ = wait_for_ready_line(out[0], ready_timeout);
  // stdout stays open (the server writes only its ready line) until we exit.
  if (port_ <= 0) {
    terminate(std::chrono::seconds{5});
    throw std::runtime_error("actorserve did not get ready; stderr:\n" + stderr_text());
  }
}

server_process::~server_process() {
  if (pid_ > 0)
    terminate(std::chrono::seconds{10});
}

int server_process::terminate(std::chrono::seconds timeout) {
  if (pid_ <= 0)
    return -1;
  ::kill(pid_, SIGTERM);
  return wait_for_exit(timeout);
}

int server_process::wait_for_exit(std::chrono::seconds timeout) {
  if (pid_ <= 0)
    return -1;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  int status = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds{20});
  }
  ::kill(pid_, SIGKILL);
  ::waitpid(pid_, &status, 0);
  pid_ = -1;
  return -1;
}

std::vector<nlohmann::json> holdout_digits(size_t count) {
  std::vector<nlohmann::json> digits;
  std::ifstream in{digits_holdout_file()};
  std::string line;
  while (digits.size() < count && std::getline(in, line))
    digits.push_back(nlohmann::json::parse(line));
  return digits;
}

std::vector<std::string> holdout_pngs(size_t count) {
  std::vector<std::string> pngs;
  for (const auto& digit : holdout_digits(count))
    pngs.push_back(digit["png"].get<std::string>());
  return pngs;
}

std::string first_digit_body() {
  return nlohmann::json{{"instances", {{{"image", holdout_pngs(1).at(0)}}}}}.dump();
}

command_result run_command(const std::string& command) {
  command_result result;
  FILE* pipe = ::popen((command + " 2>&1 </dev/null").c_str(), "r");
  if (pipe == nullptr)
    return result;
  char buffer[4096];
  size_t n;
  while ((n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0)
    result.output.append(buffer, n);
  int status = ::pclose(pipe);
  result.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    ::close(fd);
    throw std::runtime_error("no free port");
  }
  ::close(fd);
  return ntohs(address.sin_port);
}

std::string server_process::stderr_text() const {
  return read_file(stderr_file_);
}

httplib::Client server_process::client() const {
  httplib::Client client{"127.0.0.1", port_};
  client.set_read_timeout(60, 0);
  client.set_keep_alive(true);
  client.set_tcp_nodelay(true); // else Nagle + delayed ACK add 40 ms a request
  return client;
}

http_answer to_answer(const httplib::Result& result) {
  http_answer answer;
  if (!result) {
    answer.body = {{"transport_error", httplib::to_string(result.error())}};
    return answer;
  }
  answer.status = result->status;
  answer.headers = result->headers;
  answer.body = nlohmann::json::parse(result->body, nullptr, false);
  if (answer.body.is_discarded())
    answer.body = nullptr;
  return answer;
}

http_answer post_json(httplib::Client& client, const std::string& path,
                      const std::string& body, const httplib::Headers& headers) {
  return to_answer(client.Post(path.c_str(), headers, body, "application/json"));
}

http_answer get_json(httplib::Client& client, const std::string& path,
                     const httplib::Headers& headers) {
  return to_answer(client.Get(path.c_str(), headers));
}

void expect_same_answer(const nlohmann::json& job, const nlohmann::json& sync) {
  EXPECT_EQ(job["model"], sync["model"]);
  EXPECT_EQ(job["version"], sync["version"]);
  ASSERT_EQ(job["predictions"].size(), sync["predictions"].size());
  for (size_t p = 0; p < sync["predictions"].size(); ++p) {
    const auto& a = job["predictions"][p];
    const auto& b = sync["predictions"][p];
    EXPECT_EQ(a["label"], b["label"]);
    ASSERT_EQ(a["top_k"].size(), b["top_k"].size());
    for (size_t k = 0; k < b["top_k"].size(); ++k) {
      EXPECT_EQ(a["top_k"][k]["index"], b["top_k"][k]["index"]);
      EXPECT_NEAR(a["top_k"][k]["score"].get<double>(),
                  b["top_k"][k]["score"].get<double>(), 1e-5);
    }
  }
}

} // namespace actorserve::testing
