#include "actors/batcher.hpp"

#include <algorithm>
#include <deque>
#include <map>
#include <unordered_map>
#include <utility>

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include "actors/batch_queue.hpp"
#include "messages/error.hpp"
#include "telemetry/logging.hpp"

namespace actorserve {

namespace {

using clock = batch_queue::clock;

/// The batcher's own interface: the public one plus its timer messages.
using batcher_impl = batcher_actor::extend<
    // Timer: cut the batches that are due.
    caf::reacts_to<atom::flush>,
    // Timer: answer the requests whose deadline passed.
    caf::reacts_to<atom::expire>,
    // Timer: spawn a replacement for the crashed instance at this index.
    caf::reacts_to<atom::restart, size_t>>;

/// A request from the moment it is queued until it is answered.
struct pending_request {
  caf::typed_response_promise<predict_reply> promise;
  tensor input;
  clock::time_point arrival;
  clock::time_point deadline;
  int64_t rows_done = 0;
  std::map<int64_t, tensor> outputs; // first row of a slice -> its output rows
  uint64_t cancel_key = 0;           // 0: cannot be cancelled
};

/// A batch on its way through one instance.
struct running_batch {
  size_t instance = 0;
  uint64_t generation = 0; // of the instance it was sent to
  batch_queue::batch contents;
};

/// One model instance and what it is doing. A replacement after a crash
/// gets a new generation, so late answers from the dead one are ignored.
struct instance_slot {
  instance_actor handle;
  uint64_t generation = 0;
  std::optional<running_batch> running;
};

struct batcher_state {
  static inline const char* name = "batcher";

