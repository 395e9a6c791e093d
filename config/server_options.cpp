#include "config/server_options.hpp"

#include "config/redis_url.hpp"

#include <algorithm>
#include <arpa/inet.h>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <netinet/in.h>
#include <optional>
#include <sstream>
#include <string_view>

#include <nlohmann/json.hpp>

namespace actorserve {
namespace {

using json = nlohmann::json;

constexpr int64_t day_s = 24 * 60 * 60;
constexpr int64_t tebibyte = int64_t{1} << 40;

/// One server option: its flag, config key and help, and how to read it
/// from a flag value or a config value. `name` in the functions is what an
/// error calls the option ("--port", "server.json: port").
struct option_descriptor {
  std::string flag;        // "--max-body-bytes"
  std::string key;         // "max_body_bytes"
  std::string placeholder; // "N"; empty for a switch, which takes no value
  std::string help;
  std::function<std::string(const server_options&)> render;
  std::function<void(server_options&, std::string_view text, const std::string& name)>
      set_text;
  std::function<void(server_options&, const json& value, const std::string& name)>
      set_json;
  /// Throws config_error if the option's current value is not allowed.
  std::function<void(const server_options&, const std::string& name)> check;
};

[[noreturn]] void fail(const std::string& name, const std::string& what) {
  throw config_error(name + ": " + what);
}

std::string quote(std::string_view text) {
  return "\"" + std::string(text) + "\"";
}

std::string range_text(int64_t min, int64_t max) {
  return "an integer from " + std::to_string(min) + " to " + std::to_string(max);
}

template <class Int>
option_descriptor integer_option(std::string flag, std::string key,
                                 std::string placeholder, Int server_options::*member,
                                 int64_t min, int64_t max, std::string help) {
  help += " (" + std::to_string(min) + " to " + std::to_string(max) + ")";
  auto assign = [member, min, max](server_options& options, std::optional<int64_t> value,
                                   const std::string& got, const std::string& name) {
    if (!value || *value < min || *value > max)
      fail(name, "must be " + range_text(min, max) + ", got " + got);
    options.*member = static_cast<Int>(*value);
  };
  return {
      std::move(flag),
      std::move(key),
      std::move(placeholder),
      std::move(help),
      [member](const server_options& options) { return std::to_string(options.*member); },
      [assign](server_options& options, std::string_view text, const std::string& name) {
        int64_t value = 0;
        auto [end, error] =
            std::from_chars(text.data(), text.data() + text.size(), value);
        bool ok = error == std::errc() && end == text.data() + text.size();
        assign(options, ok ? std::optional<int64_t>(value) : std::nullopt, quote(text),
               name);
      },
      [assign](server_options& options, const json& value, const std::string& name) {
        bool ok = value.is_number_integer() &&
                  !(value.is_number_unsigned() &&
                    value.get<uint64_t>() >
                        static_cast<uint64_t>(std::numeric_limits<int64_t>::max()));
        assign(options, ok ? std::optional<int64_t>(value.get<int64_t>()) : std::nullopt,
               value.dump(), name);
      },
      [member, min, max](const server_options& options, const std::string& name) {
        int64_t value = options.*member;
        if (value < min || value > max)
          fail(name,
               "must be " + range_text(min, max) + ", got " + std::to_string(value));
      },
  };
}

/// A string option; an empty `choices` allows any non-empty string (or any
/// string at all when `may_be_empty`, for options that are off when empty).
option_descriptor string_option(std::string flag, std::string key,
                                std::string placeholder,
                                std::string server_options::*member,
                                std::vector<std::string> choices, std::string help,
                                bool may_be_empty = false) {
  std::string expected = "a non-empty string";
  if (!choices.empty()) {
    expected.clear();
    for (const std::string& choice : choices)
      expected += (expected.empty() ? "" : "|") + choice;
    help += " (" + expected + ")";
    expected = "one of " + expected;
  }
  auto check = [member, choices, expected, may_be_empty](const server_options& options,
                                                         const std::string& name) {
    const std::string& value = options.*member;
    bool ok = choices.empty()
                  ? may_be_empty || !value.empty()
                  : std::find(choices.begin(), choices.end(), value) != choices.end();
    if (!ok)
      fail(name, "must be " + expected + ", got " + quote(value));
  };
  return {
      std::move(flag),
      std::move(key),
      std::move(placeholder),
      std::move(help),
      [member](const server_options& options) { return options.*member; },
      [member, check](server_options& options, std::string_view text,
                      const std::string& name) {
        options.*member = std::string(text);
        check(options, name);
      },
      [member, check, expected](server_options& options, const json& value,
                                const std::string& name) {
        if (!value.is_string())
          fail(name, "must be " + expected + ", got " + value.dump());
        options.*member = value.get<std::string>();
        check(options, name);
      },
      check,
  };
}

/// A boolean: as a flag it takes no value (`--flag`, or `--flag=true|false`).
option_descriptor switch_option(std::string flag, std::string key,
                                bool server_options::*member, std::string help) {
  return {
      std::move(flag),
      std::move(key),
      "",
      std::move(help),
      [member](const server_options& options) {
        return std::string(options.*member ? "true" : "false");
      },
      [member](server_options& options, std::string_view text, const std::string& name) {
        if (text != "true" && text != "false")
          fail(name, "takes no value, or =true or =false, got " + quote(text));
        options.*member = text == "true";
      },
      [member](server_options& options, const json& value, const std::string& name) {
        if (!value.is_boolean())
          fail(name, "must be true or false, got " + value.dump());
        options.*member = value.get<bool>();
      },
      [](const server_options&, const std::string&) {},
  };
}

/// Every option with a flag. --config and --help are handled by the parser.
const std::vector<option_descriptor>& option_table() {
  using o = server_options;
  constexpr int64_t int32_max = std::numeric_limits<int32_t>::max();
  static const std::vector<option_descriptor> table = {
      string_option("--model-repository", "model_repository", "DIR", &o::model_repository,
                    {}, "the model repository to serve"),
      string_option("--host", "host", "ADDR", &o::host, {},
                    "HTTP listen address; beyond loopback it needs API keys or "
                    "--allow-unauthenticated"),
      integer_option("--port", "port", "N", &o::port, 0, 65535,
                     "HTTP listen port; 0 picks a free port"),
      integer_option("--grpc-port", "grpc_port", "N", &o::grpc_port, 0, 65535,
                     "serve the Open Inference Protocol over gRPC on --host at this "
                     "port; 0 = off"),
      string_option(
          "--api-key-file", "api_key_file", "FILE", &o::api_key_file, {},
          "API keys, one per line as predict:KEY or admin:KEY; re-read on SIGHUP "
          "and when the file changes",
          true),
      switch_option("--metrics-require-key", "metrics_require_key",
                    &o::metrics_require_key,
                    "/metrics needs a predict key (it is open by default)"),
      switch_option("--allow-unauthenticated", "allow_unauthenticated",
                    &o::allow_unauthenticated,
                    "listen on a non-loopback address without API keys (auth off)"),
      switch_option("--enable-fault-injection", "enable_fault_injection",
                    &o::enable_fault_injection,
                    "TESTS ONLY: an input value of -7777777 crashes the model instance"),
      integer_option("--http-threads", "http_threads", "N", &o::http_threads, 1, 1024,
                     "HTTP worker threads: requests served at once (a connection holds "
                     "one only while a request is on it)"),
      integer_option("--listen-backlog", "listen_backlog", "N", &o::listen_backlog, 1,
                     65535, "connections the kernel queues before they are accepted"),
      integer_option("--keep-alive-max-count", "keep_alive_max_count", "N",
                     &o::keep_alive_max_count, 1, int32_max,
                     "requests served on one connection before it is closed"),
      integer_option("--keep-alive-timeout-s", "keep_alive_timeout_s", "SECONDS",
                     &o::keep_alive_timeout_s, 1, 3600,
                     "idle time before a kept-alive connection is closed"),
      integer_option("--read-timeout-s", "read_timeout_s", "SECONDS", &o::read_timeout_s,
                     1, 3600,
                     "longest wait for a request to arrive; its request line and "
                     "headers must all arrive within it (else 408)"),
      integer_option("--write-timeout-s", "write_timeout_s", "SECONDS",
                     &o::write_timeout_s, 1, 3600,
                     "longest wait for a response to be sent"),
      integer_option("--request-timeout-s", "request_timeout_s", "SECONDS",
                     &o::request_timeout_s, 1, 3600,
                     "longest time to receive a whole request, body included"),
      integer_option("--max-pending-connections", "max_pending_connections", "N",
                     &o::max_pending_connections, 1, 1'000'000,
                     "connections with a request waiting for a free HTTP worker; more "
                     "are answered 503 and closed"),
      integer_option("--max-connections", "max_connections", "N", &o::max_connections, 1,
                     1'000'000,
                     "open client connections, idle ones included; more are answered "
                     "503 and closed (also bounded by the open-file limit)"),
      integer_option("--max-body-bytes", "max_body_bytes", "BYTES", &o::max_body_bytes, 1,
                     tebibyte, "largest request body; larger ones get 413"),
      integer_option("--max-header-count", "max_header_count", "N", &o::max_header_count,
                     1, 10000, "most header lines in a request; more get 431"),
      integer_option("--max-header-bytes", "max_header_bytes", "BYTES",
                     &o::max_header_bytes, 1024, 16 * 1024 * 1024,
                     "most bytes of a request line and headers (each line at most 8 "
                     "KiB); more get 431, a longer request line 414"),
      integer_option("--max-instances-per-request", "max_instances_per_request", "N",
                     &o::max_instances_per_request, 1, 1'000'000,
                     "most instances in one predict request"),
      integer_option("--max-image-pixels", "max_image_pixels", "PIXELS",
                     &o::max_image_pixels, 1, int64_t{1} << 32,
                     "largest decoded image (width * height); larger ones get 413"),
      integer_option("--default-timeout-ms", "default_timeout_ms", "MS",
                     &o::default_timeout_ms, 1, day_s * 1000,
                     "deadline of a request without parameters.timeout_ms"),
      integer_option("--max-timeout-ms", "max_timeout_ms", "MS", &o::max_timeout_ms, 1,
                     day_s * 1000, "largest parameters.timeout_ms a client may ask for"),
      integer_option("--predict-rate-per-s", "predict_rate_per_s", "N",
                     &o::predict_rate_per_s, 0, 1'000'000,
                     "requests per second of each predict key; 0 = unlimited; over "
                     "it: 429 with Retry-After"),
      integer_option("--predict-burst", "predict_burst", "N", &o::predict_burst, 1,
                     10'000'000, "requests a predict key may send at once"),
      integer_option("--admin-rate-per-s", "admin_rate_per_s", "N", &o::admin_rate_per_s,
                     0, 1'000'000,
                     "requests per second of each admin key; 0 = unlimited"),
      integer_option("--admin-burst", "admin_burst", "N", &o::admin_burst, 1, 10'000'000,
                     "requests an admin key may send at once"),
      integer_option("--anonymous-rate-per-s", "anonymous_rate_per_s", "N",
                     &o::anonymous_rate_per_s, 0, 1'000'000,
                     "requests per second of each client IP without a valid key (every "
                     "client when auth is off; failed auth counts too); 0 = unlimited"),
      integer_option("--anonymous-burst", "anonymous_burst", "N", &o::anonymous_burst, 1,
                     10'000'000, "requests a client IP without a key may send at once"),
      integer_option("--rate-limit-max-clients", "rate_limit_max_clients", "N",
                     &o::rate_limit_max_clients, 1, 10'000'000,
                     "clients with a rate-limit bucket at once; beyond it new clients "
                     "share one bucket per role"),
      string_option("--trusted-proxies", "trusted_proxies", "IPS", &o::trusted_proxies,
                    {},
                    "comma-separated proxy IPs whose X-Forwarded-For names the client "
                    "(for rate limits and logs); from any other peer it is ignored",
                    true),
      integer_option("--load-timeout-s", "load_timeout_s", "SECONDS", &o::load_timeout_s,
                     1, day_s, "longest loading plus warm-up of one model version"),
      integer_option("--repository-poll-s", "repository_poll_s", "SECONDS",
                     &o::repository_poll_s, 0, day_s,
                     "rescan the repository every N seconds (0 = off): new model and "
                     "version folders load once their model.pt kept its size and mtime "
                     "for one interval, gone versions unload, a changed config.json "
                     "reloads the model"),
      integer_option("--torch-threads", "torch_threads", "N", &o::torch_threads, 0, 1024,
                     "intra-op threads of each model instance, for models whose "
                     "config.json has no \"threads\"; 0 = auto: split the CPUs the "
                     "process may use (affinity, cgroup quota) by model size"),
      integer_option("--instances", "instances", "N", &o::instances, 0, 64,
                     "model instances per version, for models whose config.json has "
                     "no \"instances\"; 0 = auto, as --torch-threads"),
      integer_option("--actor-threads", "actor_threads", "N", &o::actor_threads, 1, 1024,
                     "scheduler threads of the message-passing actors (forward runs on "
                     "threads of its own)"),
      string_option("--actor-scheduler", "actor_scheduler", "POLICY", &o::actor_scheduler,
                    {"sharing", "work-stealing"},
                    "how the actor threads take work: one shared queue, or CAF's "
                    "work stealing"),
      integer_option("--job-ttl-s", "job_ttl_s", "SECONDS", &o::job_ttl_s, 1, 30 * day_s,
                     "how long a finished async job's result is kept"),
      integer_option("--max-jobs", "max_jobs", "N", &o::max_jobs, 1, 10'000'000,
                     "most async jobs kept at once"),
      integer_option("--max-job-bytes", "max_job_bytes", "BYTES", &o::max_job_bytes, 1,
                     tebibyte, "most bytes of async job inputs and results kept at once"),
      integer_option("--max-running-jobs", "max_running_jobs", "N", &o::max_running_jobs,
                     1, 100000, "async jobs in flight at once; the rest wait queued"),
      string_option("--job-store", "job_store", "STORE", &o::job_store,
                    {"memory", "redis"},
                    "where async jobs live: this process, or Redis (--redis-url), "
                    "shared by every node and kept across restarts"),
      integer_option("--job-lease-s", "job_lease_s", "SECONDS", &o::job_lease_s, 1, day_s,
                     "a Redis job whose node stops renewing its lease for this long "
                     "runs again on another node"),
      string_option("--redis-url", "redis_url", "URL", &o::redis_url, {},
                    "Redis for shared jobs and the shared response cache: "
                    "redis://[:PASSWORD@]HOST:PORT[/DB] (the password is never logged)",
                    true),
      integer_option("--redis-timeout-ms", "redis_timeout_ms", "MS", &o::redis_timeout_ms,
                     1, 60000,
                     "longest wait to connect to Redis and for each command; past it "
                     "Redis counts as unreachable"),
      string_option("--cache", "cache", "STORE", &o::cache, {"memory", "redis"},
                    "where the response cache of models that enable it lives"),
      integer_option("--cache-bytes", "cache_bytes", "BYTES", &o::cache_bytes, 0,
                     tebibyte,
                     "bound of the in-memory response cache (least recently used "
                     "entries leave first)"),
      integer_option("--cache-ttl-s", "cache_ttl_s", "SECONDS", &o::cache_ttl_s, 1,
                     30 * day_s, "lifetime of a response cache entry in Redis"),
      integer_option("--cluster-port", "cluster_port", "N", &o::cluster_port, 0, 65535,
                     "publish this node to its peers on this port; 0: no cluster"),
      string_option("--cluster-host", "cluster_host", "ADDR", &o::cluster_host, {},
                    "address the cluster port binds to; beyond loopback it needs "
                    "the cluster TLS files or --allow-insecure-cluster"),
      string_option("--join", "join", "HOST:PORT,...", &o::join, {},
                    "peers to connect to at start; retried with backoff while absent",
                    true),
      string_option("--node-name", "node_name", "NAME", &o::node_name, {},
                    "this node's name in listings (default: cluster host:port)", true),
      string_option("--cluster-tls-cert", "cluster_tls_cert", "FILE",
                    &o::cluster_tls_cert, {}, "this node's TLS certificate (PEM)", true),
      string_option("--cluster-tls-key", "cluster_tls_key", "FILE", &o::cluster_tls_key,
                    {}, "this node's TLS private key (PEM)", true),
      string_option("--cluster-tls-ca", "cluster_tls_ca", "FILE", &o::cluster_tls_ca, {},
                    "CA certificate every peer's certificate must be signed by; with "
                    "the cert and key, nodes talk mutual TLS",
                    true),
      switch_option("--allow-insecure-cluster", "allow_insecure_cluster",
                    &o::allow_insecure_cluster,
                    "let plain (non-TLS) cluster traffic use non-loopback addresses"),
      integer_option("--cluster-heartbeat-ms", "cluster_heartbeat_ms", "MS",
                     &o::cluster_heartbeat_ms, 10, 600000,
                     "heartbeat interval between nodes"),
      integer_option("--cluster-timeout-ms", "cluster_timeout_ms", "MS",
                     &o::cluster_timeout_ms, 50, 3600000,
                     "a peer silent this long is dropped"),
      integer_option("--cluster-sync-ms", "cluster_sync_ms", "MS", &o::cluster_sync_ms,
                     10, 600000, "how often each peer's catalog is pulled"),
      integer_option("--cluster-retry-max-ms", "cluster_retry_max_ms", "MS",
                     &o::cluster_retry_max_ms, 10, 600000,
                     "longest wait between attempts to reach an absent peer"),
      integer_option("--drain-timeout-s", "drain_timeout_s", "SECONDS",
                     &o::drain_timeout_s, 0, 3600,
                     "on SIGTERM/SIGINT, longest wait for in-flight requests"),
      string_option("--log-format", "log_format", "FORMAT", &o::log_format,
                    {"json", "text"}, "log line format"),
      string_option("--log-level", "log_level", "LEVEL", &o::log_level,
                    {"trace", "debug", "info", "warn", "error", "critical", "off"},
                    "lowest level logged"),
  };
  return table;
}

/// The keys: from the environment or the config file, never from flags, so
/// that they stay out of `ps` and shell history.
struct key_list_descriptor {
  std::string env;
  std::string key;
  std::string help;
  std::vector<std::string> server_options::*member;
};

const std::vector<key_list_descriptor>& key_list_table() {
  static const std::vector<key_list_descriptor> table = {
      {"ACTORSERVE_API_KEYS", "api_keys", "keys with the predict role",
       &server_options::api_keys},
      {"ACTORSERVE_ADMIN_KEYS", "admin_keys",
       "keys with the admin role (admin keys may also predict)",
       &server_options::admin_keys},
  };
  return table;
}

const option_descriptor* find_flag(std::string_view flag) {
  for (const option_descriptor& option : option_table()) {
    if (option.flag == flag)
      return &option;
  }
  return nullptr;
}

std::string_view trim(std::string_view text) {
  auto is_space = [](char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; };
  while (!text.empty() && is_space(text.front()))
    text.remove_prefix(1);
  while (!text.empty() && is_space(text.back()))
    text.remove_suffix(1);
  return text;
}

/// "a, b,,c" -> {"a", "b", "c"}.
std::vector<std::string> split_keys(std::string_view text) {
  std::vector<std::string> keys;
  while (true) {
    size_t comma = text.find(',');
    std::string_view key = trim(text.substr(0, comma));
    if (!key.empty())
      keys.emplace_back(key);
    if (comma == std::string_view::npos)
      return keys;
    text.remove_prefix(comma + 1);
  }
}

std::string read_text(const std::string& file) {
  std::error_code error;
  if (std::filesystem::is_directory(file, error))
    throw config_error(file + ": cannot read: is a directory");
  std::ifstream in(file, std::ios::binary);
  if (!in)
    throw config_error(file + ": cannot read: " + std::strerror(errno));
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad())
    throw config_error(file + ": cannot read: " + std::strerror(errno));
  return text.str();
}

void apply_config_file(server_options& options, const std::string& file) {
  json document;
  try {
    document = json::parse(read_text(file));
  } catch (const json::parse_error& e) {
    throw config_error(file + ": invalid JSON: " + e.what());
  }
  if (!document.is_object())
    throw config_error(file + ": must be a JSON object, got " + document.dump());
  for (const auto& item : document.items()) {
    const std::string& key = item.key();
    const json& value = item.value();
    std::string name = file + ": " + key;
    auto option = std::find_if(option_table().begin(), option_table().end(),
                               [&](const option_descriptor& o) { return o.key == key; });
    if (option != option_table().end()) {
      option->set_json(options, value, name);
      continue;
    }
    auto keys = std::find_if(key_list_table().begin(), key_list_table().end(),
                             [&](const key_list_descriptor& k) { return k.key == key; });
    if (keys == key_list_table().end())
      fail(name, "unknown key (see --help)");
    if (!value.is_array())
      fail(name, "must be an array of strings");
    std::vector<std::string>& target = options.*(keys->member);
    target.clear();
    for (size_t i = 0; i < value.size(); ++i) {
      std::string element_name = name + "[" + std::to_string(i) + "]";
      if (!value[i].is_string())
        fail(element_name, "must be a string"); // never echo what may be a key
      std::string_view text = trim(value[i].get_ref<const std::string&>());
      if (text.empty())
        fail(element_name, "must not be empty");
      target.emplace_back(text);
    }
  }
}

/// The variable that may hold --redis-url, so that a password in it stays
/// out of `ps` (systemd's EnvironmentFile, `docker run -e`).
constexpr const char* redis_url_env = "ACTORSERVE_REDIS_URL";

/// Set and non-empty variables replace the config file's keys and Redis URL.
void apply_environment(server_options& options) {
  for (const key_list_descriptor& keys : key_list_table()) {
    const char* text = std::getenv(keys.env.c_str());
    if (text == nullptr)
      continue;
    std::vector<std::string> parsed = split_keys(text);
    if (!parsed.empty())
      options.*(keys.member) = std::move(parsed);
  }
  if (const char* url = std::getenv(redis_url_env); url != nullptr && *url != '\0')
    options.redis_url = url;
}

/// One flag of argv with its value, applied after the config file.
struct flag_value {
  const option_descriptor* option;
  std::string flag;
  std::string value;
};

bool is_dotted_quad_127(std::string_view host) {
  int parts = 0;
  while (true) {
    size_t dot = host.find('.');
    std::string_view part = host.substr(0, dot);
    bool digits = !part.empty() && part.size() <= 3 &&
                  std::all_of(part.begin(), part.end(),
                              [](char c) { return c >= '0' && c <= '9'; });
    int value = digits ? std::stoi(std::string(part)) : -1;
    if (value < 0 || value > 255 || (parts == 0 && value != 127))
      return false;
    ++parts;
    if (dot == std::string_view::npos)
      return parts == 4;
    host.remove_prefix(dot + 1);
  }
}

} // namespace

