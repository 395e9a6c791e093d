#include "actors/router.hpp"

#include <map>

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include "actors/batcher.hpp"
#include "actors/file_digester.hpp"
#include "actors/version_table.hpp"
#include "config/model_repository.hpp"
#include "messages/error.hpp"
#include "telemetry/logging.hpp"

namespace actorserve {

namespace {

/// The reload in progress; a router runs one at a time. Its config (just
/// read from config.json) becomes the router's once every load succeeded.
struct reload_progress {
  caf::typed_response_promise<model_status> promise;
  size_t pending = 0;
  std::vector<std::string> errors;
  model_config config;
};

struct router_state {
  static inline const char* name = "router";
  router_settings settings;
  version_table versions;
  std::map<caf::actor_addr, batcher_actor> batchers; // every linked batcher still running
  std::map<caf::actor_addr, std::string> draining;   // retired batcher -> its version
  // batcher -> SHA-256 of the model.pt it loaded, for models that cache answers
  std::map<caf::actor_addr, std::string> identities;
  std::optional<reload_progress> reload;
  bool closing = false; // the whole model is unloading: exit once drained
};

using router_pointer = router_actor::stateful_pointer<router_state>;

model_status status_of(const router_state& st) {
  auto status = st.versions.status(st.settings.model);
  for (auto& version : status.versions)
    version.node = st.settings.node;
  return status;
}

batcher_settings make_batcher_settings(const router_settings& settings,
                                       const model_config& config,
                                       const std::string& version) {
  batcher_settings result;
  result.model = settings.model;
  result.version = version;
  result.batching = config.batching;
  result.instance.model_file = (settings.directory / version / "model.pt").string();
  std::error_code unknown_size; // an unreadable file fails its load later
  auto model_bytes = std::filesystem::file_size(result.instance.model_file, unknown_size);
  auto plan = plan_compute(settings.compute, config.instances, config.threads,
                           unknown_size ? 0 : model_bytes);
  result.instances = plan.instances;
  result.instance.intra_op_threads = plan.threads;
  result.instance.input_row_shape = config.input.shape;
  result.instance.warmup = config.warmup;
  result.instance.fault_injection = settings.fault_injection;
  result.stats = settings.stats;
  return result;
}

void log_lifecycle(router_pointer self, std::string_view event,
                   const std::string& version,
                   nlohmann::json fields = nlohmann::json::object()) {
  fields["model"] = self->state.settings.model;
  fields["version"] = version;
  log_event(event == "load_failed" || event == "version_failed" ? spdlog::level::err
                                                                : spdlog::level::info,
            event, std::move(fields));
}

/// Retires a batcher: it answers what it holds, then exits (no request lost).
void retire(router_pointer self, const batcher_actor& batcher,
            const std::string& version) {
  if (!batcher)
    return;
  self->state.draining.emplace(batcher.address(), version);
  self->send(batcher, atom::drain_v);
  log_lifecycle(self, "drain", version);
}

/// A reload's config.json is the model's from now on; its default version
/// and traffic apply when they changed and name available versions.
void adopt_config(router_pointer self, model_config config) {
  auto& st = self->state;
  bool traffic_changed = config.default_version != st.settings.config.default_version ||
                         config.traffic != st.settings.config.traffic;
  st.settings.config = std::move(config);
  st.settings.config_error.clear();
  if (!traffic_changed)
    return;
  const auto& wanted = st.settings.config;
  bool valid =
      wanted.default_version.empty() || st.versions.is_available(wanted.default_version);
  for (const auto& [version, weight] : wanted.traffic)
    valid = valid && st.versions.is_available(version);
  if (valid)
    st.versions.set_traffic(wanted.default_version, wanted.traffic);
  else
    log_lifecycle(self, "traffic_not_applied", wanted.default_version,
                  {{"reason", "config.json names a version that is not available"}});
}

void load_finished(router_pointer self, const std::string& version,
                   const std::string& error) {
  auto& reload = self->state.reload;
  if (!reload)
    return;
  if (!error.empty())
    reload->errors.push_back("version " + version + ": " + error);
  if (--reload->pending > 0)
    return;
  if (reload->errors.empty()) {
    adopt_config(self, std::move(reload->config));
    reload->promise.deliver(status_of(self->state));
  } else {
    std::string message;
    for (const auto& e : reload->errors)
      message += (message.empty() ? "" : "; ") + e;
    reload->promise.deliver(
        make_error(ec::internal, "load failed, nothing was swapped: " + message));
  }
  reload.reset();
}

/// True when the answers of versions loaded with `config` are cached.
bool caches_answers(const router_state& st, const model_config& config) {
  return st.settings.cache && config.response_cache.enable;
}

/// The cache key of a request on the chosen version, when its answer may be
/// cached: the model enables the cache, the door digested the input and the
/// batcher's model.pt digest is known.
std::optional<response_cache_key> cache_key_of(const router_state& st,
                                               const std::string& version,
                                               const batcher_actor& batcher,
                                               const predict_request& request) {
  if (!caches_answers(st, st.settings.config) || request.input_digest.empty())
    return std::nullopt;
  auto identity = st.identities.find(batcher.address());
  if (identity == st.identities.end())
    return std::nullopt;
  return response_cache_key{st.settings.model, version, identity->second,
                            request.input_digest};
}

/// A load that failed: the version is failed unless another chain serves
/// it, and the batcher stops.
void load_failed(router_pointer self, const std::string& version,
                 const batcher_actor& batcher, const std::string& reason) {
  if (auto& stats = self->state.settings.stats)
    stats->count_load(self->state.settings.model, version, false);
  auto* slot = self->state.versions.find(version);
  if (slot && slot->batcher.address() == batcher.address())
    self->state.versions.mark_failed(version, reason);
  self->send_exit(batcher, caf::exit_reason::user_shutdown);
  log_lifecycle(self, "load_failed", version, {{"reason", reason}});
  load_finished(self, version, reason);
}

/// Loads and warms up the batcher's instances; once ready, the version
/// table points at it (the swap) and the replaced chain drains.
void request_load(router_pointer self, const std::string& version,
                  const batcher_actor& batcher, const compute_plan& plan) {
  self->request(batcher, self->state.settings.load_timeout, atom::load_v)
      .then(
          [=](int64_t load_time_ms) {
            if (auto& stats = self->state.settings.stats)
              stats->count_load(self->state.settings.model, version, true);
            auto old = self->state.versions.replace(version, batcher, load_time_ms, plan);
            log_lifecycle(self, "available", version, {{"load_time_ms", load_time_ms}});
            if (old && old.address() != batcher.address()) {
              log_lifecycle(self, "swap", version);
              retire(self, old, version);
            }
            load_finished(self, version, {});
          },
          [=](caf::error& err) {
            load_failed(self, version, batcher, to_api_error(err).message);
          });
}

/// Spawns the version's chain beside whatever serves it now and loads it; if
/// it fails, the old chain keeps serving. A model that caches answers first
/// digests the model.pt the chain is about to load: its identity in cache
/// keys, so that a re-deployed folder never answers from the old model's
/// entries. (A file replaced between the digest and the load would be
/// served under the old digest until the next reload: deploy by renaming.)
void load_version(router_pointer self, const std::string& version,
                  const model_config& config) {
  auto& st = self->state;
  auto settings = make_batcher_settings(st.settings, config, version);
  auto model_file = settings.instance.model_file;
  compute_plan plan{settings.instances, settings.instance.intra_op_threads};
  auto batcher = spawn_linked_batcher(self, std::move(settings));
  st.batchers.emplace(batcher.address(), batcher);
  if (!st.versions.is_available(version))
    st.versions.add(version, batcher, plan); // nothing serves it: show it as loading
  log_lifecycle(self, "load", version,
                {{"instances", plan.instances}, {"threads", plan.threads}});
  if (!caches_answers(st, config)) {
    request_load(self, version, batcher, plan);
    return;
  }
  self->request(spawn_file_digester(self->system()), st.settings.load_timeout, model_file)
      .then(
          [=](std::string& identity) {
            self->state.identities.emplace(batcher.address(), std::move(identity));
            request_load(self, version, batcher, plan);
          },
          [=](caf::error& err) {
            load_failed(self, version, batcher,
                        "no digest of model.pt for the response cache: " +
                            to_api_error(err).message);
          });
}

/// Re-reads config.json (a bad one fails the reload, naming the key, and
/// nothing changes), then loads the version asked for, or ("") every
/// version that is new, failed or unloaded; every version on disk when the
/// config changed, so that its settings take effect.
caf::result<model_status> reload(router_pointer self, const std::string& version) {
  auto& st = self->state;
  if (st.reload)
    return make_error(ec::conflict, "a reload of model " + st.settings.model +
                                        " is in progress; retry when it ends");
  if (st.closing)
    return make_error(ec::model_not_found,
                      "model '" + st.settings.model + "' is being unloaded");
  auto folder = read_model_folder(st.settings.directory);
  if (!folder.error.empty())
    return make_error(ec::internal,
                      "model " + st.settings.model +
                          ": config.json not used, nothing was loaded: " + folder.error);
  bool config_changed =
      folder.config != st.settings.config || !st.settings.config_error.empty();
  const auto& on_disk = folder.versions;
  std::vector<std::string> targets;
  if (version.empty()) {
    for (const auto& candidate : on_disk)
      if (auto* slot = st.versions.find(candidate);
          config_changed || !slot || slot->status.state == version_state::failed ||
          slot->status.state == version_state::unloaded)
        targets.push_back(candidate);
  } else if (std::find(on_disk.begin(), on_disk.end(), version) != on_disk.end()) {
    targets.push_back(version);
  } else {
    return make_error(ec::version_not_found, "model " + st.settings.model +
                                                 " has no version '" + version +
                                                 "' in its folder");
  }
  if (targets.empty())
    return status_of(st);
  if (config_changed)
    log_lifecycle(self, "config_changed", version);
  st.reload = reload_progress{
      self->make_response_promise<model_status>(), targets.size(), {}, folder.config};
  auto promise = st.reload->promise;
  for (const auto& target : targets)
    load_version(self, target, folder.config);
  return promise;
}

caf::result<model_status> unload(router_pointer self, const std::string& version) {
  auto& st = self->state;
  auto* slot = st.versions.find(version);
  if (!slot)
    return make_error(ec::version_not_found, "version " + version + " does not exist");
  switch (slot->status.state) {
    case version_state::available:
      if (st.versions.available_count() == 1)
        return make_error(ec::conflict, "version " + version +
                                            " is the last serving version of model " +
                                            st.settings.model +
                                            " and cannot be unloaded");
      retire(self, st.versions.retire(version, version_state::draining), version);
      break;
    case version_state::loading:
      return make_error(ec::conflict,
                        "version " + version + " is loading; unload it later");
    case version_state::draining:
    case version_state::unloaded:
      break;
    case version_state::failed:
      st.versions.retire(version, version_state::unloaded);
      break;
  }
  return status_of(st);
}

/// Once a closing router's last batcher is gone, the router exits.
void quit_when_drained(router_pointer self) {
  if (self->state.closing && self->state.batchers.empty())
    self->quit();
}

/// Unloads the whole model: serving versions drain, loading ones stop; the
/// router exits (normally) once every batcher is gone.
caf::result<model_status> unload_all(router_pointer self) {
  auto& st = self->state;
  st.closing = true;
  for (const auto& version : st.versions.status(st.settings.model).versions) {
    if (version.state == version_state::available)
      retire(self, st.versions.retire(version.version, version_state::draining),
             version.version);
    else if (version.state == version_state::failed)
      st.versions.retire(version.version, version_state::unloaded);
  }
  // Loading versions stop here; their load requests fail the reload.
  for (const auto& [address, batcher] : st.batchers)
    if (st.draining.count(address) == 0)
      self->send_exit(batcher, caf::exit_reason::user_shutdown);
  log_lifecycle(self, "model_unload", "");
  // Delivered before a router with nothing to drain quits.
  auto promise = self->make_response_promise<model_status>();
  promise.deliver(status_of(st));
  quit_when_drained(self);
  return promise;
}

caf::result<model_status> set_traffic(router_pointer self, traffic_split& split) {
  auto& st = self->state;
  if (!split.default_version.empty() && !st.versions.is_available(split.default_version))
    return make_error(ec::conflict,
                      "default version " + split.default_version + " is not available");
  for (const auto& [version, weight] : split.weights)
    if (!st.versions.is_available(version))
      return make_error(ec::conflict,
                        "weights name version " + version + ", which is not available");
  st.versions.set_traffic(split.default_version, split.weights);
  log_event(spdlog::level::info, "traffic",
            {{"model", st.settings.model},
             {"default", split.default_version},
             {"weights", split.weights}});
  return status_of(st);
}

/// A batcher that exited: a drained one leaves its version unloaded; one that
/// failed while serving marks its version failed, and unpinned traffic moves
/// to the other available versions.
void on_batcher_exit(router_pointer self, const caf::exit_msg& msg) {
  auto& st = self->state;
  if (auto i = st.draining.find(msg.source); i != st.draining.end()) {
    if (auto* slot = st.versions.find(i->second);
        slot && slot->status.state == version_state::draining)
      st.versions.retire(i->second, version_state::unloaded);
    log_lifecycle(self, "drained", i->second);
    st.draining.erase(i);
    return;
  }
  if (auto version = st.versions.version_of(msg.source)) {
    auto reason = caf::to_string(msg.reason);
    st.versions.mark_failed(*version, "its model instances kept failing: " + reason);
    log_lifecycle(self, "version_failed", *version, {{"reason", reason}});
  }
}

} // namespace

router_actor spawn_router(caf::actor_system& system, router_settings settings) {
  auto behavior = [](router_pointer self,
                     router_settings settings) -> router_actor::behavior_type {
    auto& st = self->state;
    st.settings = std::move(settings);
    st.versions.set_traffic(st.settings.config.default_version,
                            st.settings.config.traffic);
    for (const auto& version : st.settings.versions) {
      if (st.settings.config_error.empty()) {
        load_version(self, version, st.settings.config);
      } else {
        st.versions.add(version, batcher_actor{});
        st.versions.mark_failed(version, st.settings.config_error);
      }
    }
    // Batchers are linked so that they end with the router; their exits are
    // handled here, anyone else's exit ends the router.
    self->set_exit_handler([=](caf::exit_msg& msg) {
      if (self->state.batchers.erase(msg.source) == 0) {
        self->quit(msg.reason);
        return;
      }
      self->state.identities.erase(msg.source);
      on_batcher_exit(self, msg);
      quit_when_drained(self);
    });
    return {
        [=](atom::predict, predict_request& request) -> caf::result<predict_reply> {
          auto& st = self->state;
          auto chosen = st.versions.choose(request.version);
          if (!chosen)
            return std::move(chosen.error());
          const auto& [version, batcher] = *chosen;
          if (auto key = cache_key_of(st, version, batcher, request))
            return self->delegate(st.settings.cache, atom::predict_v, batcher,
                                  std::move(*key), std::move(request));
          return self->delegate(batcher, atom::predict_v, std::move(request));
        },
        [=](atom::status) { return status_of(self->state); },
        [=](atom::reload, const std::string& version) { return reload(self, version); },
        [=](atom::unload, const std::string& version) { return unload(self, version); },
        [=](atom::unload) { return unload_all(self); },
        [=](atom::traffic, traffic_split& split) { return set_traffic(self, split); },
        [=](atom::cancel, uint64_t cancel_key) {
          // Rare: a broadcast beats remembering where each request went.
          for (const auto& [address, batcher] : self->state.batchers)
            self->send(batcher, atom::cancel_v, cancel_key);
          // A request that went through the cache reaches its batcher from
          // there: the cache passes the cancel on after it.
          if (self->state.settings.cache &&
              self->state.settings.config.response_cache.enable)
            self->send(self->state.settings.cache, atom::cancel_v, cancel_key);
        },
    };
  };
  return system.spawn(behavior, std::move(settings));
}

} // namespace actorserve
