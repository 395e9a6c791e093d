#include "actors/redis_job_store.hpp"

#include <algorithm>
#include <map>
#include <optional>
#include <set>

#include <caf/all.hpp>

#include "actors/job_store.hpp"
#include "messages/error.hpp"
#include "telemetry/logging.hpp"
#include "telemetry/metrics.hpp"

namespace actorserve {

namespace {

using clock = std::chrono::steady_clock;

/// How long a model's jobs are left in Redis after its predictor said "not
/// now" (model loading, queue full, node gone).
constexpr std::chrono::milliseconds model_pause{500};

using redis_job_store_impl = job_store_actor::extend<
    // Timer: take queued jobs, renew leases, requeue lapsed ones, store
    // outcomes Redis missed.
    caf::reacts_to<atom::sweep>,
    // Take queued jobs now (after a local submission or a finished job).
    caf::reacts_to<atom::flush>>;

/// A finished job whose outcome Redis has not taken yet.
struct unsaved_outcome {
  std::string id;
  std::optional<predict_reply> reply; // else: failed with `error`
  caf::error error;
};

struct redis_job_store_state {
  static inline const char* name = "redis_job_store";
  redis_job_store_settings settings;
  std::unique_ptr<redis_connection> redis;
  std::unique_ptr<redis_job_queue> queue;
  std::set<std::string> running; // ids in a predictor now
  std::vector<unsaved_outcome> unsaved;
  std::vector<std::string> given_back; // not run here now; for Redis, in order
  size_t model_turn = 0;               // which model's queue is tried first
  // Models whose predictor could not take a job now (loading, overloaded,
  // gone): their jobs wait in Redis until then.
  std::map<std::string, clock::time_point> paused_until;
  clock::time_point next_renew{};
  clock::time_point next_reap{};
  bool redis_away = false;
  bool flush_pending = false; // a flush is on its way: one is enough
  bool draining = false;
  int64_t unfinished_at_drain = 0;
  std::vector<caf::typed_response_promise<int64_t>> drain_waiters;
};

using store_pointer = redis_job_store_impl::stateful_pointer<redis_job_store_state>;

/// Logs Redis going away and coming back, once each.
template <class T> void note_redis(redis_job_store_state& st, const caf::expected<T>& x) {
  bool away = !x && to_api_error(x.error()).code == ec::unavailable;
  if (away == st.redis_away)
    return;
  st.redis_away = away;
  if (away)
    log_event(spdlog::level::warn, "job_store_redis_unavailable",
              {{"reason", to_api_error(x.error()).message}});
  else
    log_event(spdlog::level::info, "job_store_redis_available",
              {{"redis", st.redis->describe()}});
}

void settle_drain(redis_job_store_state& st) {
  if (!st.draining || !st.running.empty() || !st.unsaved.empty() ||
      !st.given_back.empty())
    return;
  for (auto& waiter : st.drain_waiters)
    waiter.deliver(st.unfinished_at_drain);
  st.drain_waiters.clear();
}

/// Stores an outcome; true unless Redis could not be reached (then it is
/// kept for a later try).
bool store(store_pointer self, const unsaved_outcome& outcome) {
  auto& st = self->state;
  auto stored = outcome.reply ? st.queue->succeed(outcome.id, *outcome.reply)
                              : st.queue->fail(outcome.id, outcome.error);
  note_redis(st, stored);
  if (stored && *stored && st.settings.stats)
    st.settings.stats->count_jobs(outcome.reply ? "succeeded" : "failed");
  if (stored)
    return true;
  if (to_api_error(stored.error()).code == ec::unavailable)
    return false;
  log_event(spdlog::level::err, "job_outcome_lost",
            {{"job", outcome.id}, {"reason", to_api_error(stored.error()).message}});
  return true;
}

/// Asks for a take right after this message, at most once at a time.
void take_soon(store_pointer self) {
  auto& st = self->state;
  if (st.draining || st.flush_pending)
    return;
  st.flush_pending = true;
  self->send(self, atom::flush_v);
}

void finish(store_pointer self, unsaved_outcome outcome) {
  auto& st = self->state;
  st.running.erase(outcome.id);
  if (!store(self, outcome))
    st.unsaved.push_back(std::move(outcome));
  take_soon(self);
  settle_drain(st);
}

/// Errors that say "not now" rather than "never": the job goes back to its
/// queue and the model is left alone for a while.
bool is_transient(const caf::error& err) {
  auto code = to_api_error(err).code;
  return code == ec::model_loading || code == ec::overloaded || code == ec::unavailable;
}

/// Jobs given back reach Redis together (on the next flush or tick), so
/// that they keep their order at the front of their queues.
void give_back(store_pointer self, const std::string& id, const std::string& model) {
  auto& st = self->state;
  st.running.erase(id);
  st.given_back.push_back(id);
  st.paused_until[model] = clock::now() + model_pause;
  if (!st.flush_pending) {
    st.flush_pending = true;
    self->send(self, atom::flush_v);
  }
}

void release_given_back(redis_job_store_state& st) {
  if (st.given_back.empty())
    return;
  // When Redis cannot take them back, their leases lapse and a reaper does.
  note_redis(st, st.queue->release(st.given_back));
  st.given_back.clear();
  settle_drain(st);
}

void run(store_pointer self, taken_job job) {
  auto& st = self->state;
  st.running.insert(job.id);
  if (job.request.timeout_ms <= 0)
    return finish(self, {job.id, std::nullopt,
                         make_error(ec::deadline_exceeded,
                                    "the job's deadline passed while it was queued")});
  auto model = st.settings.directory->find(job.model);
  if (!model) // gone from this node since it was taken: another may run it
    return give_back(self, job.id, job.model);
  // The batcher answers deadline_exceeded at the request's own deadline; the
  // extra second only guards against a lost reply.
  auto timeout =
      std::chrono::milliseconds{job.request.timeout_ms} + std::chrono::seconds{1};
  auto id = job.id;
  auto model_name = job.model;
  self->request((*model)->predictor, timeout, atom::predict_v, std::move(job.request))
      .then(
          [=](predict_reply& reply) {
            finish(self, {id, std::move(reply), {}});
          },
          [=](caf::error& err) {
            if (is_transient(err))
              give_back(self, id, model_name);
            else
              finish(self, {id, std::nullopt, std::move(err)});
          });
}

void take_jobs(store_pointer self) {
  auto& st = self->state;
  auto free = st.settings.max_running - static_cast<int32_t>(st.running.size());
  if (st.draining || free <= 0)
    return;
  auto now = clock::now();
  auto models = st.settings.directory->names();
  models.erase(std::remove_if(models.begin(), models.end(),
                              [&](const std::string& model) {
                                auto i = st.paused_until.find(model);
                                return i != st.paused_until.end() && i->second > now;
                              }),
               models.end());
  if (models.empty())
    return;
  st.model_turn = (st.model_turn + 1) % models.size();
  std::rotate(models.begin(), models.begin() + static_cast<ptrdiff_t>(st.model_turn),
              models.end());
  auto taken = st.queue->take(models, free);
  note_redis(st, taken);
  if (!taken)
    return;
  for (auto& job : *taken)
    run(self, std::move(job));
}

void renew_leases(redis_job_store_state& st) {
  std::vector<std::string> ids{st.running.begin(), st.running.end()};
  for (const auto& outcome : st.unsaved)
    ids.push_back(outcome.id);
  note_redis(st, st.queue->renew(ids));
}

void tick(store_pointer self) {
  auto& st = self->state;
  auto now = clock::now();
  release_given_back(st);
  if (!st.unsaved.empty()) {
    std::vector<unsaved_outcome> still;
    for (auto& outcome : st.unsaved)
      if (!store(self, outcome))
        still.push_back(std::move(outcome));
    st.unsaved = std::move(still);
    settle_drain(st);
  }
  auto lease_third = st.settings.limits.lease / 3;
  if (now >= st.next_renew) {
    renew_leases(st);
    st.next_renew = now + lease_third;
  }
  if (now >= st.next_reap) {
    auto requeued = st.queue->reap();
    note_redis(st, requeued);
    if (requeued && *requeued > 0 && st.settings.stats)
      st.settings.stats->count_jobs("requeued", *requeued);
    st.next_reap = now + lease_third;
  }
  take_jobs(self);
  self->delayed_send(self, st.settings.poll_interval, atom::sweep_v);
}

caf::result<std::string> submit(store_pointer self, const job_submission& job) {
  auto& st = self->state;
  if (st.draining)
    return make_error(ec::unavailable, "the server is shutting down");
  auto id = make_job_id();
  auto stored = st.queue->submit(id, job);
  note_redis(st, stored);
  if (!stored)
    return std::move(stored.error());
  if (!*stored)
    return make_error(ec::overloaded, "the job store is full; retry later");
  take_soon(self);
  return id;
}

redis_job_store_impl::behavior_type redis_job_store(store_pointer self,
                                                    redis_job_store_settings settings) {
  auto& st = self->state;
  st.redis = std::make_unique<redis_connection>(settings.redis);
  st.queue = std::make_unique<redis_job_queue>(*st.redis, settings.limits);
  st.settings = std::move(settings);
  self->send(self, atom::sweep_v);
  return {
      [=](atom::submit, const job_submission& job) { return submit(self, job); },
      [=](atom::get, const std::string& id) -> caf::result<job_view> {
        auto job = self->state.queue->view(id);
        note_redis(self->state, job);
        if (!job)
          return std::move(job.error());
        return std::move(*job);
      },
      [=](atom::cancel, const std::string& id) -> caf::result<bool> {
        auto cancelled = self->state.queue->cancel(id);
        note_redis(self->state, cancelled);
        if (!cancelled)
          return std::move(cancelled.error());
        if (!*cancelled)
          return make_error(ec::job_not_found,
                            "job " + id + " does not exist or has expired");
        return true;
      },
      [=](atom::stats) -> caf::result<int64_t> {
        auto count = self->state.queue->count();
        note_redis(self->state, count);
        if (!count)
          return std::move(count.error());
        return *count;
      },
      [=](atom::sweep) { tick(self); },
      [=](atom::flush) {
        self->state.flush_pending = false;
        release_given_back(self->state);
        take_jobs(self);
      },
      [=](atom::drain) -> caf::result<int64_t> {
        auto& st = self->state;
        if (!st.draining) {
          st.draining = true;
          st.unfinished_at_drain =
              static_cast<int64_t>(st.running.size() + st.unsaved.size());
        }
        if (st.running.empty() && st.unsaved.empty() && st.given_back.empty())
          return st.unfinished_at_drain;
        st.drain_waiters.push_back(self->make_response_promise<int64_t>());
        return st.drain_waiters.back();
      },
  };
}

} // namespace

job_store_actor spawn_redis_job_store(caf::actor_system& system,
                                      redis_job_store_settings settings) {
  return system.spawn<caf::detached>(redis_job_store, std::move(settings));
}

} // namespace actorserve