command_line parse_command_line(int argc, const char* const* argv) {
  command_line result;
  std::vector<std::string_view> args(argv + std::min(argc, 1), argv + argc);
  if (std::find_if(args.begin(), args.end(), [](std::string_view arg) {
        return arg == "--help" || arg == "-h";
      }) != args.end()) {
    result.help = true;
    return result;
  }

  std::optional<std::string> config_file;
  std::vector<flag_value> flags;
  for (size_t i = 0; i < args.size(); ++i) {
    std::string_view arg = args[i];
    if (arg.substr(0, 2) != "--" || arg.size() == 2)
      fail(quote(arg), arg.substr(0, 1) == "-" ? "unknown flag (see --help)"
                                               : "unexpected argument (see --help)");
    size_t equals = arg.find('=');
    std::string flag(arg.substr(0, equals));
    std::optional<std::string> value;
    if (equals != std::string_view::npos)
      value = std::string(arg.substr(equals + 1));

    const option_descriptor* option = find_flag(flag);
    if (option == nullptr && flag != "--config")
      fail(flag, "unknown flag (see --help)");
    bool is_switch = option != nullptr && option->placeholder.empty();
    if (is_switch && !value)
      value = "true";
    if (!value) {
      if (i + 1 == args.size() || args[i + 1].substr(0, 2) == "--")
        fail(flag, "missing value");
      value = std::string(args[++i]);
    }
    if (option == nullptr)
      config_file = *value;
    else
      flags.push_back({option, flag, *value});
  }

  if (config_file)
    apply_config_file(result.options, *config_file);
  apply_environment(result.options);
  for (const flag_value& flag : flags)
    flag.option->set_text(result.options, flag.value, flag.flag);
  validate(result.options);
  return result;
}

