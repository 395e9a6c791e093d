// actorserve: a model server where every moving part is an actor.
//
// main wires the parts together: options, logging, the actor system, the
// registry (which loads the repository), the HTTP server; then it waits for
// SIGTERM/SIGINT and stops in order: readiness 503, queued and running jobs
// finished (new ones refused; with the Redis job store, queued jobs stay in
// Redis and only this node's running ones finish), listener closed, in-flight
// requests drained (up to drain_timeout_s), actors stopped, exit 0. A second
// signal exits at once.

#include <csignal>
#include <cstdio>
#include <iostream>
#include <thread>

#include <sys/resource.h>

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include "actors/cluster.hpp"
#include "actors/job_store.hpp"
#include "actors/model_instance.hpp"
#include "actors/redis_job_store.hpp"
#include "actors/registry.hpp"
#include "actors/response_cache.hpp"
#include "config/cpu_budget.hpp"
#include "config/redis_url.hpp"
#include "config/server_options.hpp"
#include "grpc/grpc_door.hpp"
#include "http/auth.hpp"
#include "http/bridge.hpp"
#include "http/server.hpp"
#include "messages/type_ids.hpp"
#include "telemetry/logging.hpp"

/// jemalloc, linked into this binary (CMakeLists.txt), reads its options
/// from this symbol at start. By default it gives allocations over 8 MiB
/// (resnet18's activations at batch 4) an arena that returns them to the
/// kernel at once, so every forward faulted its pages in again: 2.5x slower
/// than glibc. With the threshold off they are reused like any other.
extern "C" {
const char* malloc_conf = "oversize_threshold:0";
}

namespace {

using namespace actorserve;

/// Blocks the shutdown signals in this thread and every thread it starts, so
/// that only wait_for_signal() receives them.
sigset_t block_shutdown_signals() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  return signals;
}

/// Waits for SIGTERM or SIGINT. Meanwhile SIGHUP re-reads the key file, and
/// the key file is re-read whenever it changes (checked every 2 s).
int wait_for_shutdown(const sigset_t& signals, key_store& keys) {
  for (;;) {
    struct timespec poll_interval {
      2, 0
    };
    auto received = sigtimedwait(&signals, nullptr, &poll_interval);
    std::optional<std::string> failure;
    if (received == SIGHUP) {
      failure = keys.reload();
      log_event(spdlog::level::info, "keys_reloaded", {{"signal", "SIGHUP"}});
    } else if (received < 0) {
      failure = keys.reload_if_changed();
    } else {
      return received;
    }
    if (failure)
      log_event(spdlog::level::err, "key_file_error", {{"reason", *failure}});
  }
}

/// Waits until no version is still loading (each has become available or
/// failed), so that the ready line means what it says.
void wait_for_initial_loads(caf::actor_system& system, const registry_actor& registry) {
  for (;;) {
    auto statuses = ask<std::vector<model_status>>(system, registry,
                                                   std::chrono::seconds{5}, atom::list_v);
    bool loading = false;
    if (statuses)
      for (const auto& model : std::get<0>(*statuses))
        for (const auto& version : model.versions)
          loading = loading || version.state == version_state::loading;
    if (statuses && !loading)
      return;
    std::this_thread::sleep_for(std::chrono::milliseconds{50});
  }
}

/// Publishes the registry on the cluster port (when set) and starts joining
/// the peers; returns the connectors, or nothing when the port is taken.
std::optional<std::vector<caf::actor>> start_cluster(caf::actor_system& system,
                                                     const registry_actor& registry,
                                                     const server_options& options,
                                                     const std::string& node) {
  bool tls = cluster_tls_enabled(options);
  if (options.cluster_port != 0) {
    endpoint where{options.cluster_host, static_cast<uint16_t>(options.cluster_port)};
    auto port = publish_registry(system, registry, where, tls);
    if (!port) {
      spdlog::critical("cannot publish the cluster port {}:{}: {}", where.host,
                       where.port, system.render(port.error()));
      return std::nullopt;
    }
    log_event(spdlog::level::info, "cluster",
              {{"host", where.host}, {"port", *port}, {"node", node}, {"tls", tls}});
  }
  cluster_settings settings;
  settings.node = node;
  settings.tls = tls;
  settings.retry_max = std::chrono::milliseconds{options.cluster_retry_max_ms};
  return spawn_connectors(system, registry, parse_endpoints(options.join, "join"),
                          settings);
}

