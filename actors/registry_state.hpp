#pragma once

// The registry's state and what its two units share: actors/registry.cpp
// (the model table, listings, the cluster view) and
// actors/registry_lifecycle.cpp (load and unload of whole models, the
// repository poll). Internal to the registry: everything here is touched
// only from inside the registry's own handlers, one message at a time.

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <caf/all.hpp>

#include "actors/registry.hpp"
#include "actors/router.hpp"
#include "config/model_repository.hpp"
#include "config/repository_watch.hpp"
#include "messages/error.hpp"

namespace actorserve {

namespace atom {
using poll = caf::atom_constant<caf::atom("poll")>;
constexpr poll poll_v{};
} // namespace atom

using registry_impl = registry_actor::extend<
    // Timer: pull every peer's catalog and refresh the local view.
    caf::reacts_to<atom::sync>,
    // Timer: rescan the repository and act on what changed.
    caf::reacts_to<atom::poll>>;

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
  std::map<std::string, model_entry> models;   // hosted here, published
  std::map<std::string, router_actor> loading; // being loaded, not yet published
  std::set<caf::actor_addr> retiring;          // unloaded models' routers, draining
  status_map local_status;                     // of the models hosted here, last sync
  std::map<std::string, peer_entry> peers;     // node -> peer
  std::map<std::string, shared_model> shared;  // models other nodes host too
  std::optional<repository_watch> watch;       // when the repository is polled
};

using registry_pointer = registry_impl::stateful_pointer<registry_state>;

/// A node hosting a model, for admin fan-out.
struct host {
  std::string node;
  router_actor router;
};

/// Called with a model's status once an admin action ended, or its error.
using status_callback = std::function<void(caf::expected<model_status>)>;

model_spec make_spec(const model_folder& folder);

router_settings make_router_settings(const model_folder& folder,
                                     const registry_settings& settings);

std::vector<host> hosts_of(const registry_state& st, const std::string& model);

/// Publishes who answers each model now: its replica set when peers host it
/// too, else its router.
void publish_directory(const registry_state& st);

/// The longest an admin action that loads may take.
std::chrono::milliseconds admin_timeout(const registry_state& st);

/// Sends an admin message to every one of `hosts` (not empty) and calls
/// `done` with their merged status, or with the first error (naming its
/// node) if any host failed.
template <class... Ts>
void ask_hosts(registry_pointer self, const std::vector<host>& hosts,
               std::chrono::milliseconds timeout, status_callback done, Ts... xs) {
  struct progress {
    std::vector<model_status> statuses;
    caf::error failure;
    size_t pending;
  };
  auto state = std::make_shared<progress>(progress{{}, {}, hosts.size()});
  auto settle = [=] {
    if (--state->pending > 0)
      return;
    if (state->failure)
      done(std::move(state->failure));
    else
      done(merge_statuses(std::move(state->statuses)));
  };
  for (const auto& target : hosts) {
    self->request(target.router, timeout, xs...)
        .then(
            [=](model_status& status) {
              state->statuses.push_back(std::move(status));
              settle();
            },
            [=, node = target.node](caf::error& err) {
              if (!state->failure) {
                auto failure = to_api_error(err);
                state->failure = node.empty()
                                     ? err
                                     : make_error(failure.code, "node " + node + ": " +
                                                                    failure.message);
              }
              settle();
            });
  }
}

/// The error for an admin message about a model no node hosts.
caf::error no_host_error(const registry_state& st, const std::string& model);

/// Replies to an admin message from every node hosting `model` (see
/// ask_hosts); a model hosted only here is delegated to its router.
template <class... Ts>
caf::result<model_status> fan_out(registry_pointer self, const std::string& model,
                                  std::chrono::milliseconds timeout, Ts... xs) {
  auto& st = self->state;
  auto hosts = hosts_of(st, model);
  if (hosts.empty())
    return no_host_error(st, model);
  if (hosts.size() == 1 && hosts.front().node == st.settings.node)
    return self->delegate(hosts.front().router, xs...);
  auto promise = self->make_response_promise<model_status>();
  ask_hosts(
      self, hosts, timeout,
      [promise](caf::expected<model_status> result) mutable {
        if (result)
          promise.deliver(std::move(*result));
        else
          promise.deliver(std::move(result.error()));
      },
      xs...);
  return promise;
}

// --- actors/registry_lifecycle.cpp ------------------------------------------

/// Reloads `model` (version or "") on every node hosting it; the local spec
/// is re-read from config.json once the local reload succeeded.
caf::result<model_status> reload_model(registry_pointer self, const std::string& model,
                                       const std::string& version);

/// Loads a model folder: a model hosted somewhere is reloaded ("" = what is
/// new); a folder of this node's repository that is not loaded gets its
/// router, published once its versions serve.
caf::result<model_status> load_model(registry_pointer self, const std::string& model);

/// Unloads every version of `model` on every node hosting it; the model
/// leaves this node's table and directory at once.
caf::result<model_status> unload_model(registry_pointer self, const std::string& model);

/// The exit of a router: an unloaded model's (expected), one that closed
/// itself on a peer's unload (the model leaves), or a crash (logged). False
/// when `source` is no router of this registry.
bool on_router_exit(registry_pointer self, const caf::exit_msg& msg);

/// Starts the repository poll when settings.poll_interval is set.
void start_poll(registry_pointer self);

/// One poll: rescans the repository and loads, reloads and unloads what
/// changed on this node (never on peers).
void poll_repository(registry_pointer self);

} // namespace actorserve
