#include "actors/replica_set.hpp"

#include <algorithm>
#include <map>
#include <random>
#include <utility>

#include <caf/all.hpp>

#include "actors/replica_table.hpp"
#include "messages/error.hpp"
#include "telemetry/logging.hpp"

namespace actorserve {

namespace {

/// A request forwarded to a replica and not yet answered.
struct pending_request {
  caf::typed_response_promise<predict_reply> promise;
  predict_request request; // kept to re-send it when its node goes away
  std::string node;
  uint64_t attempt = 0;  // which send a reply belongs to; older ones are stale
  uint64_t door_key = 0; // the cancel key the asker gave; 0: cannot be cancelled
};

struct replica_set_state {
  static inline const char* name = "replica_set";
  replica_set_settings settings;
  replica_table table;
  std::map<std::string, router_actor> routers; // node -> its router
  std::map<uint64_t, pending_request> pending;
  uint64_t next_id = 0;
  uint64_t next_attempt = 0;
  std::mt19937_64 cancel_keys{std::random_device{}()};
};

using replica_set_pointer = replica_set_actor::stateful_pointer<replica_set_state>;

caf::error no_replica_error(const replica_set_state& st) {
  return make_error(ec::unavailable,
                    "no node that hosts model " + st.settings.model + " is reachable");
}

/// Sends pending request `id` to a replica chosen now; answers it
/// `unavailable` when there is none.
void dispatch(replica_set_pointer self, uint64_t id) {
  auto& st = self->state;
  auto& entry = st.pending.at(id);
  auto node = st.table.choose(entry.request.version);
  if (!node) {
    entry.promise.deliver(no_replica_error(st));
    st.pending.erase(id);
    return;
  }
  entry.node = *node;
  entry.attempt = ++st.next_attempt;
  st.table.started(*node);
  auto budget = entry.request.timeout_ms > 0
                    ? std::chrono::milliseconds{entry.request.timeout_ms}
                    : st.settings.default_timeout;
  // A reply counts only if the request is still pending on this attempt:
  // after a re-send, the old node's late answer is dropped.
  auto settle = [self, id, attempt = entry.attempt](auto&& outcome) {
    auto& st = self->state;
    auto i = st.pending.find(id);
    if (i == st.pending.end() || i->second.attempt != attempt)
      return;
    st.table.finished(i->second.node);
    i->second.promise.deliver(std::forward<decltype(outcome)>(outcome));
    st.pending.erase(i);
  };
  self->request(st.routers.at(*node), budget, atom::predict_v, entry.request)
      .then(
          [settle, node = *node](predict_reply& reply) mutable {
            if (reply.node.empty())
              reply.node = node;
            settle(std::move(reply));
          },
          [settle](caf::error& err) mutable { settle(std::move(err)); });
}

/// A node left: its requests go to another replica, or fail `unavailable`.
void drop_node(replica_set_pointer self, const std::string& node) {
  auto& st = self->state;
  st.table.remove(node);
  st.routers.erase(node);
  std::vector<uint64_t> orphans;
  for (const auto& [id, entry] : st.pending)
    if (entry.node == node)
      orphans.push_back(id);
  log_event(spdlog::level::warn, "replica_lost",
            {{"model", st.settings.model}, {"node", node}, {"rerouted", orphans.size()}});
  for (auto id : orphans)
    dispatch(self, id);
}

/// The cancel key a forwarded request carries instead of its door's: doors
/// on different nodes may hand out the same keys, and one batcher serves
/// requests from every node's replica set. Random 64-bit keys do not collide.
uint64_t fresh_cancel_key(replica_set_state& st) {
  uint64_t key = 0;
  while (key == 0)
    key = st.cancel_keys();
  return key;
}

/// Answers the request with this door key `cancelled` at once and passes the
/// cancel on to the one replica holding it (remembered per request, so no
/// broadcast over the network); an unknown key is ignored.
void cancel_request(replica_set_pointer self, uint64_t door_key) {
  auto& st = self->state;
  if (door_key == 0)
    return;
  auto i = std::find_if(st.pending.begin(), st.pending.end(), [&](const auto& entry) {
    return entry.second.door_key == door_key;
  });
  if (i == st.pending.end())
    return;
  auto& entry = i->second;
  if (auto router = st.routers.find(entry.node); router != st.routers.end())
    self->send(router->second, atom::cancel_v, entry.request.cancel_key);
  st.table.finished(entry.node);
  entry.promise.deliver(make_error(ec::cancelled, "the client went away"));
  st.pending.erase(i);
}

void update_replicas(replica_set_pointer self, std::vector<replica>& replicas) {
  auto& st = self->state;
  std::vector<replica_table::member> members;
  for (auto& r : replicas) {
    members.push_back({r.node, {r.versions.begin(), r.versions.end()}, r.local});
    auto& known = st.routers[r.node];
    if (known.address() != r.router.address()) {
      if (!r.local)
        self->monitor(r.router);
      known = std::move(r.router);
    }
  }
  for (const auto& node : st.table.update(members))
    drop_node(self, node);
}

replica_set_actor::behavior_type replica_set(replica_set_pointer self,
                                             replica_set_settings settings) {
  self->state.settings = std::move(settings);
  self->set_down_handler([=](caf::down_msg& msg) {
    auto& routers = self->state.routers;
    for (const auto& [node, router] : routers) {
      if (router.address() == msg.source) {
        drop_node(self, node);
        return;
      }
    }
  });
  return {
      [=](atom::predict, predict_request& request) -> caf::result<predict_reply> {
        auto& st = self->state;
        if (st.table.size() == 0)
          return no_replica_error(st);
        auto id = st.next_id++;
        auto promise = self->make_response_promise<predict_reply>();
        auto door_key = std::exchange(request.cancel_key, 0);
        if (door_key != 0)
          request.cancel_key = fresh_cancel_key(st);
        st.pending.emplace(id,
                           pending_request{promise, std::move(request), {}, 0, door_key});
        dispatch(self, id);
        return promise;
      },
      [=](atom::cancel, uint64_t door_key) { cancel_request(self, door_key); },
      [=](atom::replicas, std::vector<replica>& replicas) {
        update_replicas(self, replicas);
      },
  };
}

} // namespace

replica_set_actor spawn_replica_set(caf::actor_system& system,
                                    replica_set_settings settings) {
  return system.spawn(replica_set, std::move(settings));
}

} // namespace actorserve
