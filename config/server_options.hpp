#pragma once

// The server's options: defaults here, then an optional JSON file
// (--config), then the environment (API keys), then command-line flags, each
// overriding the one before. Every option has one entry in a table in
// server_options.cpp that names its flag, its config key, its default and
// its help text, so `--help`, the parser and the README cannot drift apart.

#include <cstdint>
#include <string>
#include <vector>

#include "config/model_config.hpp" // config_error

namespace actorserve {

struct server_options {
  // Where and how to listen.
  std::string model_repository = ACTORSERVE_DEFAULT_REPOSITORY;
  std::string host = "127.0.0.1";
  int32_t port = 8080;
  int32_t grpc_port = 0;              // the Open Inference Protocol over gRPC; 0 = off
  bool allow_unauthenticated = false; // listen beyond loopback without keys
  int32_t http_threads = 128;         // HTTP workers: requests served at once
  int32_t listen_backlog = 1024;      // cpp-httplib's own backlog is 5
  int32_t keep_alive_max_count = 10000;
  int32_t keep_alive_timeout_s = 5;
  int32_t read_timeout_s = 10;
  int32_t write_timeout_s = 10;
  int32_t request_timeout_s = 60;         // the whole request, body included
  int32_t max_pending_connections = 1024; // with a request, waiting for a worker
  int32_t max_connections = 10000;        // open, idle ones included

  // Request limits.
  int64_t max_body_bytes = 10 * 1024 * 1024;
  int32_t max_header_count = 100;       // more header lines get 431
  int32_t max_header_bytes = 64 * 1024; // request line and headers; more get 431
  int32_t max_instances_per_request = 1024;
  int64_t max_image_pixels = 4096 * 4096;
  int64_t default_timeout_ms = 30000; // deadline when parameters.timeout_ms is absent
  int64_t max_timeout_ms = 300000;

  // Rate limits: token buckets per API key (per client IP without a key);
  // a rate of 0 turns that role's limit off.
  int32_t predict_rate_per_s = 1000; // per predict key
  int32_t predict_burst = 2000;
  int32_t admin_rate_per_s = 100; // per admin key
  int32_t admin_burst = 200;
  int32_t anonymous_rate_per_s = 1000; // per client IP, without a valid key
  int32_t anonymous_burst = 2000;
  int32_t rate_limit_max_clients = 100000; // buckets tracked at once
  // Comma-separated proxy IPs whose X-Forwarded-For is believed.
  std::string trusted_proxies;

  // Models.
  int64_t load_timeout_s = 300;  // loading plus warm-up of one version
  int32_t repository_poll_s = 0; // rescan of the repository (0 = off)
  // Per version, unless its config.json says: 0 = by the CPU budget
  // (config/compute_plan.hpp).
  int32_t torch_threads = 0; // intra-op threads of each model instance
  int32_t instances = 0;     // model instances
  // Scheduler threads of the cooperative actors (registry, routers, batchers,
  // job store). Forward runs on detached actors with threads of their own, so
  // these only pass messages: on a small box one thread spares the cross-thread
  // wake-ups and work-stealing polls that two of them cost.
  int32_t actor_threads = 1;
  // How those threads take work: "sharing" (one queue; an idle thread sleeps
  // until work arrives) or "work-stealing" (CAF's default; an idle thread
  // polls, sleeping 50 us between polls). With one thread and a message or two
  // per request, sharing spared those wake-ups: +4.6 % digits req/s.
  std::string actor_scheduler = "sharing";
  bool enable_fault_injection = false; // tests only: inputs can crash instances

  // Async jobs.
  int64_t job_ttl_s = 600;
  int32_t max_jobs = 10000;
  int64_t max_job_bytes = 256 * 1024 * 1024;
  int32_t max_running_jobs = 32;    // jobs in the routers at once; the rest queue
  std::string job_store = "memory"; // "memory" (this process) or "redis" (shared)
  int64_t job_lease_s = 30;         // a Redis job's node must renew its lease within this

  // Shared state on Redis (../shared/API.md, "Shared state (Redis)").
  std::string redis_url;          // redis://[:PASSWORD@]HOST:PORT[/DB]; "" = no Redis
  int64_t redis_timeout_ms = 500; // connect, and each command

  // The response cache of models that enable it in config.json.
  std::string cache = "memory";            // "memory" (this process) or "redis"
  int64_t cache_bytes = 256 * 1024 * 1024; // memory cache bound (LRU)
  int64_t cache_ttl_s = 600;               // lifetime of a Redis cache entry

  // Cluster (off while cluster_port is 0). Nodes talk CAF's BASP protocol,
  // over mutual TLS when the three cluster_tls_* files are set.
  int32_t cluster_port = 0; // publish this node's registry here
  std::string cluster_host = "127.0.0.1";
  std::string join;                    // "HOST:PORT,HOST:PORT" peers to connect to
  std::string node_name;               // "" = cluster_host:cluster_port
  std::string cluster_tls_cert;        // this node's certificate (PEM)
  std::string cluster_tls_key;         // its private key (PEM)
  std::string cluster_tls_ca;          // the private CA that signs every node
  bool allow_insecure_cluster = false; // plain BASP beyond loopback
  int64_t cluster_heartbeat_ms = 1000; // CAF's heartbeats are off by default
  int64_t cluster_timeout_ms = 5000;   // a silent peer is dropped after this
  int64_t cluster_sync_ms = 1000;      // catalog pull from each peer
  int64_t cluster_retry_max_ms = 2000; // longest wait between join attempts

  // Operations.
  int64_t drain_timeout_s = 30;
  std::string log_format = "json"; // "json" or "text"
  std::string log_level = "info";  // spdlog level name

  // Keys, from ACTORSERVE_API_KEYS / ACTORSERVE_ADMIN_KEYS (comma-separated)
  // or the config file; never from flags, so they stay out of `ps`.
  std::vector<std::string> api_keys;
  std::vector<std::string> admin_keys;
  // A key file (lines "predict:KEY" / "admin:KEY"), re-read on SIGHUP and
  // when it changes, so keys rotate without a restart.
  std::string api_key_file;
  bool metrics_require_key = false; // /metrics is open unless this is set
};

/// What parse_command_line found: options to run with, or a request for help.
struct command_line {
  server_options options;
  bool help = false;
};

/// Parses argv (with `--config FILE` read first, whatever its position) and
/// the environment. Unknown flags, missing values, bad numbers, unknown
/// config keys and out-of-range values throw config_error naming the flag
/// or key (and the file).
command_line parse_command_line(int argc, const char* const* argv);

/// Validates cross-field rules (ranges, log format, the loopback rule).
/// Throws config_error naming the key.
void validate(const server_options& options);

/// The `--help` text: every flag and config key with its default.
std::string help_text();

/// True for an IPv4 or IPv6 address literal.
bool is_ip_address(const std::string& text);

/// True for 127.0.0.0/8, ::1 and "localhost".
bool is_loopback_address(const std::string& host);

struct endpoint {
  std::string host;
  uint16_t port = 0;
};

/// "HOST:PORT,HOST:PORT" -> endpoints; throws config_error naming `name`.
std::vector<endpoint> parse_endpoints(const std::string& text, const std::string& name);

/// True when the cluster options name the three TLS files.
bool cluster_tls_enabled(const server_options& options);

} // namespace actorserve
