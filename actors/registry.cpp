#include "actors/registry.hpp"

#include <algorithm>
#include <map>

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include "actors/registry_state.hpp"
#include "actors/replica_set.hpp"
#include "telemetry/logging.hpp"

namespace actorserve {

model_spec make_spec(const model_folder& folder) {
  return {folder.name, folder.config.input, folder.config.output, folder.labels,
          folder.config.response_cache.enable};
}

router_settings make_router_settings(const model_folder& folder,
                                     const registry_settings& settings) {
  router_settings result;
  result.model = folder.name;
  result.node = settings.node;
  result.directory = folder.directory;
  result.config = folder.config;
  result.versions = folder.versions;
  result.load_timeout = settings.load_timeout;
  result.config_error = folder.error;
  result.fault_injection = settings.fault_injection;
  result.compute = settings.compute;
  result.stats = settings.stats;
  result.cache = settings.cache;
  return result;
}

std::vector<host> hosts_of(const registry_state& st, const std::string& model) {
  std::vector<host> result;
  if (auto i = st.models.find(model); i != st.models.end())
    result.push_back({st.settings.node, i->second.router});
  for (const auto& [node, peer] : st.peers)
    for (const auto& hosted : peer.catalog.models)
      if (hosted.spec.name == model)
        result.push_back({node, hosted.router});
  return result;
}

void publish_directory(const registry_state& st) {
  predictor_directory::table entries;
  for (const auto& [name, entry] : st.models)
    entries.emplace(name, directory_entry{predictor_actor{entry.router}, entry.spec});
  for (const auto& [name, model] : st.shared)
    entries.insert_or_assign(
        name, directory_entry{predictor_actor{model.replicas}, model.spec});
  st.settings.directory->publish(std::move(entries));
}

std::chrono::milliseconds admin_timeout(const registry_state& st) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(st.settings.load_timeout);
}

caf::error no_host_error(const registry_state& st, const std::string& model) {
  if (st.loading.count(model) > 0)
    return make_error(ec::conflict, "model " + model + " is loading; retry when it ends");
  if (st.shared.count(model) > 0)
    return make_error(ec::unavailable,
                      "no node that hosts model " + model + " is reachable");
  return make_error(ec::model_not_found, "model '" + model + "' does not exist");
}

