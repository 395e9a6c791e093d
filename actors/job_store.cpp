#include "actors/job_store.hpp"

#include <algorithm>
#include <deque>
#include <random>
#include <unordered_map>

#include <caf/all.hpp>

#include "messages/error.hpp"
#include "telemetry/metrics.hpp"

namespace actorserve {

namespace {

using clock = std::chrono::steady_clock;

using job_store_impl = job_store_actor::extend<
    // Timer: forget the finished jobs whose TTL ran out.
    caf::reacts_to<atom::sweep>>;

struct job {
  job_submission submission; // the input is released once the job starts
  job_view view;
  int64_t bytes = 0;
  clock::time_point expires = clock::time_point::max();
};

struct job_store_state {
  static inline const char* name = "job_store";
  job_store_settings settings;
  std::unordered_map<std::string, job> jobs;
  std::deque<std::string> waiting; // queued ids, oldest first
  int32_t running = 0;
  int64_t bytes = 0;
  bool draining = false;
  int64_t unfinished_at_drain = 0;
  std::vector<caf::typed_response_promise<int64_t>> drain_waiters;
};

using job_store_pointer = job_store_impl::stateful_pointer<job_store_state>;

int64_t tensor_bytes(const tensor& x) {
  return static_cast<int64_t>(x.values.size() * sizeof(float) +
                              x.shape.size() * sizeof(int64_t));
}

void start_waiting_jobs(job_store_pointer self);

void finish(job_store_pointer self, const std::string& id, predict_reply* reply,
            caf::error err) {
  auto& st = self->state;
  st.running -= 1;
  auto i = st.jobs.find(id);
  if (i != st.jobs.end()) { // else: forgotten (DELETE) while running
    auto& entry = i->second;
    if (reply) {
      entry.view.state = job_state::succeeded;
      auto result_bytes = tensor_bytes(reply->output);
      entry.bytes += result_bytes;
      st.bytes += result_bytes;
      entry.view.reply = std::move(*reply);
    } else {
      entry.view.state = job_state::failed;
      entry.view.error = std::move(err);
    }
    entry.expires = clock::now() + st.settings.ttl;
    if (st.settings.stats)
      st.settings.stats->count_jobs(reply ? "succeeded" : "failed");
  }
  start_waiting_jobs(self);
}

/// Answers the drain requests once no job is queued or running.
void settle_drain(job_store_state& st) {
  if (st.running > 0 || !st.waiting.empty())
    return;
  for (auto& waiter : st.drain_waiters)
    waiter.deliver(st.unfinished_at_drain);
  st.drain_waiters.clear();
}

void start_waiting_jobs(job_store_pointer self) {
  auto& st = self->state;
  while (st.running < st.settings.max_running && !st.waiting.empty()) {
    auto id = std::move(st.waiting.front());
    st.waiting.pop_front();
    auto& entry = st.jobs.at(id);
    entry.view.state = job_state::running;
    st.running += 1;
    auto input_bytes = tensor_bytes(entry.submission.request.input);
    entry.bytes -= input_bytes;
    st.bytes -= input_bytes;
    auto request = std::move(entry.submission.request);
    // The batcher answers deadline_exceeded at the request's own deadline;
    // the extra second only guards against a lost reply.
    auto timeout =
        std::chrono::milliseconds{request.timeout_ms} + std::chrono::seconds{1};
    self->request(entry.submission.target, timeout, atom::predict_v, std::move(request))
        .then([=](predict_reply& reply) { finish(self, id, &reply, {}); },
              [=](caf::error& err) { finish(self, id, nullptr, std::move(err)); });
  }
  settle_drain(st);
}

caf::result<std::string> submit(job_store_pointer self, job_submission& submission) {
  auto& st = self->state;
  if (st.draining)
    return make_error(ec::unavailable, "the server is shutting down");
  auto bytes = tensor_bytes(submission.request.input);
  if (static_cast<int32_t>(st.jobs.size()) >= st.settings.max_jobs ||
      st.bytes + bytes > st.settings.max_bytes)
    return make_error(ec::overloaded, "the job store is full; retry later");
  auto id = make_job_id();
  job entry;
  entry.view.id = id;
  entry.view.spec = submission.spec;
  entry.view.output = submission.output;
  entry.submission = std::move(submission);
  entry.bytes = bytes;
  st.bytes += bytes;
  st.jobs.emplace(id, std::move(entry));
  st.waiting.push_back(id);
  start_waiting_jobs(self);
  return id;
}

caf::result<job_view> get(job_store_pointer self, const std::string& id) {
  auto i = self->state.jobs.find(id);
  if (i == self->state.jobs.end() || i->second.expires <= clock::now())
    return make_error(ec::job_not_found, "job " + id + " does not exist or has expired");
  return i->second.view;
}

bool forget(job_store_pointer self, const std::string& id) {
  auto& st = self->state;
  auto i = st.jobs.find(id);
  if (i == st.jobs.end() || i->second.expires <= clock::now())
    return false;
  if (i->second.view.state == job_state::queued) {
    st.waiting.erase(std::find(st.waiting.begin(), st.waiting.end(), id));
    settle_drain(st);
  }
  st.bytes -= i->second.bytes;
  st.jobs.erase(i);
  return true;
}

void sweep(job_store_pointer self) {
  auto& st = self->state;
  auto now = clock::now();
  for (auto i = st.jobs.begin(); i != st.jobs.end();) {
    if (i->second.expires <= now) {
      st.bytes -= i->second.bytes;
      i = st.jobs.erase(i);
    } else {
      ++i;
    }
  }
  self->delayed_send(self, st.settings.sweep_interval, atom::sweep_v);
}

job_store_impl::behavior_type job_store(job_store_pointer self,
                                        job_store_settings settings) {
  self->state.settings = settings;
  self->delayed_send(self, settings.sweep_interval, atom::sweep_v);
  return {
      [=](atom::submit, job_submission& submission) { return submit(self, submission); },
      [=](atom::get, const std::string& id) { return get(self, id); },
      [=](atom::cancel, const std::string& id) -> caf::result<bool> {
        if (!forget(self, id))
          return make_error(ec::job_not_found,
                            "job " + id + " does not exist or has expired");
        return true;
      },
      [=](atom::stats) { return static_cast<int64_t>(self->state.jobs.size()); },
      [=](atom::sweep) { sweep(self); },
      [=](atom::drain) -> caf::result<int64_t> {
        auto& st = self->state;
        if (!st.draining) {
          st.draining = true;
          st.unfinished_at_drain = st.running + static_cast<int64_t>(st.waiting.size());
        }
        if (st.running == 0 && st.waiting.empty())
          return st.unfinished_at_drain;
        st.drain_waiters.push_back(self->make_response_promise<int64_t>());
        return st.drain_waiters.back();
      },
  };
}

} // namespace

std::string make_job_id() {
  thread_local std::random_device entropy; // getrandom(2) on Linux
  char text[33];
  std::snprintf(text, sizeof text, "%08x%08x%08x%08x", entropy(), entropy(), entropy(),
                entropy());
  return text;
}

job_store_actor spawn_job_store(caf::actor_system& system, job_store_settings settings) {
  return system.spawn(job_store, settings);
}

} // namespace actorserve