namespace {

/// The cluster rules: the TLS files come as a set, and plain cluster
/// traffic stays on loopback unless allowed.
void validate_cluster(const server_options& options) {
  int tls_files = !options.cluster_tls_cert.empty() + !options.cluster_tls_key.empty() +
                  !options.cluster_tls_ca.empty();
  if (tls_files != 0 && tls_files != 3)
    fail("cluster_tls_cert/cluster_tls_key/cluster_tls_ca",
         "give all three files for mutual TLS, or none");
  auto peers = parse_endpoints(options.join, "join (--join)");
  if (cluster_tls_enabled(options) || options.allow_insecure_cluster)
    return;
  if (options.cluster_port != 0 && !is_loopback_address(options.cluster_host))
    fail("cluster_host (--cluster-host)",
         "refusing plain cluster traffic on " + quote(options.cluster_host) +
             ": set the cluster TLS files, or pass --allow-insecure-cluster");
  for (const auto& peer : peers)
    if (!is_loopback_address(peer.host))
      fail("join (--join)", "refusing plain cluster traffic to " + quote(peer.host) +
                                ": set the cluster TLS files, or pass "
                                "--allow-insecure-cluster");
}

void validate_redis(const server_options& options) {
  if (!options.redis_url.empty())
    parse_redis_url(options.redis_url, "redis_url (--redis-url)");
  else if (options.job_store == "redis")
    fail("job_store (--job-store)", "redis needs --redis-url");
  else if (options.cache == "redis")
    fail("cache (--cache)", "redis needs --redis-url");
}

} // namespace

