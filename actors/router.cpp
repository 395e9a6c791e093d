#include "actors/router.hpp"

#include <set>

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include "actors/batcher.hpp"
#include "actors/version_table.hpp"
#include "messages/error.hpp"

namespace actorserve {

namespace {

struct router_state {
  static inline const char* name = "router";
  router_settings settings;
  version_table versions;
  std::set<caf::actor_addr> batchers; // every linked batcher still running
};

using router_pointer = router_actor::stateful_pointer<router_state>;

batcher_settings make_batcher_settings(const router_settings& settings,
                                       const std::string& version) {
  batcher_settings result;
  result.model = settings.model;
  result.version = version;
  result.batching = settings.config.batching;
  result.instances = settings.config.instances;
  result.instance.model_file = (settings.directory / version / "model.pt").string();
  result.instance.input_row_shape = settings.config.input.shape;
  return result;
}

/// Spawns the version's chain beside whatever serves now; it takes traffic
/// once its load (and warm-up) answers.
void load_version(router_pointer self, const std::string& version) {
  auto& st = self->state;
  auto batcher = spawn_linked_batcher(self, make_batcher_settings(st.settings, version));
  st.versions.add(version, batcher);
  st.batchers.insert(batcher.address());
  spdlog::info("loading model {} version {}", st.settings.model, version);
  self->request(batcher, st.settings.load_timeout, atom::load_v)
    .then(
      [=](int64_t load_time_ms) {
        self->state.versions.mark_available(version, load_time_ms);
        spdlog::info("model {} version {} available after {} ms", self->state.settings.model,
                     version, load_time_ms);
      },
      [=](caf::error& err) {
        auto reason = to_api_error(err).message;
        self->state.versions.mark_failed(version, reason);
        self->send_exit(batcher, caf::exit_reason::user_shutdown);
        spdlog::error("model {} version {} failed to load: {}", self->state.settings.model,
                      version, reason);
      });
}

} // namespace

router_actor spawn_router(caf::actor_system& system, router_settings settings) {
  auto behavior = [](router_pointer self,
                     router_settings settings) -> router_actor::behavior_type {
    auto& st = self->state;
    st.settings = std::move(settings);
    st.versions.set_traffic(st.settings.config.default_version, st.settings.config.traffic);
    for (const auto& version : st.settings.versions) {
      if (st.settings.config_error.empty()) {
        load_version(self, version);
      } else {
        st.versions.add(version, batcher_actor{});
        st.versions.mark_failed(version, st.settings.config_error);
      }
    }
    // Batchers are linked so that they end with the router; a batcher's own
    // exit is logged here, anyone else's exit ends the router.
    self->set_exit_handler([=](caf::exit_msg& msg) {
      if (self->state.batchers.erase(msg.source) == 0) {
        self->quit(msg.reason);
        return;
      }
      if (msg.reason && msg.reason != caf::exit_reason::user_shutdown)
        spdlog::warn("model {}: a batcher exited: {}", self->state.settings.model,
                     caf::to_string(msg.reason));
    });
    return {
      [=](atom::predict, predict_request& request) -> caf::result<predict_reply> {
        auto chosen = self->state.versions.choose(request.version);
        if (!chosen)
          return std::move(chosen.error());
        return self->delegate(chosen->second, atom::predict_v, std::move(request));
      },
      [=](atom::status) { return self->state.versions.status(self->state.settings.model); },
    };
  };
  return system.spawn(behavior, std::move(settings));
}

} // namespace actorserve