/// Idle keep-alive connections cost a descriptor each, not a thread: take
/// every descriptor the hard limit allows (the edge stays below it).
void raise_open_file_limit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
  }
}

/// The job store: this process's memory, or Redis shared by every node.
job_store_actor start_job_store(caf::actor_system& system, const server_options& options,
                                std::shared_ptr<const predictor_directory> directory,
                                std::shared_ptr<metrics> stats) {
  if (options.job_store != "redis") {
    job_store_settings settings;
    settings.ttl = std::chrono::seconds{options.job_ttl_s};
    settings.max_jobs = options.max_jobs;
    settings.max_bytes = options.max_job_bytes;
    settings.max_running = options.max_running_jobs;
    settings.stats = std::move(stats);
    return spawn_job_store(system, std::move(settings));
  }
  redis_job_store_settings settings;
  settings.redis.endpoint = parse_redis_url(options.redis_url, "redis_url (--redis-url)");
  settings.redis.timeout = std::chrono::milliseconds{options.redis_timeout_ms};
  settings.limits = {options.max_jobs, options.max_job_bytes,
                     std::chrono::seconds{options.job_ttl_s},
                     std::chrono::seconds{options.job_lease_s}};
  settings.max_running = options.max_running_jobs;
  settings.directory = std::move(directory);
  settings.stats = std::move(stats);
  log_event(spdlog::level::info, "job_store",
            {{"store", "redis"}, {"redis", loggable_url(settings.redis.endpoint)}});
  return spawn_redis_job_store(system, std::move(settings));
}

/// The response cache's settings from the options (--cache, --cache-bytes,
/// --cache-ttl-s, --redis-url, --redis-timeout-ms).
response_cache_settings cache_settings(const server_options& options, metrics& stats) {
  response_cache_settings settings;
  settings.store = options.cache;
  settings.max_bytes = options.cache_bytes;
  settings.ttl = std::chrono::seconds{options.cache_ttl_s};
  if (options.cache == "redis") {
    settings.redis.endpoint =
        parse_redis_url(options.redis_url, "redis_url (--redis-url)");
    settings.redis.timeout = std::chrono::milliseconds{options.redis_timeout_ms};
  }
  settings.max_wait = std::chrono::milliseconds{options.max_timeout_ms};
  settings.stats = std::make_shared<cache_metrics>(*stats.registry());
  return settings;
}

