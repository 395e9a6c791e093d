#include "actors/registry.hpp"

#include <map>

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include "actors/replica_set.hpp"
#include "actors/router.hpp"
#include "config/model_repository.hpp"
#include "messages/error.hpp"
#include "telemetry/logging.hpp"

namespace actorserve {

namespace {

using registry_impl = registry_actor::extend<
    // Timer: pull every peer's catalog and refresh the local view.
    caf::reacts_to<atom::sync>>;

struct model_entry {
  router_actor router;
  model_spec spec;
};

struct peer_entry {
  registry_actor registry;
  node_catalog catalog;
};

struct shared_model {
  replica_set_actor replicas;
  model_spec spec;
};

using status_map = std::map<std::string, model_status>;

struct registry_state {
  static inline const char* name = "registry";
  registry_settings settings;
  std::map<std::string, model_entry> models;  // hosted here
  status_map local_status;                    // of the models hosted here, last sync
  std::map<std::string, peer_entry> peers;    // node -> peer
  std::map<std::string, shared_model> shared; // models other nodes host too
};

using registry_pointer = registry_impl::stateful_pointer<registry_state>;

/// A node hosting a model, for admin fan-out.
struct host {
  std::string node;
  router_actor router;
};

model_spec make_spec(const model_folder& folder) {
  return {folder.name, folder.config.input, folder.config.output, folder.labels};
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
  result.stats = settings.stats;
  return result;
}

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

std::vector<std::string> available_versions(const model_status& status) {
  std::vector<std::string> result;
  for (const auto& version : status.versions)
    if (version.state == version_state::available)
      result.push_back(version.version);
  return result;
}

/// Publishes who answers each model now: its replica set when peers host it
/// too, else its router.
void publish_directory(const registry_state& st) {
  predictor_directory::table entries;
  for (const auto& [name, entry] : st.models)
    entries.emplace(name, directory_entry{predictor_actor{entry.router}, entry.spec});
  for (const auto& [name, model] : st.shared)
    entries.insert_or_assign(
        name, directory_entry{predictor_actor{model.replicas}, model.spec});
  st.settings.directory->publish(std::move(entries));
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

/// Sends an admin message to every node hosting `model` and replies with
/// their merged status, or with the first error (naming its node) if any
/// host failed.
template <class... Ts>
caf::result<model_status> fan_out(registry_pointer self, const std::string& model,
                                  std::chrono::milliseconds timeout, Ts... xs) {
  auto& st = self->state;
  auto hosts = hosts_of(st, model);
  if (hosts.empty()) {
    if (st.shared.count(model) > 0)
      return make_error(ec::unavailable,
                        "no node that hosts model " + model + " is reachable");
    return make_error(ec::model_not_found, "model '" + model + "' does not exist");
  }
  if (hosts.size() == 1 && hosts.front().node == st.settings.node)
    return self->delegate(hosts.front().router, xs...);
  struct progress {
    std::vector<model_status> statuses;
    caf::error failure;
    size_t pending;
  };
  auto promise = self->make_response_promise<model_status>();
  auto state = std::make_shared<progress>(progress{{}, {}, hosts.size()});
  auto settle = [=]() mutable {
    if (--state->pending > 0)
      return;
    if (state->failure)
      promise.deliver(std::move(state->failure));
    else
      promise.deliver(merge_statuses(std::move(state->statuses)));
  };
  for (const auto& target : hosts) {
    self->request(target.router, timeout, xs...)
        .then(
            [=](model_status& status) mutable {
              state->statuses.push_back(std::move(status));
              settle();
            },
            [=, node = target.node](caf::error& err) mutable {
              if (!state->failure) {
                auto failure = to_api_error(err);
                state->failure =
                    make_error(failure.code, "node " + node + ": " + failure.message);
              }
              settle();
            });
  }
  return promise;
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
  // Their own exits are logged; anyone else's exit ends the registry.
  self->set_exit_handler([=](caf::exit_msg& msg) {
    for (const auto& [name, entry] : self->state.models) {
      if (entry.router.address() == msg.source) {
        spdlog::error("model {}: router exited: {}", name, caf::to_string(msg.reason));
        return;
      }
    }
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
  auto admin_timeout =
      std::chrono::duration_cast<std::chrono::milliseconds>(st.settings.load_timeout);
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
        return fan_out(self, model, admin_timeout, atom::reload_v, version);
      },
      [=](atom::unload, const std::string& model, const std::string& version) {
        return fan_out(self, model, self->state.settings.status_timeout, atom::unload_v,
                       version);
      },
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
            const auto& entry = self->state.models.at(name);
            catalog.models.push_back({entry.spec, entry.router, std::move(status)});
          }
          promise.deliver(std::move(catalog));
        });
        return promise;
      },
      [=](atom::sync) {
        sync(self);
        self->delayed_send(self, self->state.settings.sync_interval, atom::sync_v);
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