  batcher_settings settings;
  batch_queue queue{batch_queue::limits{}};
  std::unordered_map<batch_queue::request_id, pending_request> pending;
  // cancel key -> id, for the pending requests that may be cancelled
  std::unordered_map<uint64_t, batch_queue::request_id> cancellable;
  batch_queue::request_id next_id = 1;
  std::vector<instance_slot> instances;
  std::deque<size_t> idle_instances;
  std::deque<clock::time_point> restarts; // within the restart window
  // Single-request batches re-run after a shared batch failed; served first.
  std::deque<batch_queue::batch> retries;
  std::optional<clock::time_point> flush_timer;  // earliest flush scheduled
  std::optional<clock::time_point> expire_timer; // earliest expiry scheduled
  bool draining = false; // retired: flush everything, exit once answered
  batcher_stats stats;
};

using batcher_pointer = batcher_impl::stateful_pointer<batcher_state>;

std::vector<int64_t> row_shape(const std::vector<int64_t>& shape) {
  return {shape.begin() + 1, shape.end()};
}

tensor gather_input(batcher_state& st, const batch_queue::batch& batch) {
  std::vector<tensor> parts;
  parts.reserve(batch.slices.size());
  for (const auto& slice : batch.slices) {
    const auto& input = st.pending.at(slice.id).input;
    if (batch.slices.size() == 1 && slice.rows == input.shape[0])
      return input; // the whole request is the batch: no copy needed
    parts.push_back(slice_rows(input, slice.first_row, slice.rows));
  }
  return concat_rows(parts);
}

using pending_iterator = decltype(batcher_state::pending)::iterator;

/// Answers a pending request (a reply or an error) and forgets it, cancel key
/// included; returns the next pending request.
template <class Outcome>
pending_iterator answer(batcher_state& st, pending_iterator i, Outcome&& outcome) {
  i->second.promise.deliver(std::forward<Outcome>(outcome));
  if (auto key = st.cancellable.find(i->second.cancel_key);
      key != st.cancellable.end() && key->second == i->first)
    st.cancellable.erase(key);
  return st.pending.erase(i);
}

void fail_request(batcher_state& st, batch_queue::request_id id, const caf::error& err) {
  if (auto i = st.pending.find(id); i != st.pending.end())
    answer(st, i, err);
}

double seconds_since(clock::time_point start) {
  return std::chrono::duration<double>(clock::now() - start).count();
}

/// Errors of our own category come from the model (a failed forward);
/// others (besides a timeout) mean the instance itself is gone.
bool instance_died(const caf::error& err) {
  return err.category() != caf::atom("actorserve") && err != caf::sec::request_timeout;
}

void fail_batch(batcher_state& st, const running_batch& run, const caf::error& err) {
  for (const auto& slice : run.contents.slices)
    fail_request(st, slice.id, err);
}

/// Files one slice's output rows; answers the request once all rows are in.
void complete_slice(batcher_state& st, const batch_queue::slice& slice, tensor rows) {
  auto i = st.pending.find(slice.id);
  if (i == st.pending.end())
    return; // answered already (deadline passed, cancelled): the result is discarded
  auto& request = i->second;
  request.rows_done += slice.rows;
  request.outputs.emplace(slice.first_row, std::move(rows));
  if (request.rows_done < request.input.shape[0])
    return;
  std::vector<tensor> parts;
  parts.reserve(request.outputs.size());
  for (auto& [first_row, part] : request.outputs)
    parts.push_back(std::move(part));
  answer(st, i, predict_reply{st.settings.version, concat_rows(parts), {}});
}

void dispatch(batcher_pointer self);

/// A retired batcher exits once every request it took is answered.
void quit_if_drained(batcher_pointer self) {
  if (self->state.draining && self->state.pending.empty())
    self->quit();
}

void on_batch_done(batcher_pointer self, const running_batch& run, tensor& output) {
  auto& st = self->state;
  if (output.shape.empty() || output.shape[0] != run.contents.rows) {
    fail_batch(st, run,
               make_error(ec::internal,
                          "model returned " +
                              std::to_string(output.shape.empty() ? 0 : output.shape[0]) +
                              " rows for a batch of " +
                              std::to_string(run.contents.rows)));
    return;
  }
  int64_t offset = 0;
  for (const auto& slice : run.contents.slices) {
    complete_slice(st, slice, slice_rows(output, offset, slice.rows));
    offset += slice.rows;
  }
}

/// A failed shared batch is re-run slice by slice, so that one poisoned
/// request fails alone; a failed single-slice batch fails its request.
void on_batch_failed(batcher_pointer self, const running_batch& run,
                     const caf::error& err) {
  auto& st = self->state;
  if (run.contents.slices.size() == 1) {
    fail_request(st, run.contents.slices.front().id, err);
    return;
  }
  for (const auto& slice : run.contents.slices)
    st.retries.push_back(batch_queue::batch{{slice}, slice.rows});
}

void run_batch(batcher_pointer self, size_t instance, batch_queue::batch batch) {
  auto& st = self->state;
  // Requests answered since (deadline, cancel) are dropped from the batch.
  batch.slices.erase(
      std::remove_if(batch.slices.begin(), batch.slices.end(),
                     [&](const auto& s) { return !st.pending.count(s.id); }),
      batch.slices.end());
  if (batch.slices.empty()) {
    st.idle_instances.push_front(instance);
    return;
  }
  batch.rows = 0;
  auto started = clock::now();
  clock::time_point latest = started;
  clock::time_point oldest = started;
  for (const auto& slice : batch.slices) {
    batch.rows += slice.rows;
    latest = std::max(latest, st.pending.at(slice.id).deadline);
    oldest = std::min(oldest, st.pending.at(slice.id).arrival);
  }
  st.stats.batches += 1;
  st.stats.batched_rows += batch.rows;
  auto input = gather_input(st, batch);
  // The instance has until the last request's deadline (and a grace second);
  // capped so that "no deadline" does not overflow the clock.
  auto timeout = std::min(std::chrono::duration_cast<std::chrono::milliseconds>(
                              latest - clock::now() + std::chrono::seconds{1}),
                          std::chrono::milliseconds{std::chrono::hours{1}});
  auto& slot = st.instances[instance];
  running_batch run{instance, slot.generation, std::move(batch)};
  slot.running = run;
  // Answers from an instance that crashed meanwhile are ignored: the crash
  // handler has answered its batch already.
  auto current = [=] {
    auto& now = self->state.instances[run.instance];
    return now.generation == run.generation && now.running;
  };
  auto finished = [=] {
    self->state.instances[run.instance].running.reset();
    self->state.idle_instances.push_back(run.instance);
    dispatch(self);
    quit_if_drained(self);
  };
  self->request(slot.handle, timeout, atom::forward_v, std::move(input))
      .then(
          [=](tensor& output) {
            if (!current())
              return;
            if (auto& stats = self->state.settings.stats)
              stats->observe_inference(
                  self->state.settings.model, self->state.settings.version,
                  seconds_since(started), run.contents.rows,
                  std::chrono::duration<double>(started - oldest).count());
            on_batch_done(self, run, output);
            finished();
          },
          [=](caf::error& err) {
            if (!current())
              return;
            if (instance_died(err)) {
              // Answered now; the exit message brings the replacement.
              fail_batch(self->state, run,
                         make_error(ec::unavailable, "the model instance crashed"));
              self->state.instances[run.instance].running.reset();
              return;
            }
            on_batch_failed(self, run, err);
            finished();
          });
}

void schedule(batcher_pointer self, std::optional<clock::time_point>& timer,
              clock::time_point when, bool flush) {
  if (timer && *timer <= when)
    return; // an earlier timer will look again
  timer = when;
  auto delay = std::max(when - clock::now(), clock::duration::zero());
  if (flush)
    self->delayed_send(self, delay, atom::flush_v);
  else
    self->delayed_send(self, delay, atom::expire_v);
}

void expire_requests(batcher_pointer self) {
  auto& st = self->state;
  auto now = clock::now();
  auto late = make_error(ec::deadline_exceeded, "the deadline passed before the result");
  for (auto id : st.queue.expire(now)) {
    st.stats.expired += 1;
    if (st.settings.stats)
      st.settings.stats->count_rejection("deadline_exceeded");
    fail_request(st, id, late);
  }
  // Requests already running are answered now; their results are discarded
  // and their rows still waiting are never computed.
  for (auto i = st.pending.begin(); i != st.pending.end();) {
    if (i->second.deadline <= now) {
      st.stats.expired += 1;
      st.queue.withdraw(i->first);
      i = answer(st, i, late);
    } else {
      ++i;
    }
  }
  clock::time_point next = clock::time_point::max();
  for (const auto& [id, request] : st.pending)
    next = std::min(next, request.deadline);
  if (next != clock::time_point::max())
    schedule(self, st.expire_timer, next, false);
}

/// Hands batches to idle instances: retries first, then due batches.
void dispatch(batcher_pointer self) {
  auto& st = self->state;
  while (!st.idle_instances.empty()) {
    batch_queue::batch next;
    const auto now = clock::now();
    if (!st.retries.empty()) {
      next = std::move(st.retries.front());
      st.retries.pop_front();
    } else if (st.queue.batch_due(now) || (st.draining && !st.queue.empty())) {
      next = st.queue.take_batch(now);
    } else {
      break;
    }
    auto instance = st.idle_instances.front();
    st.idle_instances.pop_front();
    run_batch(self, instance, std::move(next));
  }
  st.stats.queue_depth = static_cast<int64_t>(st.queue.waiting_requests());
  if (st.settings.stats)
    st.settings.stats->set_queue_depth(st.settings.model, st.settings.version,
                                       st.stats.queue_depth);
  if (auto due = st.queue.next_due_time(); due && !st.idle_instances.empty())
    schedule(self, st.flush_timer, *due, true);
}

caf::result<predict_reply> enqueue(batcher_pointer self, predict_request& request) {
  auto& st = self->state;
  const auto& input = request.input;
  if (input.shape.empty() || input.shape[0] < 1 ||
      row_shape(input.shape) != st.settings.instance.input_row_shape ||
      static_cast<int64_t>(input.values.size()) != input.shape[0] * row_size(input))
    return make_error(ec::invalid_input, "input does not match the model's input shape");
  if (st.instances.empty())
    return make_error(ec::unavailable,
                      "version " + st.settings.version + " has no instance");
  auto now = clock::now();
  auto deadline = request.timeout_ms > 0
                      ? now + std::chrono::milliseconds{request.timeout_ms}
                      : clock::time_point::max() - std::chrono::hours{24};
  auto id = st.next_id++;
  if (!st.queue.push(id, input.shape[0], now, deadline, request.priority)) {
    st.stats.rejected_overloaded += 1;
    if (st.settings.stats)
      st.settings.stats->count_rejection("overloaded");
    return make_error(ec::overloaded, "the queue of " + st.settings.model + " version " +
                                          st.settings.version + " is full");
  }
  auto promise = self->make_response_promise<predict_reply>();
  st.pending.emplace(
      id,
      pending_request{
          promise, std::move(request.input), now, deadline, 0, {}, request.cancel_key});
  if (request.cancel_key != 0)
    st.cancellable.emplace(request.cancel_key, id);
  if (request.timeout_ms > 0)
    schedule(self, st.expire_timer, deadline, false);
  dispatch(self);
  return promise;
}

/// Withdraws the request with this cancel key, wherever it is: its rows still
/// waiting leave the queue uncomputed; rows already running come back to
/// complete_slice, which no longer finds it and discards them. An unknown key
/// (answered already, or never here) is ignored.
void cancel_request(batcher_pointer self, uint64_t cancel_key) {
  auto& st = self->state;
  auto key = st.cancellable.find(cancel_key);
  if (key == st.cancellable.end())
    return;
  auto request = st.pending.find(key->second);
  if (request == st.pending.end()) {
    st.cancellable.erase(key);
    return;
  }
  st.queue.withdraw(request->first);
  if (st.settings.stats)
    st.settings.stats->count_cancelled(st.settings.model, "client_gone");
  answer(st, request, make_error(ec::cancelled, "the client went away"));
  dispatch(self); // refreshes the queue depth
  quit_if_drained(self);
}

/// Spawns, links and loads a replacement; it takes batches once loaded. A
/// replacement that cannot load counts as one more crash.
void restart_instance(batcher_pointer self, size_t index) {
  auto& st = self->state;
  auto& slot = st.instances[index];
  slot.handle = spawn_model_instance(self->home_system(), st.settings.instance);
  self->link_to(slot.handle);
  auto generation = slot.generation;
  self->request(slot.handle, caf::infinite, atom::load_v)
      .then(
          [=](int64_t) {
            if (self->state.instances[index].generation != generation)
              return;
            if (auto& stats = self->state.settings.stats)
              stats->count_restart(self->state.settings.model,
                                   self->state.settings.version);
            log_event(spdlog::level::info, "restarted",
                      {{"model", self->state.settings.model},
                       {"version", self->state.settings.version},
                       {"instance", index}});
            self->state.idle_instances.push_back(index);
            dispatch(self);
          },
          [=](caf::error& err) {
            if (self->state.instances[index].generation == generation)
              self->send_exit(self->state.instances[index].handle, err);
          });
}

/// An instance exited. Its running batch is answered at once (503
/// unavailable: the crash may be the batch's own doing, so it is not
/// retried). The instance is replaced after an exponential backoff unless it
/// crashed more than the budget allows within the window; then the batcher
/// gives up, answers everything it holds, and exits with the reason, which
/// makes the router mark the version failed.
void on_instance_exit(batcher_pointer self, size_t index, const caf::error& reason) {
  auto& st = self->state;
  auto& slot = st.instances[index];
  slot.generation += 1;
  st.idle_instances.erase(
      std::remove(st.idle_instances.begin(), st.idle_instances.end(), index),
      st.idle_instances.end());
  auto text = caf::to_string(reason);
  auto crashed = make_error(ec::unavailable, "the model instance crashed: " + text);
  if (auto running = std::exchange(slot.running, std::nullopt))
    fail_batch(st, *running, crashed);
  auto now = clock::now();
  const auto& policy = st.settings.restarts;
  st.restarts.push_back(now);
  while (!st.restarts.empty() && now - st.restarts.front() > policy.window)
    st.restarts.pop_front();
  log_event(spdlog::level::warn, "instance_crashed",
            {{"model", st.settings.model},
             {"version", st.settings.version},
             {"instance", index},
             {"reason", text},
             {"recent_restarts", st.restarts.size()}});
  if (static_cast<int32_t>(st.restarts.size()) > policy.max_restarts) {
    for (auto& [id, request] : st.pending)
      request.promise.deliver(crashed);
    st.pending.clear();
    st.cancellable.clear();
    self->quit(make_error(
        ec::unavailable, "model instances crashed " + std::to_string(st.restarts.size()) +
                             " times within the restart window: " + text));
    return;
  }
  auto backoff = std::min(policy.initial_backoff *
                              (1 << std::min<size_t>(st.restarts.size() - 1, 10)),
                          policy.max_backoff);
  self->delayed_send(self, backoff, atom::restart_v, index);
}

/// Loads every instance; replies with the slowest load time or the first
/// error. No timeout here: the router's load request carries the deadline.
caf::result<int64_t> load_instances(batcher_pointer self) {
  struct progress {
    size_t remaining;
    int64_t slowest_ms = 0;
    bool answered = false;
  };
  auto promise = self->make_response_promise<int64_t>();
  auto state = std::make_shared<progress>(progress{self->state.instances.size()});
  for (auto& slot : self->state.instances) {
    self->request(slot.handle, caf::infinite, atom::load_v)
        .then(
            [=](int64_t load_time_ms) mutable {
              state->slowest_ms = std::max(state->slowest_ms, load_time_ms);
              if (--state->remaining == 0 && !state->answered)
                promise.deliver(state->slowest_ms);
            },
            [=](caf::error& err) mutable {
              if (!std::exchange(state->answered, true))
                promise.deliver(err);
            });
  }
  return promise;
}

batcher_impl::behavior_type batcher(batcher_pointer self, batcher_settings settings) {
  auto& st = self->state;
  st.settings = settings;
  const auto& batching = settings.batching;
  st.queue = batch_queue{{batching.max_batch_size,
                          std::chrono::microseconds{batching.max_queue_delay_us},
                          batching.max_queue_size, batching.priority_levels,
                          std::chrono::microseconds{batching.max_priority_wait_us}}};
  // One module for all instances of the version, replacements included.
  st.settings.instance.module = make_shared_module();
  for (int32_t i = 0; i < settings.instances; ++i) {
    auto instance = spawn_model_instance(self->home_system(), st.settings.instance);
    self->link_to(instance);
    st.instances.push_back(instance_slot{instance, 0, std::nullopt});
    st.idle_instances.push_back(static_cast<size_t>(i));
  }
  self->set_exit_handler([=](caf::exit_msg& msg) {
    // The batcher supervises its (linked) instances; anyone else's exit
    // (the router's) ends the batcher and with it its instances.
    auto& instances = self->state.instances;
    for (size_t i = 0; i < instances.size(); ++i)
      if (instances[i].handle.address() == msg.source) {
        on_instance_exit(self, i, msg.reason);
        return;
      }
    self->quit(msg.reason);
  });
  return {
      [=](atom::load) { return load_instances(self); },
      [=](atom::predict, predict_request& request) { return enqueue(self, request); },
      [=](atom::stats) { return self->state.stats; },
      [=](atom::flush) {
        self->state.flush_timer.reset();
        dispatch(self);
      },
      [=](atom::expire) {
        self->state.expire_timer.reset();
        expire_requests(self);
        quit_if_drained(self);
      },
      [=](atom::restart, size_t index) { restart_instance(self, index); },
      [=](atom::drain) {
        self->state.draining = true;
        dispatch(self);
        quit_if_drained(self);
      },
      [=](atom::cancel, uint64_t cancel_key) { cancel_request(self, cancel_key); },
  };
}

} // namespace

batcher_actor spawn_linked_batcher(caf::local_actor* parent, batcher_settings settings) {
  auto handle = parent->home_system().spawn(batcher, std::move(settings));
  parent->link_to(handle);
  return handle;
}

} // namespace actorserve
