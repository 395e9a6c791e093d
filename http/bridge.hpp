#pragma once

// The bridge from HTTP threads into actors: send one request and block the
// calling thread until the reply or the timeout. Chosen by measurement
// (bench/bridge_bench.cpp): a one-shot event-based actor that makes the
// request and fulfils a std::promise is the cheapest round trip on this
// machine, because it needs no blocking mailbox per HTTP thread.

#include <chrono>
#include <future>
#include <memory>
#include <tuple>

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/expected.hpp>

namespace actorserve {

/// Sends `xs...` to `dest` as a request with `timeout` and waits for the
/// reply of types `Rs...`. Called on HTTP threads; never waits longer than
/// `timeout` (CAF answers sec::request_timeout then).
template <class... Rs, class Handle, class... Ts>
caf::expected<std::tuple<Rs...>> ask(caf::actor_system& system, const Handle& dest,
                                     std::chrono::milliseconds timeout, Ts&&... xs) {
  using outcome = caf::expected<std::tuple<Rs...>>;
  auto answer = std::make_shared<std::promise<outcome>>();
  auto future = answer->get_future();
  system.spawn([answer, dest, timeout,
                request = std::make_tuple(std::forward<Ts>(xs)...)](
                   caf::event_based_actor* self) mutable {
    auto send = [&](auto&&... args) {
      return self->request(dest, timeout, std::forward<decltype(args)>(args)...);
    };
    std::apply(send, std::move(request))
        .then(
            [answer](Rs&... rs) { answer->set_value(std::make_tuple(std::move(rs)...)); },
            [answer](caf::error& err) { answer->set_value(std::move(err)); });
  });
  return future.get();
}

} // namespace actorserve