void validate(const server_options& options) {
  for (const option_descriptor& option : option_table())
    option.check(options, option.key + " (" + option.flag + ")");
  if (options.default_timeout_ms > options.max_timeout_ms)
    fail("default_timeout_ms (--default-timeout-ms)",
         "must not exceed max_timeout_ms (" + std::to_string(options.max_timeout_ms) +
             "), got " + std::to_string(options.default_timeout_ms));
  for (const std::string& proxy : split_keys(options.trusted_proxies)) {
    if (!is_ip_address(proxy))
      fail("trusted_proxies (--trusted-proxies)",
           "must be comma-separated IPv4 or IPv6 addresses, got " + quote(proxy));
  }
  for (const key_list_descriptor& keys : key_list_table()) {
    for (const std::string& key : options.*(keys.member)) {
      if (trim(key).empty())
        fail(keys.key, "holds an empty key");
    }
  }
  validate_cluster(options);
  validate_redis(options);
  bool has_keys = !options.api_keys.empty() || !options.admin_keys.empty() ||
                  !options.api_key_file.empty();
  if (!has_keys && !options.allow_unauthenticated && !is_loopback_address(options.host))
    fail("host (--host)",
         "refusing to listen on " + quote(options.host) +
             " without authentication: no API keys are configured. Set "
             "ACTORSERVE_API_KEYS or ACTORSERVE_ADMIN_KEYS (or api_keys/admin_keys in "
             "the config file), or pass --allow-unauthenticated (config key "
             "allow_unauthenticated) to serve this address without keys");
}

