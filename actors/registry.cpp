#include "actors/registry.hpp"

#include <map>

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include "actors/router.hpp"
#include "config/model_repository.hpp"
#include "messages/error.hpp"

namespace actorserve {

namespace {

struct model_entry {
  router_actor router;
  model_spec spec;
};

struct registry_state {
  static inline const char* name = "registry";
  registry_settings settings;
  std::map<std::string, model_entry> models;
};

using registry_pointer = registry_actor::stateful_pointer<registry_state>;

model_spec make_spec(const model_folder& folder) {
  return {folder.name, folder.config.input, folder.config.output, folder.labels};
}

router_settings make_router_settings(const model_folder& folder,
                                     const registry_settings& settings) {
  router_settings result;
  result.model = folder.name;
  result.directory = folder.directory;
  result.config = folder.config;
  result.versions = folder.versions;
  result.load_timeout = settings.load_timeout;
  result.config_error = folder.error;
  result.fault_injection = settings.fault_injection;
  result.stats = settings.stats;
  return result;
}

/// Asks every router for its status; replies with all of them, by name. A
/// router that does not answer in time is listed with no versions.
caf::result<std::vector<model_status>> list_models(registry_pointer self) {
  auto promise = self->make_response_promise<std::vector<model_status>>();
  auto& models = self->state.models;
  if (models.empty()) {
    promise.deliver(std::vector<model_status>{});
    return promise;
  }
  auto collected = std::make_shared<std::map<std::string, model_status>>();
  auto finish = [=](std::string name, model_status status) mutable {
    collected->emplace(std::move(name), std::move(status));
    if (collected->size() < self->state.models.size())
      return;
    std::vector<model_status> all;
    for (auto& [key, value] : *collected)
      all.push_back(std::move(value));
    promise.deliver(std::move(all));
  };
  for (const auto& [name, entry] : models) {
    self->request(entry.router, self->state.settings.status_timeout, atom::status_v)
        .then([=](model_status& status) mutable { finish(name, std::move(status)); },
              [=](caf::error&) mutable {
                finish(name, model_status{name, {}, {}, {}});
              });
  }
  return promise;
}

/// Delegates a model's message to its router, which answers the asker.
template <class... Ts>
caf::result<model_status> forward_to_router(registry_pointer self,
                                            const std::string& model, Ts&&... xs) {
  auto i = self->state.models.find(model);
  if (i == self->state.models.end())
    return make_error(ec::model_not_found, "model '" + model + "' does not exist");
  return self->delegate(i->second.router, std::forward<Ts>(xs)...);
}

registry_actor::behavior_type registry(registry_pointer self, registry_settings settings,
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
  // Routers are linked so that they end with the registry. A router's own
  // exit is logged; anyone else's exit ends the registry.
  self->set_exit_handler([=](caf::exit_msg& msg) {
    for (const auto& [name, entry] : self->state.models) {
      if (entry.router.address() == msg.source) {
        spdlog::error("model {}: router exited: {}", name, caf::to_string(msg.reason));
        return;
      }
    }
    self->quit(msg.reason);
  });
  return {
      [=](atom::resolve,
          const std::string& model) -> caf::result<router_actor, model_spec> {
        auto i = self->state.models.find(model);
        if (i == self->state.models.end())
          return make_error(ec::model_not_found, "model '" + model + "' does not exist");
        return {i->second.router, i->second.spec};
      },
      [=](atom::list) { return list_models(self); },
      [=](atom::status, const std::string& model) -> caf::result<model_status> {
        return forward_to_router(self, model, atom::status_v);
      },
      [=](atom::reload, const std::string& model,
          const std::string& version) -> caf::result<model_status> {
        return forward_to_router(self, model, atom::reload_v, version);
      },
      [=](atom::unload, const std::string& model,
          const std::string& version) -> caf::result<model_status> {
        return forward_to_router(self, model, atom::unload_v, version);
      },
      [=](atom::traffic, const std::string& model,
          traffic_split& split) -> caf::result<model_status> {
        return forward_to_router(self, model, atom::traffic_v, std::move(split));
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
