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
            self, batcher, std::move(request), st.settings.max_wait,
            [self, text](const tensor& output) { self->state.entries.put(text, output); },
            promise);
        return promise;
      },
  };
}

} // namespace

void answer_from_batcher(response_cache_actor::pointer self, const batcher_actor& batcher,
                         predict_request request, std::chrono::milliseconds max_wait,
                         std::function<void(const tensor&)> store,
                         caf::typed_response_promise<predict_reply> promise) {
  auto wait = request.timeout_ms > 0
                  ? std::chrono::milliseconds{request.timeout_ms} + batcher_grace
                  : max_wait;
  self->request(batcher, wait, atom::predict_v, std::move(request))
      .then(
          [store = std::move(store), promise](predict_reply& reply) mutable {
            if (store)
              store(reply.output);
            reply.cache = "miss";
            promise.deliver(std::move(reply));
          },
          [promise](caf::error& err) mutable { promise.deliver(std::move(err)); });
}

response_cache_actor spawn_response_cache(caf::actor_system& system,
                                          response_cache_settings settings) {
  if (settings.store == "redis")
    return spawn_redis_response_cache(system, std::move(settings));
  return system.spawn(memory_cache, std::move(settings));
}

} // namespace actorserve
