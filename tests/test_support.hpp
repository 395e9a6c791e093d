#pragma once

// Shared by the tests: temporary folders, the generated model repository, and
// a running actorserve process with a small HTTP client for end-to-end tests.

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include <caf/actor_system_config.hpp>
#include <httplib.h>
#include <nlohmann/json.hpp>

namespace actorserve::testing {

/// A fresh directory under the system temp dir, removed on destruction.
class temp_dir {
public:
  temp_dir();
  ~temp_dir();
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  const std::filesystem::path& path() const { return path_; }

private:
  std::filesystem::path path_;
};

/// The repository made by tools/make_models.py during the build
/// (ACTORSERVE_MODELS_DIR/repository) and the held-out digits file.
/// The actor system config of in-process actor tests: actorserve's message
/// types registered. One per test binary; every actor_system made from it
/// refers to it while it runs.
caf::actor_system_config& registered_actor_config();

std::filesystem::path generated_repository();
std::filesystem::path digits_holdout_file();
/// The test repository made beside it (ACTORSERVE_MODELS_DIR/test-repository):
/// holds `slow`, y = x over [4] rows at about 50 ms of CPU per row, batches
/// of 1, one instance (tools/make_models.py).
std::filesystem::path test_repository();

/// Copies one model folder (all versions, or only `versions`) of the generated
/// repository into `target`.
void copy_model(const std::string& model, const std::filesystem::path& target,
                const std::vector<std::string>& versions = {});

/// The `slow` test model (test_repository()) copied into `target` with one
/// row per batch, two priority levels and no starvation bound within a
/// test's time: what the priority tests flood.
void copy_prioritised_slow_model(const std::filesystem::path& target);

void write_file(const std::filesystem::path& file, const std::string& content);
std::string read_file(const std::filesystem::path& file);
std::string base64_encode(const std::string& bytes);

/// The real actorserve binary, started on port 0; the port comes from its
/// ready line on stdout. Stopped (SIGTERM, then SIGKILL) on destruction.
class server_process {
public:
  explicit server_process(std::vector<std::string> args,
                          std::map<std::string, std::string> env = {},
                          std::chrono::seconds ready_timeout = std::chrono::seconds{120});
  ~server_process();
  server_process(const server_process&) = delete;
  server_process& operator=(const server_process&) = delete;

  int port() const { return port_; }
  int pid() const { return pid_; }
  /// A new client for this server (one per thread).
  httplib::Client client() const;
  /// Sends SIGTERM and waits for the exit status (-1 on timeout).
  int terminate(std::chrono::seconds timeout = std::chrono::seconds{40});
  /// Waits for the process to exit by itself; SIGKILL and -1 on timeout.
  int wait_for_exit(std::chrono::seconds timeout);
  /// Everything the process wrote to stderr so far.
  std::string stderr_text() const;

private:
  int pid_ = -1;
  int port_ = 0;
  std::filesystem::path stderr_file_;
  temp_dir logs_;
};

/// The first `count` held-out digits (tools/make_models.py kept them out of
/// training), each {"label": int, "png": base64 PNG}; fewer if there are not
/// that many.
std::vector<nlohmann::json> holdout_digits(size_t count = SIZE_MAX);

/// The base64 PNGs of the first `count` held-out digits.
std::vector<std::string> holdout_pngs(size_t count);

/// The predict body of the first held-out digit (one PNG instance).
std::string first_digit_body();

struct command_result {
  int code = -1;
  std::string output; // stdout and stderr, interleaved
};

/// Runs a command line with sh, stdout and stderr captured together.
command_result run_command(const std::string& command);

/// A loopback port that was free a moment ago (for listeners that cannot
/// take port 0, or must come back on the same port).
int free_port();

/// POSTs JSON; returns status and parsed body (null when not JSON).
struct http_answer {
  int status = 0;
  nlohmann::json body;
  httplib::Headers headers;
};
http_answer to_answer(const httplib::Result& result);
http_answer post_json(httplib::Client& client, const std::string& path,
                      const std::string& body, const httplib::Headers& headers = {});
http_answer get_json(httplib::Client& client, const std::string& path,
                     const httplib::Headers& headers = {});

/// Expects a job's result to equal a synchronous answer for the same input,
/// up to float noise: a job may be batched with other requests, which may
/// round the last bits of a score differently; labels and order must be
/// identical.
void expect_same_answer(const nlohmann::json& job, const nlohmann::json& sync);

} // namespace actorserve::testing