std::vector<endpoint> parse_endpoints(const std::string& text, const std::string& name) {
  std::vector<endpoint> result;
  for (const auto& item : split_keys(text)) {
    auto colon = item.rfind(':');
    int64_t port = 0;
    auto digits =
        std::string_view{item}.substr(colon == std::string::npos ? 0 : colon + 1);
    auto [end, error] =
        std::from_chars(digits.data(), digits.data() + digits.size(), port);
    if (colon == std::string::npos || colon == 0 || error != std::errc() ||
        end != digits.data() + digits.size() || port < 1 || port > 65535)
      fail(name, "must be HOST:PORT[,HOST:PORT...], got " + quote(item));
    result.push_back({item.substr(0, colon), static_cast<uint16_t>(port)});
  }
  return result;
}

bool cluster_tls_enabled(const server_options& options) {
  return !options.cluster_tls_cert.empty() && !options.cluster_tls_key.empty() &&
         !options.cluster_tls_ca.empty();
}

std::string help_text() {
  const server_options defaults;
  std::ostringstream out;
  out << "Usage: actorserve [--model-repository DIR] [--host ADDR] [--port N] "
         "[--config FILE] [options]\n\n"
         "Options are read in this order, each overriding the one before: defaults, the\n"
         "--config file, the environment, the flags. Flags take `--flag VALUE` or\n"
         "`--flag=VALUE`.\n\n"
         "Options:\n";
  for (const option_descriptor& option : option_table()) {
    std::string default_value = option.render(defaults);
    out << "  " << option.flag
        << (option.placeholder.empty() ? "" : " " + option.placeholder) << "\n      "
        << option.help
        << ".\n      default: " << (default_value.empty() ? "\"\"" : default_value)
        << "; config key: " << option.key << "\n";
  }
  out << "  --config FILE\n"
         "      a JSON object of config keys (those above, plus api_keys and admin_keys\n"
         "      as arrays of strings); flags override it. Unknown keys are an error.\n"
         "  -h, --help\n"
         "      print this help and exit.\n\n"
         "Environment (comma-separated; overrides the config file when non-empty):\n";
  for (const key_list_descriptor& keys : key_list_table())
    out << "  " << keys.env << "\n      " << keys.help << "; config key: " << keys.key
        << "\n";
  out << "  " << redis_url_env
      << "\n      the Redis URL (as --redis-url, which overrides it); config key: "
         "redis_url\n";
  out << "With no keys, authentication is off and only loopback addresses may be used\n"
         "unless --allow-unauthenticated is given.\n";
  return out.str();
}

bool is_ip_address(const std::string& text) {
  in_addr v4{};
  in6_addr v6{};
  return inet_pton(AF_INET, text.c_str(), &v4) == 1 ||
         inet_pton(AF_INET6, text.c_str(), &v6) == 1;
}

bool is_loopback_address(const std::string& host) {
  std::string lower(host);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (lower == "localhost")
    return true;
  if (is_dotted_quad_127(host))
    return true;
  std::string v6 = host.size() > 2 && host.front() == '[' && host.back() == ']'
                       ? host.substr(1, host.size() - 2)
                       : host;
  in6_addr address{};
  return inet_pton(AF_INET6, v6.c_str(), &address) == 1 && IN6_IS_ADDR_LOOPBACK(&address);
}

} // namespace actorserve
