#include "actors/redis_response_cache.hpp"

#include <algorithm>
#include <memory>
#include <vector>

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include "actors/response_cache_entry.hpp"
#include "messages/error.hpp"
#include "telemetry/logging.hpp"

namespace actorserve {

namespace {

struct redis_cache_state {
  static inline const char* name = "redis_response_cache";
  response_cache_settings settings;
  std::unique_ptr<redis_connection> redis;
  std::string ttl_ms;
  pending_misses pending;
  bool healthy = true; // the last call worked: failures are logged on the change

  void count(const std::string& model, cache_result result) const {
    if (settings.stats)
      settings.stats->count(model, result);
  }

  /// Logs a change between working and failing calls.
  void note(const caf::error& failure) {
    if (bool works = !failure; works != healthy) {
      healthy = works;
      nlohmann::json fields{{"redis", redis->describe()}};
      if (failure)
        fields["reason"] = to_api_error(failure).message;
      log_event(works ? spdlog::level::info : spdlog::level::warn,
                works ? "response_cache_recovered" : "response_cache_unavailable",
                std::move(fields));
    }
  }
};

using redis_cache_pointer = response_cache_actor::stateful_pointer<redis_cache_state>;

/// The stored output under `redis_key`: a tensor (hit), nothing (miss: no
/// entry, or one this build cannot read), or an error (Redis failed).
caf::expected<std::optional<tensor>> lookup(redis_cache_state& st,
                                            const std::string& redis_key) {
  auto reply = st.redis->run({"GET", redis_key});
  st.note(reply ? caf::error{} : reply.error());
  if (!reply)
    return std::move(reply.error());
  if (reply->type != redis_reply::kind::text)
    return std::optional<tensor>{};
  return decode_cached_output(reply->text);
}

response_cache_actor::behavior_type redis_cache(redis_cache_pointer self,
                                                response_cache_settings settings) {
  self->state.redis = std::make_unique<redis_connection>(settings.redis);
  self->state.ttl_ms = std::to_string(
      std::chrono::duration_cast<std::chrono::milliseconds>(settings.ttl).count());
  self->state.settings = std::move(settings);
  return {
      [=](atom::predict, const batcher_actor& batcher, const response_cache_key& key,
          predict_request& request) -> caf::result<predict_reply> {
        auto& st = self->state;
        auto redis_key = std::string{redis_cache_prefix} + cache_key_text(key);
        auto stored = lookup(st, redis_key);
        if (stored && *stored) {
          st.count(key.model, cache_result::hit);
          return predict_reply{key.version, std::move(**stored), {}, "hit"};
        }
        std::function<void(const tensor&)> store;
        if (stored) {
          st.count(key.model, cache_result::miss);
          store = [self, redis_key](const tensor& output) {
            auto& st = self->state;
            auto set = st.redis->run(
                {"SET", redis_key, encode_cached_output(output), "PX", st.ttl_ms});
            st.note(set ? caf::error{} : set.error());
          };
        } else {
          st.count(key.model, cache_result::error);
        }
        auto promise = self->make_response_promise<predict_reply>();
        answer_from_batcher(self, st.pending, batcher, std::move(request),
                            st.settings.max_wait, std::move(store), promise);
        return promise;
      },
      [=](atom::cancel, uint64_t cancel_key) {
        cancel_miss(self, self->state.pending, cancel_key);
      },
  };
}

struct redis_front_state {
  static inline const char* name = "redis_response_cache_front";
  std::vector<response_cache_actor> workers;
  size_t next = 0;
};

/// Hands requests to the workers in turn (delegated: the worker answers the
/// router's asker), so that that many Redis calls can be in flight. Linked
/// to them: they end with it.
response_cache_actor::behavior_type
redis_front(response_cache_actor::stateful_pointer<redis_front_state> self,
            std::vector<response_cache_actor> workers) {
  for (const auto& worker : workers)
    self->link_to(worker);
  self->state.workers = std::move(workers);
  return {
      [=](atom::predict, batcher_actor& batcher, response_cache_key& key,
          predict_request& request) -> caf::result<predict_reply> {
        auto& st = self->state;
        const auto& worker = st.workers[st.next++ % st.workers.size()];
        return self->delegate(worker, atom::predict_v, std::move(batcher), std::move(key),
                              std::move(request));
      },
      [=](atom::cancel, uint64_t cancel_key) {
        // Rare: every worker hears it; the one holding the miss passes it on.
        for (const auto& worker : self->state.workers)
          self->send(worker, atom::cancel_v, cancel_key);
      },
  };
}

} // namespace

response_cache_actor spawn_redis_response_cache(caf::actor_system& system,
                                                response_cache_settings settings) {
  std::vector<response_cache_actor> workers;
  for (int32_t i = 0; i < std::max(settings.redis_connections, 1); ++i)
    workers.push_back(system.spawn<caf::detached>(redis_cache, settings));
  return system.spawn(redis_front, std::move(workers));
}

} // namespace actorserve
