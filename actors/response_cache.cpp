#include "actors/response_cache.hpp"

#include <caf/all.hpp>

#include "actors/redis_response_cache.hpp"
#include "actors/response_cache_entry.hpp"
#include "actors/response_lru.hpp"

namespace actorserve {

namespace {

struct memory_cache_state {
  static inline const char* name = "response_cache";
  response_cache_settings settings;
  response_lru entries{0};
  pending_misses pending;

  void count(const std::string& model, cache_result result) const {
    if (settings.stats)
      settings.stats->count(model, result);
  }
};

using memory_cache_pointer = response_cache_actor::stateful_pointer<memory_cache_state>;

response_cache_actor::behavior_type memory_cache(memory_cache_pointer self,
                                                 response_cache_settings settings) {
  self->state.settings = std::move(settings);
  self->state.entries = response_lru{self->state.settings.max_bytes};
  return {
      [=](atom::predict, const batcher_actor& batcher, const response_cache_key& key,
          predict_request& request) -> caf::result<predict_reply> {
        auto& st = self->state;
        auto text = cache_key_text(key);
        if (const auto* output = st.entries.find(text)) {
          st.count(key.model, cache_result::hit);
          return predict_reply{key.version, *output, {}, "hit"};
        }
        st.count(key.model, cache_result::miss);
        auto promise = self->make_response_promise<predict_reply>();
        answer_from_batcher(
            self, st.pending, batcher, std::move(request), st.settings.max_wait,
            [self, text](const tensor& output) { self->state.entries.put(text, output); },
            promise);
        return promise;
      },
      [=](atom::cancel, uint64_t cancel_key) {
        cancel_miss(self, self->state.pending, cancel_key);
      },
  };
}

} // namespace

void answer_from_batcher(response_cache_actor::pointer self, pending_misses& pending,
                         const batcher_actor& batcher, predict_request request,
                         std::chrono::milliseconds max_wait,
                         std::function<void(const tensor&)> store,
                         caf::typed_response_promise<predict_reply> promise) {
  auto wait = request.timeout_ms > 0
                  ? std::chrono::milliseconds{request.timeout_ms} + batcher_grace
                  : max_wait;
  auto key = request.cancel_key;
  if (key != 0)
    pending[key] = batcher;
  // `pending` is state of the actor that runs these handlers: it outlives them.
  auto* misses = &pending;
  self->request(batcher, wait, atom::predict_v, std::move(request))
      .then(
          [store = std::move(store), promise, misses, key](predict_reply& reply) mutable {
            misses->erase(key);
            if (store)
              store(reply.output);
            reply.cache = "miss";
            promise.deliver(std::move(reply));
          },
          [promise, misses, key](caf::error& err) mutable {
            misses->erase(key);
            promise.deliver(std::move(err));
          });
}

void cancel_miss(response_cache_actor::pointer self, const pending_misses& pending,
                 uint64_t cancel_key) {
  if (auto found = pending.find(cancel_key); found != pending.end())
    self->send(found->second, atom::cancel_v, cancel_key);
}

response_cache_actor spawn_response_cache(caf::actor_system& system,
                                          response_cache_settings settings) {
  if (settings.store == "redis")
    return spawn_redis_response_cache(system, std::move(settings));
  return system.spawn(memory_cache, std::move(settings));
}

} // namespace actorserve