int run(const server_options& options) {
  raise_open_file_limit();
  // Before any actor runs: an unreadable key file ends start-up here.
  auto keys = std::make_shared<key_store>(options.api_keys, options.admin_keys,
                                          options.api_key_file);
  auto signals = block_shutdown_signals();
  auto cpus = find_cpu_budget();
  log_event(spdlog::level::info, "cpu_budget",
            {{"cpus", cpus.cpus},
             {"affinity_cpus", cpus.affinity_cpus},
             {"quota_cpus", cpus.quota_cpus ? nlohmann::json(*cpus.quota_cpus) : nullptr},
             {"quota_file", cpus.quota_file}});
  configure_torch_threads(cpus.cpus);

  bool clustered = options.cluster_port != 0 || !options.join.empty();
  caf::actor_system_config cfg;
  register_message_types(cfg);
  cfg.set("scheduler.max-threads", static_cast<size_t>(options.actor_threads));
  cfg.set("scheduler.policy", options.actor_scheduler == "sharing"
                                  ? caf::atom("sharing")
                                  : caf::atom("stealing"));
  if (clustered)
    configure_cluster(cfg, options);
  caf::actor_system system{cfg};

  registry_settings settings;
  settings.repository = options.model_repository;
  settings.load_timeout = std::chrono::seconds{options.load_timeout_s};
  settings.poll_interval = std::chrono::seconds{options.repository_poll_s};
  settings.fault_injection = options.enable_fault_injection;
  settings.compute = {cpus.cpus, options.instances, options.torch_threads};
  auto stats = std::make_shared<metrics>();
  settings.stats = stats;
  if (clustered)
    settings.node = node_name(options);
  settings.sync_interval = std::chrono::milliseconds{options.cluster_sync_ms};
  settings.replica_timeout = std::chrono::milliseconds{options.max_timeout_ms};
  auto directory = std::make_shared<predictor_directory>();
  settings.directory = directory;
  auto cache = spawn_response_cache(system, cache_settings(options, *stats));
  settings.cache = cache;
  auto registry = spawn_registry(system, settings);
  std::vector<caf::actor> connectors;
  if (clustered) {
    auto joined = start_cluster(system, registry, options, settings.node);
    if (!joined) {
      caf::anon_send_exit(registry, caf::exit_reason::user_shutdown);
      return 1;
    }
    connectors = std::move(*joined);
  }
  auto jobs = start_job_store(system, options, directory, stats);

  log_event(spdlog::level::info, "auth",
            {{"enabled", !keys->auth_disabled()}, {"keys", keys->key_count()}});
  http_server server{system, registry, directory, jobs, keys, stats, options};
  auto port = server.bind();
  if (port < 0) {
    spdlog::critical("cannot listen on {}:{}", options.host, options.port);
    caf::anon_send_exit(registry, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(jobs, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(cache, caf::exit_reason::user_shutdown);
    return 1;
  }
  std::thread http_thread{[&] { server.serve(); }};
  log_event(
      spdlog::level::info, "listening",
      {{"host", options.host}, {"port", port}, {"repository", options.model_repository}});
  std::unique_ptr<grpc_door> grpc;
  if (options.grpc_port != 0) {
    grpc = std::make_unique<grpc_door>(server.context(), *stats);
    auto grpc_port = grpc->start();
    if (grpc_port < 0) {
      spdlog::critical("cannot listen for gRPC on {}:{}", options.host,
                       options.grpc_port);
      server.stop();
      http_thread.join();
      caf::anon_send_exit(registry, caf::exit_reason::user_shutdown);
      caf::anon_send_exit(jobs, caf::exit_reason::user_shutdown);
      caf::anon_send_exit(cache, caf::exit_reason::user_shutdown);
      return 1;
    }
    log_event(spdlog::level::info, "listening_grpc",
              {{"host", options.host}, {"port", grpc_port}});
  }

  wait_for_initial_loads(system, registry);
  std::printf("actorserve ready on http://%s:%d\n", options.host.c_str(), port);
  std::fflush(stdout);

  auto signal = wait_for_shutdown(signals, *keys);
  log_event(spdlog::level::info, "shutdown", {{"signal", strsignal(signal)}});
  server.begin_drain();
  // A second signal, or the drain timeout, ends the process at once.
  std::thread watchdog{[signals, drain = options.drain_timeout_s] {
    struct timespec timeout {
      static_cast<time_t>(drain), 0
    };
    auto second = sigtimedwait(&signals, nullptr, &timeout);
    log_event(spdlog::level::warn, "forced_exit",
              {{"reason", second > 0 ? "second signal" : "drain timeout"}});
    std::_Exit(second > 0 ? 1 : 0);
  }};
  watchdog.detach();
  // Jobs finish while HTTP still answers, so their clients can fetch the
  // results; then the listener closes and in-flight requests finish.
  auto unfinished = ask<int64_t>(
      system, jobs, std::chrono::seconds{options.drain_timeout_s}, atom::drain_v);
  if (unfinished)
    log_event(spdlog::level::info, "jobs_drained",
              {{"finished_during_drain", std::get<0>(*unfinished)}});
  else
    log_event(spdlog::level::err, "jobs_drain_failed",
              {{"reason", system.render(unfinished.error())}});
  // Both doors drain at once: calls and requests in flight finish, new ones
  // are refused.
  std::thread grpc_stopper{[&] {
    if (grpc)
      grpc->stop(std::chrono::system_clock::now() +
                 std::chrono::seconds{options.drain_timeout_s});
  }};
  server.stop();
  http_thread.join();
  grpc_stopper.join();
  for (const auto& connector : connectors)
    caf::anon_send_exit(connector, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(jobs, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(registry, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(cache, caf::exit_reason::user_shutdown);
  log_event(spdlog::level::info, "stopped", {});
  return 0;
}

} // namespace

int main(int argc, char** argv) {
  try {
    auto command = actorserve::parse_command_line(argc, argv);
    if (command.help) {
      std::cout << actorserve::help_text();
      return 0;
    }
    actorserve::setup_logging(command.options.log_format, command.options.log_level);
    return run(command.options);
  } catch (const actorserve::config_error& e) {
    std::cerr << "actorserve: " << e.what() << "\n";
    return 2;
  } catch (const std::runtime_error& e) { // an unreadable key file
    std::cerr << "actorserve: " << e.what() << "\n";
    return 2;
  }
}
