#pragma once

// The bridge from HTTP threads into actors: send one request and block the
// calling thread until the reply or the timeout. Chosen by measurement
// (bench/bridge_bench.cpp): the request is enqueued straight into the
// destination's mailbox from the HTTP thread, with a reply sink as its
// sender. The sink is an actor without mailbox or thread: CAF hands it the
// reply on the replying actor's thread, and it fulfils the waiting thread's
// std::promise there. No actor is spawned or scheduled per call, which makes
// this the cheapest round trip measured on this machine.

#include <chrono>
#include <functional>
#include <future>
#include <memory>
#include <tuple>
#include <utility>

#include <caf/actor_cast.hpp>
#include <caf/actor_system.hpp>
#include <caf/error.hpp>
#include <caf/expected.hpp>
#include <caf/mailbox_element.hpp>
#include <caf/message.hpp>
#include <caf/message_id.hpp>
#include <caf/sec.hpp>

namespace actorserve {

/// Called once, on the replying actor's thread, with the reply (a result or
/// a caf::error, e.g. request_receiver_down when the destination is gone).
using reply_handler = std::function<void(caf::message& reply)>;

/// A sender for one request whose reply goes to `on_reply`. It closes itself
/// after the reply; close it with close_reply_sink() when the asker gives up.
caf::strong_actor_ptr make_reply_sink(caf::actor_system& system, reply_handler on_reply);

/// Ends the sink: it leaves the system's registries, and a late reply is
/// dropped.
void close_reply_sink(const caf::strong_actor_ptr& sink);

namespace detail {

template <class... Rs, size_t... Is>
std::tuple<Rs...> take_elements(caf::message& reply, std::index_sequence<Is...>) {
  return std::make_tuple(std::move(reply.get_mutable_as<Rs>(Is))...);
}

/// The reply as a result of types Rs..., or the error it carries.
template <class... Rs> caf::expected<std::tuple<Rs...>> take_reply(caf::message& reply) {
  if (reply.match_elements<Rs...>())
    return take_elements<Rs...>(reply, std::index_sequence_for<Rs...>{});
  if (reply.match_elements<caf::error>())
    return std::move(reply.get_mutable_as<caf::error>(0));
  return caf::make_error(caf::sec::unexpected_response);
}

/// Enqueues `xs...` into `receiver`'s mailbox as a request from `sink`.
template <class... Ts>
void enqueue_request(const caf::strong_actor_ptr& receiver,
                     const caf::strong_actor_ptr& sink, Ts&&... xs) {
  // Any nonzero id makes the message a request; the sink serves only this one.
  receiver->enqueue(caf::make_mailbox_element(sink, caf::make_message_id(1), {},
                                              std::forward<Ts>(xs)...),
                    nullptr);
}

/// Delivers sec::request_timeout to `sink` as its reply at `when` (dropped
/// when the real reply came first).
void schedule_timeout(caf::actor_system& system, const caf::strong_actor_ptr& sink,
                      std::chrono::steady_clock::time_point when);

} // namespace detail

/// Sends `xs...` to `dest` as a request with `timeout` and waits for the
/// reply of types `Rs...`. Called on HTTP threads; never waits longer than
/// `timeout` (sec::request_timeout then).
template <class... Rs, class Handle, class... Ts>
caf::expected<std::tuple<Rs...>> ask(caf::actor_system& system, const Handle& dest,
                                     std::chrono::milliseconds timeout, Ts&&... xs) {
  using outcome = caf::expected<std::tuple<Rs...>>;
  auto receiver = caf::actor_cast<caf::strong_actor_ptr>(dest);
  if (!receiver)
    return caf::make_error(caf::sec::invalid_argument);
  auto answer = std::make_shared<std::promise<outcome>>();
  auto future = answer->get_future();
  auto sink = make_reply_sink(system, [answer](caf::message& reply) {
    answer->set_value(detail::take_reply<Rs...>(reply));
  });
  detail::enqueue_request(receiver, sink, std::forward<Ts>(xs)...);
  auto replied = future.wait_for(timeout) == std::future_status::ready;
  close_reply_sink(sink);
  if (!replied)
    return caf::make_error(caf::sec::request_timeout);
  return future.get();
}

/// Sends `xs...` to `dest` as a request and returns at once; `on_result` is
/// called exactly once with the reply of types `Rs...` or an error: on the
/// replying actor's thread, or on CAF's clock thread with
/// sec::request_timeout after `timeout`. For doors that must not block a
/// thread per call (grpc/); `on_result` must not block either.
template <class... Rs, class Handle, class OnResult, class... Ts>
void ask_async(caf::actor_system& system, const Handle& dest,
               std::chrono::milliseconds timeout, OnResult on_result, Ts&&... xs) {
  auto receiver = caf::actor_cast<caf::strong_actor_ptr>(dest);
  if (!receiver) {
    on_result(
        caf::expected<std::tuple<Rs...>>{caf::make_error(caf::sec::invalid_argument)});
    return;
  }
  auto sink = make_reply_sink(
      system, [on_result = std::move(on_result)](caf::message& reply) mutable {
        on_result(detail::take_reply<Rs...>(reply));
      });
  detail::schedule_timeout(system, sink, std::chrono::steady_clock::now() + timeout);
  detail::enqueue_request(receiver, sink, std::forward<Ts>(xs)...);
}

} // namespace actorserve
