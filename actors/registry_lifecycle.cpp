// The registry's lifecycle of whole models (see actors/registry_state.hpp):
// load and unload by admins (fanned out to every node hosting the model) and
// the repository poll (this node's repository and models only). Runs inside
// the registry's handlers; file system reads here are a model folder's
// config.json and stat calls, short enough for the registry's thread.

#include <algorithm>
#include <map>

#include <spdlog/spdlog.h>

#include "actors/registry_state.hpp"
#include "telemetry/logging.hpp"

namespace actorserve {

namespace {

void log_model(spdlog::level::level_enum level, std::string_view event,
               const std::string& model,
               nlohmann::json fields = nlohmann::json::object()) {
  fields["model"] = model;
  log_event(level, event, std::move(fields));
}

/// Logs how an action the poll started ended.
status_callback log_outcome(std::string action, std::string model, std::string version) {
  return [=](caf::expected<model_status> result) {
    nlohmann::json fields{{"action", action}};
    if (!version.empty())
      fields["version"] = version;
    if (result) {
      log_model(spdlog::level::info, "poll", model, std::move(fields));
      return;
    }
    fields["reason"] = to_api_error(result.error()).message;
    log_model(spdlog::level::err, "poll_failed", model, std::move(fields));
  };
}

caf::result<model_status> reply_later(registry_pointer self,
                                      std::function<void(status_callback)> start) {
  auto promise = self->make_response_promise<model_status>();
  start([promise](caf::expected<model_status> result) mutable {
    if (result)
      promise.deliver(std::move(*result));
    else
      promise.deliver(std::move(result.error()));
  });
  return promise;
}

/// Re-reads the spec of a local model after a reload that succeeded: its
/// config.json may have changed what pre- and post-processing need.
void refresh_spec(registry_pointer self, const std::string& model) {
  auto& st = self->state;
  auto entry = st.models.find(model);
  if (entry == st.models.end())
    return;
  auto folder = read_model_folder(st.settings.repository / model);
  if (!folder.error.empty())
    return; // the router read it a moment ago; it changed again since
  entry->second.spec = make_spec(folder);
  if (auto shared = st.shared.find(model); shared != st.shared.end())
    shared->second.spec = entry->second.spec;
  publish_directory(st);
}

/// A reload on `hosts`, then the local spec refreshed.
void reload_on(registry_pointer self, const std::vector<host>& hosts,
               const std::string& model, const std::string& version,
               status_callback done) {
  ask_hosts(
      self, hosts, admin_timeout(self->state),
      [=](caf::expected<model_status> result) {
        if (result)
          refresh_spec(self, model);
        done(std::move(result));
      },
      atom::reload_v, version);
}

/// A reload of this node's copy of `model` only.
void reload_local(registry_pointer self, const std::string& model,
                  const std::string& version, status_callback done) {
  auto entry = self->state.models.find(model);
  if (entry == self->state.models.end()) {
    done(make_error(ec::model_not_found, "model '" + model + "' is not loaded"));
    return;
  }
  reload_on(self, {{self->state.settings.node, entry->second.router}}, model, version,
            std::move(done));
}

/// A model that loaded (or partly did) joins the table and the directory.
void publish_loaded(registry_pointer self, const model_folder& folder,
                    const router_actor& router) {
  auto& st = self->state;
  st.loading.erase(folder.name);
  st.models.emplace(folder.name, model_entry{router, make_spec(folder)});
  publish_directory(st);
  log_model(spdlog::level::info, "model_loaded", folder.name);
}

/// Spawns the router of a folder of this node's repository and loads every
/// version; the model is published once its loads ended with a version
/// serving. A load where none serves leaves nothing behind.
void load_local(registry_pointer self, const model_folder& folder, status_callback done) {
  auto& st = self->state;
  if (!folder.error.empty()) {
    log_model(spdlog::level::err, "load_failed", folder.name, {{"reason", folder.error}});
    done(make_error(ec::internal, "model " + folder.name + ": " + folder.error));
    return;
  }
  auto settings = make_router_settings(folder, st.settings);
  settings.versions.clear(); // the reload below loads them and replies
  auto router = spawn_router(self->home_system(), std::move(settings));
  self->link_to(router);
  st.loading.emplace(folder.name, router);
  log_model(spdlog::level::info, "model_load", folder.name);
  auto discard = [=] {
    self->state.loading.erase(folder.name);
    self->state.retiring.insert(router.address());
    self->send_exit(router, caf::exit_reason::user_shutdown);
  };
  self->request(router, admin_timeout(st), atom::reload_v, std::string{})
      .then(
          [=](model_status& status) {
            publish_loaded(self, folder, router);
            done(std::move(status));
          },
          [=](caf::error& err) {
            auto reason = to_api_error(err).message;
            log_model(spdlog::level::err, "load_failed", folder.name,
                      {{"reason", reason}});
            // Some versions may serve although others failed: keep those.
            self->request(router, self->state.settings.status_timeout, atom::status_v)
                .then(
                    [=](model_status& status) {
                      if (is_serving(status))
                        publish_loaded(self, folder, router);
                      else
                        discard();
                      done(err);
                    },
                    [=](caf::error&) {
                      discard();
                      done(err);
                    });
          });
}

void load(registry_pointer self, const std::string& model, status_callback done) {
  auto& st = self->state;
  if (st.models.count(model) > 0) {
    reload_on(self, hosts_of(st, model), model, {}, std::move(done));
    return;
  }
  if (st.loading.count(model) > 0) {
    done(no_host_error(st, model));
    return;
  }
  if (auto folder = find_model_folder(st.settings.repository, model)) {
    load_local(self, *folder, std::move(done));
    return;
  }
  auto hosts = hosts_of(st, model); // hosted by peers only
  if (hosts.empty()) {
    done(make_error(ec::model_not_found,
                    "there is no model folder '" + model + "' in the repository"));
    return;
  }
  reload_on(self, hosts, model, {}, std::move(done));
}

/// Removes `model` from this node's table, directory and view of its peers:
/// it answers 404 from now on. Its router, if any, drains and exits.
void forget_model(registry_pointer self, const std::string& model) {
  auto& st = self->state;
  if (auto i = st.models.find(model); i != st.models.end()) {
    st.retiring.insert(i->second.router.address());
    st.models.erase(i);
  }
  // The replica set is left alone (linked, idle): requests it holds finish
  // on the draining routers.
  if (auto i = st.shared.find(model); i != st.shared.end()) {
    st.retiring.insert(i->second.replicas.address());
    st.shared.erase(i);
  }
  for (auto& [node, peer] : st.peers) {
    auto& models = peer.catalog.models;
    models.erase(std::remove_if(models.begin(), models.end(),
                                [&](const auto& m) { return m.spec.name == model; }),
                 models.end());
  }
  st.local_status.erase(model);
  publish_directory(st);
}

void unload(registry_pointer self, const std::string& model, status_callback done) {
  auto& st = self->state;
  auto hosts = hosts_of(st, model);
  if (hosts.empty()) {
    auto error = no_host_error(st, model);
    forget_model(self, model); // a replica set whose hosts are gone
    done(std::move(error));
    return;
  }
  forget_model(self, model);
  log_model(spdlog::level::info, "model_unload", model);
  ask_hosts(self, hosts, st.settings.status_timeout, std::move(done), atom::unload_v);
}

/// Unloads this node's copy of `model` only.
void unload_local(registry_pointer self, const std::string& model, status_callback done) {
  auto entry = self->state.models.find(model);
  if (entry == self->state.models.end())
    return;
  std::vector<host> hosts{{self->state.settings.node, entry->second.router}};
  forget_model(self, model);
  ask_hosts(self, hosts, self->state.settings.status_timeout, std::move(done),
            atom::unload_v);
}

/// Loads the versions of a local model one after the other: a router runs
/// one reload at a time.
void load_versions_in_turn(registry_pointer self, const std::string& model,
                           std::vector<std::string> versions) {
  if (versions.empty())
    return;
  auto version = versions.front();
  versions.erase(versions.begin());
  reload_local(self, model, version,
               [=, rest = std::move(versions)](caf::expected<model_status> result) {
                 log_outcome("load_version", model, version)(std::move(result));
                 load_versions_in_turn(self, model, rest);
               });
}

} // namespace

caf::result<model_status> reload_model(registry_pointer self, const std::string& model,
                                       const std::string& version) {
  auto hosts = hosts_of(self->state, model);
  if (hosts.empty())
    return no_host_error(self->state, model);
  return reply_later(self, [=](status_callback done) {
    reload_on(self, hosts, model, version, std::move(done));
  });
}

caf::result<model_status> load_model(registry_pointer self, const std::string& model) {
  return reply_later(self, [=](status_callback done) { load(self, model, done); });
}

caf::result<model_status> unload_model(registry_pointer self, const std::string& model) {
  return reply_later(self, [=](status_callback done) { unload(self, model, done); });
}

bool on_router_exit(registry_pointer self, const caf::exit_msg& msg) {
  auto& st = self->state;
  if (st.retiring.erase(msg.source) > 0)
    return true;
  for (auto i = st.loading.begin(); i != st.loading.end(); ++i) {
    if (i->second.address() == msg.source) {
      log_model(spdlog::level::err, "router_exited", i->first,
                {{"reason", caf::to_string(msg.reason)}});
      st.loading.erase(i); // its pending load request fails
      return true;
    }
  }
  for (const auto& [name, entry] : st.models) {
    if (entry.router.address() != msg.source)
      continue;
    if (msg.reason == caf::exit_reason::normal) {
      // Closed by an unload that a peer sent to it directly.
      auto model = name;
      forget_model(self, model);
      st.retiring.erase(msg.source);
      log_model(spdlog::level::info, "model_unloaded", model);
    } else {
      spdlog::error("model {}: router exited: {}", name, caf::to_string(msg.reason));
    }
    return true;
  }
  return false;
}

void start_poll(registry_pointer self) {
  auto& st = self->state;
  if (st.settings.poll_interval.count() <= 0)
    return;
  st.watch.emplace(st.settings.repository);
  st.watch->prime();
  self->delayed_send(self, st.settings.poll_interval, atom::poll_v);
}

void poll_repository(registry_pointer self) {
  auto& st = self->state;
  if (!st.watch)
    return;
  auto actions = st.watch->scan();
  for (const auto& model : actions.gone_models)
    unload_local(self, model, log_outcome("unload_model", model, {}));
  for (const auto& [model, version] : actions.gone_versions) {
    if (auto entry = st.models.find(model); entry != st.models.end())
      self->request(entry->second.router, st.settings.status_timeout, atom::unload_v,
                    version)
          .then(
              [=](model_status& status) {
                log_outcome("unload_version", model, version)(std::move(status));
              },
              [=](caf::error& err) {
                log_outcome("unload_version", model, version)(std::move(err));
              });
  }
  // A model that is not loaded (it failed to, or an admin unloaded it) is
  // loaded whole when its files change.
  auto load_if_absent = [&](const std::string& model) {
    if (st.models.count(model) > 0)
      return false;
    if (st.loading.count(model) == 0)
      if (auto folder = find_model_folder(st.settings.repository, model))
        load_local(self, *folder, log_outcome("load_model", model, {}));
    return true;
  };
  for (const auto& model : actions.new_models)
    load_if_absent(model);
  for (const auto& model : actions.changed_configs)
    if (!load_if_absent(model))
      reload_local(self, model, {}, log_outcome("reload_config", model, {}));
  std::map<std::string, std::vector<std::string>> versions;
  for (const auto& [model, version] : actions.new_versions)
    versions[model].push_back(version);
  for (auto& [model, list] : versions)
    if (!load_if_absent(model))
      load_versions_in_turn(self, model, std::move(list));
}

} // namespace actorserve
