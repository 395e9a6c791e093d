// The HTTP-thread bridge (http/bridge.hpp) against real actors: replies,
// error replies, a receiver that is gone, one that never answers, a reply
// that comes after the asker gave up, and many threads asking at once.

#include <gtest/gtest.h>

#include <chrono>
#include <deque>
#include <thread>
#include <vector>

#include <caf/all.hpp>

#include "http/bridge.hpp"
#include "messages/error.hpp"
#include "tests/test_support.hpp"

namespace actorserve {
namespace {

using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

using deliver_atom = caf::atom_constant<caf::atom("deliver")>;

struct probe_state {
  std::deque<caf::typed_response_promise<int32_t>> waiting;
};

/// Replies to x with (x + 1, "x"); to a text with an error of ours; to
/// (x, delay_ms) with x after the delay, or never when the delay is 0.
caf::behavior probe(caf::stateful_actor<probe_state>* self) {
  return {
      [](int32_t x) { return caf::make_result(x + 1, std::to_string(x)); },
      [](const std::string& why) -> caf::result<int32_t> {
        return make_error(ec::model_not_found, why);
      },
      [self](int32_t x, int64_t delay_ms) {
        auto promise = self->make_response_promise<int32_t>();
        if (delay_ms > 0) {
          self->state.waiting.push_back(promise);
          self->delayed_send(self, std::chrono::milliseconds{delay_ms},
                             deliver_atom::value, x);
        }
        return promise;
      },
      [self](deliver_atom, int32_t x) {
        self->state.waiting.front().deliver(x);
        self->state.waiting.pop_front();
      },
  };
}

struct bridge_test : ::testing::Test {
  caf::actor_system system{testing::registered_actor_config()};
  caf::actor dest = system.spawn(probe);
};

TEST_F(bridge_test, returns_every_element_of_the_reply) {
  auto reply = ask<int32_t, std::string>(system, dest, 1s, int32_t{41});
  ASSERT_TRUE(reply) << system.render(reply.error());
  EXPECT_EQ(std::get<0>(*reply), 42);
  EXPECT_EQ(std::get<1>(*reply), "41");
}

TEST_F(bridge_test, passes_an_error_reply_through) {
  auto reply = ask<int32_t>(system, dest, 1s, std::string{"no such model"});
  ASSERT_FALSE(reply);
  auto error = to_api_error(reply.error());
  EXPECT_EQ(error.code, ec::model_not_found);
  EXPECT_EQ(error.message, "no such model");
}

TEST_F(bridge_test, a_receiver_that_is_gone_fails_at_once_not_at_the_timeout) {
  caf::anon_send_exit(dest, caf::exit_reason::kill);
  auto started = clock_type::now();
  caf::expected<std::tuple<int32_t, std::string>> reply{caf::error{}};
  // The exit is asynchronous: ask until the receiver is down.
  for (int i = 0; i < 100; ++i) {
    reply = ask<int32_t, std::string>(system, dest, 10s, int32_t{1});
    if (!reply)
      break;
    std::this_thread::sleep_for(10ms);
  }
  ASSERT_FALSE(reply);
  EXPECT_EQ(reply.error(), caf::sec::request_receiver_down);
  EXPECT_LT(clock_type::now() - started, 5s);
}

TEST_F(bridge_test, a_silent_receiver_times_out) {
  auto started = clock_type::now();
  auto reply = ask<int32_t>(system, dest, 100ms, int32_t{7}, int64_t{0});
  auto waited = clock_type::now() - started;
  ASSERT_FALSE(reply);
  EXPECT_EQ(reply.error(), caf::sec::request_timeout);
  EXPECT_GE(waited, 100ms);
  EXPECT_LT(waited, 5s);
}

TEST_F(bridge_test, a_reply_after_the_timeout_is_dropped_and_the_next_ask_works) {
  auto late = ask<int32_t>(system, dest, 20ms, int32_t{7}, int64_t{200});
  ASSERT_FALSE(late);
  EXPECT_EQ(late.error(), caf::sec::request_timeout);
  std::this_thread::sleep_for(400ms); // the late reply arrives meanwhile
  auto next = ask<int32_t>(system, dest, 1s, int32_t{8}, int64_t{1});
  ASSERT_TRUE(next) << system.render(next.error());
  EXPECT_EQ(std::get<0>(*next), 8);
}

TEST_F(bridge_test, many_threads_each_get_their_own_replies) {
  constexpr int threads = 8;
  constexpr int calls = 500;
  std::vector<int> wrong(threads, 0);
  std::vector<std::thread> askers;
  for (int t = 0; t < threads; ++t) {
    askers.emplace_back([&, t] {
      for (int i = 0; i < calls; ++i) {
        auto x = static_cast<int32_t>(t * calls + i);
        auto reply = ask<int32_t, std::string>(system, dest, 5s, x);
        if (!reply || std::get<0>(*reply) != x + 1 ||
            std::get<1>(*reply) != std::to_string(x))
          ++wrong[static_cast<size_t>(t)];
      }
    });
  }
  for (auto& asker : askers)
    asker.join();
  for (int t = 0; t < threads; ++t)
    EXPECT_EQ(wrong[static_cast<size_t>(t)], 0) << "thread " << t;
}

} // namespace
} // namespace actorserve