namespace {

/// Asks every local router for its status and calls `done` with all of them,
/// by name. A router that does not answer in time is listed with no versions.
template <class Done> void collect_local_status(registry_pointer self, Done done) {
  auto& models = self->state.models;
  if (models.empty()) {
    done(status_map{});
    return;
  }
  auto collected = std::make_shared<status_map>();
  auto expected = models.size();
  auto finish = [=](std::string name, model_status status) mutable {
    collected->emplace(std::move(name), std::move(status));
    if (collected->size() == expected)
      done(std::move(*collected));
  };
  for (const auto& [name, entry] : models) {
    self->request(entry.router, self->state.settings.status_timeout, atom::status_v)
        .then([=](model_status& status) mutable { finish(name, std::move(status)); },
              [=](caf::error&) mutable {
                finish(name, model_status{name, {}, {}, {}});
              });
  }
}

/// Every node's status of every model: the local ones given, the peers' from
/// their last catalogs, merged by name.
std::vector<model_status> merge_with_peers(const registry_state& st, status_map local) {
  std::map<std::string, std::vector<model_status>> parts;
  for (auto& [name, status] : local)
    parts[name].push_back(std::move(status));
  for (const auto& [node, peer] : st.peers)
    for (const auto& model : peer.catalog.models)
      parts[model.spec.name].push_back(model.status);
  for (const auto& [name, model] : st.shared)
    if (parts.count(name) == 0)
      parts[name].push_back(model_status{name, {}, {}, {}}); // no host left
  std::vector<model_status> merged;
  for (auto& [name, statuses] : parts)
    merged.push_back(merge_statuses(std::move(statuses)));
  return merged;
}

/// True when every version of a model is draining or unloaded: a peer's
/// copy that an unload closed, which no replica set should be made for.
bool is_closing(const model_status& status) {
  return !status.versions.empty() &&
         std::all_of(status.versions.begin(), status.versions.end(), [](const auto& v) {
           return v.state == version_state::draining ||
                  v.state == version_state::unloaded;
         });
}

std::vector<std::string> available_versions(const model_status& status) {
  std::vector<std::string> result;
  for (const auto& version : status.versions)
    if (version.state == version_state::available)
      result.push_back(version.version);
  return result;
}

/// Tells every replica set who hosts its model now, and spawns one for each
/// model that a peer hosts and that has none yet. A replica set stays once
/// made, so a model whose hosts are all gone answers `unavailable` (503),
/// not `model_not_found`.
void refresh_replicas(registry_pointer self) {
  auto& st = self->state;
  std::map<std::string, std::vector<replica>> replicas;
  std::map<std::string, model_spec> specs;
  bool replicated = false;
  for (const auto& [node, peer] : st.peers) {
    for (const auto& hosted : peer.catalog.models) {
      if (is_closing(hosted.status) && st.shared.count(hosted.spec.name) == 0)
        continue;
      replicas[hosted.spec.name].push_back(
          {node, hosted.router, available_versions(hosted.status), false});
      specs.emplace(hosted.spec.name, hosted.spec);
    }
  }
  for (auto& [name, list] : replicas) {
    if (auto i = st.models.find(name); i != st.models.end()) {
      auto status = st.local_status.find(name);
      list.push_back({st.settings.node, i->second.router,
                      status == st.local_status.end()
                          ? std::vector<std::string>{}
                          : available_versions(status->second),
                      true});
    }
    if (st.shared.count(name) == 0) {
      auto set =
          spawn_replica_set(self->home_system(), {name, st.settings.replica_timeout});
      self->link_to(set);
      auto spec = st.models.count(name) ? st.models.at(name).spec : specs.at(name);
      st.shared.emplace(name, shared_model{set, std::move(spec)});
      log_event(spdlog::level::info, "replicated", {{"model", name}});
      replicated = true;
    }
  }
  if (replicated)
    publish_directory(st);
  for (auto& [name, model] : st.shared)
    self->send(model.replicas, atom::replicas_v, std::move(replicas[name]));
}

/// Asks a peer for its catalog; the answer refreshes the replica sets. A
/// peer that does not answer keeps its last catalog until its down message
/// removes it.
void pull_catalog(registry_pointer self, const std::string& node) {
  auto& peer = self->state.peers.at(node);
  self->request(peer.registry, self->state.settings.status_timeout, atom::catalog_v)
      .then(
          [=](node_catalog& catalog) {
            auto i = self->state.peers.find(node);
            if (i == self->state.peers.end())
              return;
            i->second.catalog.models = std::move(catalog.models);
            refresh_replicas(self);
          },
          [](caf::error&) {});
}

void add_peer(registry_pointer self, registry_actor peer, const std::string& node) {
  auto& st = self->state;
  auto& entry = st.peers[node];
  if (entry.registry.address() == peer.address())
    return;
  entry.registry = peer;
  entry.catalog = node_catalog{node, {}};
  self->monitor(peer);
  log_event(spdlog::level::info, "node_up", {{"node", node}});
  pull_catalog(self, node);
}

void remove_peer(registry_pointer self, const caf::actor_addr& source,
                 const caf::error& reason) {
  auto& peers = self->state.peers;
  for (auto i = peers.begin(); i != peers.end(); ++i) {
    if (i->second.registry.address() == source) {
      log_event(spdlog::level::warn, "node_down",
                {{"node", i->first}, {"reason", caf::to_string(reason)}});
      peers.erase(i);
      refresh_replicas(self);
      return;
    }
  }
}

/// Refreshes the local status and pulls every peer's catalog.
void sync(registry_pointer self) {
  collect_local_status(self, [=](status_map local) {
    self->state.local_status = std::move(local);
    refresh_replicas(self);
  });
  for (const auto& [node, peer] : self->state.peers)
    pull_catalog(self, node);
}

registry_impl::behavior_type registry(registry_pointer self, registry_settings settings,
                                      std::vector<model_folder> folders) {
  auto& st = self->state;
  st.settings = std::move(settings);
  for (const auto& folder : folders) {
    if (!folder.error.empty())
      spdlog::error("model {}: {}", folder.name, folder.error);
    auto router =
        spawn_router(self->home_system(), make_router_settings(folder, st.settings));
    self->link_to(router);
    st.models.emplace(folder.name, model_entry{router, make_spec(folder)});
  }
  publish_directory(st);
  // Routers and replica sets are linked so that they end with the registry.
  // Their own exits are handled; anyone else's exit ends the registry.
  self->set_exit_handler([=](caf::exit_msg& msg) {
    if (on_router_exit(self, msg))
      return;
    for (const auto& [name, entry] : self->state.shared) {
      if (entry.replicas.address() == msg.source) {
        spdlog::error("model {}: replica set exited: {}", name,
                      caf::to_string(msg.reason));
        return;
      }
    }
    self->quit(msg.reason);
  });
  self->set_down_handler(
      [=](caf::down_msg& msg) { remove_peer(self, msg.source, msg.reason); });
  self->delayed_send(self, st.settings.sync_interval, atom::sync_v);
  start_poll(self);
  return {
      [=](atom::list) {
        auto promise = self->make_response_promise<std::vector<model_status>>();
        collect_local_status(self, [=](status_map local) mutable {
          promise.deliver(merge_with_peers(self->state, std::move(local)));
        });
        return promise;
      },
      [=](atom::status, const std::string& model) -> caf::result<model_status> {
        auto& st = self->state;
        if (st.peers.empty() || st.shared.count(model) == 0)
          return fan_out(self, model, st.settings.status_timeout, atom::status_v);
        // Shared: the local router's live status, the peers' last ones.
        auto promise = self->make_response_promise<model_status>();
        collect_local_status(self, [=](status_map local) mutable {
          for (auto& status : merge_with_peers(self->state, std::move(local)))
            if (status.name == model)
              promise.deliver(std::move(status));
        });
        return promise;
      },
      [=](atom::reload, const std::string& model, const std::string& version) {
        return reload_model(self, model, version);
      },
      [=](atom::unload, const std::string& model, const std::string& version) {
        return fan_out(self, model, self->state.settings.status_timeout, atom::unload_v,
                       version);
      },
      [=](atom::load, const std::string& model) { return load_model(self, model); },
      [=](atom::unload, const std::string& model) { return unload_model(self, model); },
      [=](atom::traffic, const std::string& model, const traffic_split& split) {
        return fan_out(self, model, self->state.settings.status_timeout, atom::traffic_v,
                       split);
      },
      [=](atom::join, caf::strong_actor_ptr& peer, const std::string& node) {
        if (node != self->state.settings.node && peer)
          add_peer(self, caf::actor_cast<registry_actor>(std::move(peer)), node);
        return self->state.settings.node;
      },
      [=](atom::catalog) {
        auto promise = self->make_response_promise<node_catalog>();
        collect_local_status(self, [=](status_map local) mutable {
          node_catalog catalog{self->state.settings.node, {}};
          for (auto& [name, status] : local) {
            auto entry = self->state.models.find(name);
            if (entry != self->state.models.end()) // not unloaded meanwhile
              catalog.models.push_back(
                  {entry->second.spec, entry->second.router, std::move(status)});
          }
          promise.deliver(std::move(catalog));
        });
        return promise;
      },
      [=](atom::sync) {
        sync(self);
        self->delayed_send(self, self->state.settings.sync_interval, atom::sync_v);
      },
      [=](atom::poll) {
        poll_repository(self);
        self->delayed_send(self, self->state.settings.poll_interval, atom::poll_v);
      },
  };
}

} // namespace

registry_actor spawn_registry(caf::actor_system& system,
                              const registry_settings& settings) {
  auto folders = scan_repository(settings.repository);
  return system.spawn(registry, settings, std::move(folders));
}

} // namespace actorserve
