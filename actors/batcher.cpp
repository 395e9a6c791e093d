#include "actors/batcher.hpp"

#include <algorithm>
#include <deque>
#include <map>
#include <unordered_map>

#include <caf/all.hpp>

#include "actors/batch_queue.hpp"
#include "messages/error.hpp"

namespace actorserve {

namespace {

using clock = batch_queue::clock;

/// The batcher's own interface: the public one plus its timer messages.
using batcher_impl = batcher_actor::extend<
  // Timer: cut the batches that are due.
  caf::reacts_to<atom::flush>,
  // Timer: answer the requests whose deadline passed.
  caf::reacts_to<atom::expire>>;

/// A request from the moment it is queued until it is answered.
struct pending_request {
  caf::typed_response_promise<predict_reply> promise;
  tensor input;
  clock::time_point deadline;
  int64_t rows_done = 0;
  std::map<int64_t, tensor> outputs; // first row of a slice -> its output rows
};

/// A batch on its way through one instance.
struct running_batch {
  size_t instance = 0;
  batch_queue::batch contents;
};

struct batcher_state {
  static inline const char* name = "batcher";

  batcher_settings settings;
  batch_queue queue{batch_queue::limits{}};
  std::unordered_map<batch_queue::request_id, pending_request> pending;
  batch_queue::request_id next_id = 1;
  std::vector<instance_actor> instances;
  std::deque<size_t> idle_instances;
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

void fail_request(batcher_state& st, batch_queue::request_id id, const caf::error& err) {
  auto i = st.pending.find(id);
  if (i == st.pending.end())
    return;
  i->second.promise.deliver(err);
  st.pending.erase(i);
}

/// Files one slice's output rows; answers the request once all rows are in.
void complete_slice(batcher_state& st, const batch_queue::slice& slice, tensor rows) {
  auto i = st.pending.find(slice.id);
  if (i == st.pending.end())
    return; // answered already (deadline passed): the result is discarded
  auto& request = i->second;
  request.rows_done += slice.rows;
  request.outputs.emplace(slice.first_row, std::move(rows));
  if (request.rows_done < request.input.shape[0])
    return;
  std::vector<tensor> parts;
  parts.reserve(request.outputs.size());
  for (auto& [first_row, part] : request.outputs)
    parts.push_back(std::move(part));
  request.promise.deliver(predict_reply{st.settings.version, concat_rows(parts)});
  st.pending.erase(i);
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
    auto err = make_error(ec::internal, "model returned " +
                                          std::to_string(output.shape.empty() ? 0 : output.shape[0]) +
                                          " rows for a batch of " +
                                          std::to_string(run.contents.rows));
    for (const auto& slice : run.contents.slices)
      fail_request(st, slice.id, err);
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
void on_batch_failed(batcher_pointer self, const running_batch& run, const caf::error& err) {
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
  // Requests answered since (deadline) are dropped from the batch.
  batch.slices.erase(std::remove_if(batch.slices.begin(), batch.slices.end(),
                                    [&](const auto& s) { return !st.pending.count(s.id); }),
                     batch.slices.end());
  if (batch.slices.empty()) {
    st.idle_instances.push_front(instance);
    return;
  }
  batch.rows = 0;
  clock::time_point latest = clock::now();
  for (const auto& slice : batch.slices) {
    batch.rows += slice.rows;
    latest = std::max(latest, st.pending.at(slice.id).deadline);
  }
  st.stats.batches += 1;
  st.stats.batched_rows += batch.rows;
  auto input = gather_input(st, batch);
  // The instance has until the last request's deadline (and a grace second);
  // capped so that "no deadline" does not overflow the clock.
  auto timeout = std::min(std::chrono::duration_cast<std::chrono::milliseconds>(
                            latest - clock::now() + std::chrono::seconds{1}),
                          std::chrono::milliseconds{std::chrono::hours{1}});
  running_batch run{instance, std::move(batch)};
  self->request(st.instances[instance], timeout, atom::forward_v, std::move(input))
    .then(
      [=](tensor& output) {
        on_batch_done(self, run, output);
        self->state.idle_instances.push_back(run.instance);
        dispatch(self);
        quit_if_drained(self);
      },
      [=](caf::error& err) {
        on_batch_failed(self, run, err);
        self->state.idle_instances.push_back(run.instance);
        dispatch(self);
        quit_if_drained(self);
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
    fail_request(st, id, late);
  }
  // Requests already running are answered now; their results are discarded.
  for (auto i = st.pending.begin(); i != st.pending.end();) {
    if (i->second.deadline <= now) {
      st.stats.expired += 1;
      i->second.promise.deliver(late);
      i = st.pending.erase(i);
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
    if (!st.retries.empty()) {
      next = std::move(st.retries.front());
      st.retries.pop_front();
    } else if (st.queue.batch_due(clock::now()) || (st.draining && !st.queue.empty())) {
      next = st.queue.take_batch();
    } else {
      break;
    }
    auto instance = st.idle_instances.front();
    st.idle_instances.pop_front();
    run_batch(self, instance, std::move(next));
  }
  st.stats.queue_depth = static_cast<int64_t>(st.queue.waiting_requests());
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
    return make_error(ec::unavailable, "version " + st.settings.version + " has no instance");
  auto now = clock::now();
  auto deadline = request.timeout_ms > 0
                    ? now + std::chrono::milliseconds{request.timeout_ms}
                    : clock::time_point::max() - std::chrono::hours{24};
  auto id = st.next_id++;
  if (!st.queue.push(id, input.shape[0], now, deadline)) {
    st.stats.rejected_overloaded += 1;
    return make_error(ec::overloaded, "the queue of " + st.settings.model + " version " +
                                        st.settings.version + " is full");
  }
  auto promise = self->make_response_promise<predict_reply>();
  st.pending.emplace(id, pending_request{promise, std::move(request.input), deadline, 0, {}});
  if (request.timeout_ms > 0)
    schedule(self, st.expire_timer, deadline, false);
  dispatch(self);
  return promise;
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
  for (auto& instance : self->state.instances) {
    self->request(instance, caf::infinite, atom::load_v)
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
                          batching.max_queue_size}};
  for (int32_t i = 0; i < settings.instances; ++i) {
    auto instance = spawn_model_instance(self->home_system(), settings.instance);
    self->link_to(instance);
    st.instances.push_back(instance);
    st.idle_instances.push_back(static_cast<size_t>(i));
  }
  self->set_exit_handler([=](caf::exit_msg& msg) {
    // An instance that exits is handled by supervision; anyone else's exit
    // (the router's) ends the batcher and with it its instances.
    auto& instances = self->state.instances;
    auto from_instance = std::any_of(instances.begin(), instances.end(), [&](auto& i) {
      return i.address() == msg.source;
    });
    if (!from_instance)
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
    [=](atom::drain) {
      self->state.draining = true;
      dispatch(self);
      quit_if_drained(self);
    },
  };
}

} // namespace

batcher_actor spawn_linked_batcher(caf::local_actor* parent, batcher_settings settings) {
  auto handle = parent->home_system().spawn(batcher, std::move(settings));
  parent->link_to(handle);
  return handle;
}

} // namespace actorserve
