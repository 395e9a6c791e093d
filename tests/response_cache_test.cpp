// The response cache's parts without a server: the LRU (bytes bound,
// recency, replace), the Redis value codec, the digests, and both cache
// actors in front of a fake batcher that counts the requests it answers (the
// Redis one against a real redis-server, stopped and started again).

#include <atomic>
#include <map>
#include <memory>
#include <thread>

#include <gtest/gtest.h>

#include <caf/all.hpp>

#include "actors/response_cache.hpp"
#include "actors/response_cache_entry.hpp"
#include "actors/response_lru.hpp"
#include "messages/digest.hpp"
#include "messages/error.hpp"
#include "messages/type_ids.hpp"
#include "telemetry/metrics.hpp"
#include "tests/redis_server.hpp"
#include "tests/test_support.hpp"

namespace actorserve {
namespace {

using namespace std::chrono_literals;

tensor rows(int64_t count, float value) {
  return {{count, 4}, std::vector<float>(static_cast<size_t>(count * 4), value)};
}

// --- LRU ----------------------------------------------------------------------

TEST(response_lru, finds_what_it_stored_and_replaces_by_key) {
  response_lru lru{1 << 20};
  EXPECT_EQ(lru.find("a"), nullptr);
  lru.put("a", rows(1, 1));
  ASSERT_NE(lru.find("a"), nullptr);
  EXPECT_EQ(lru.find("a")->values, rows(1, 1).values);
  lru.put("a", rows(2, 7)); // replaces, not a second entry
  EXPECT_EQ(lru.size(), 1u);
  EXPECT_EQ(lru.find("a")->shape, (std::vector<int64_t>{2, 4}));
  EXPECT_EQ(lru.bytes(), response_lru::cost("a", rows(2, 7)));
}

TEST(response_lru, evicts_the_least_recently_used_to_stay_within_its_bytes) {
  auto one = response_lru::cost("k1", rows(1, 0));
  response_lru lru{3 * one};
  lru.put("k1", rows(1, 1));
  lru.put("k2", rows(1, 2));
  lru.put("k3", rows(1, 3));
  EXPECT_EQ(lru.bytes(), 3 * one);
  ASSERT_NE(lru.find("k1"), nullptr); // k1 is now the most recent; k2 the least
  lru.put("k4", rows(1, 4));
  EXPECT_EQ(lru.find("k2"), nullptr);
  EXPECT_NE(lru.find("k1"), nullptr);
  EXPECT_NE(lru.find("k3"), nullptr);
  EXPECT_NE(lru.find("k4"), nullptr);
  EXPECT_LE(lru.bytes(), 3 * one);
  // A big entry evicts as many as it needs.
  lru.put("k5", rows(2, 5));
  EXPECT_LE(lru.bytes(), 3 * one);
  EXPECT_NE(lru.find("k5"), nullptr);
  EXPECT_EQ(lru.size(), 2u);
}

TEST(response_lru, never_holds_an_entry_larger_than_its_bound) {
  response_lru lru{response_lru::cost("small", rows(1, 0))};
  lru.put("small", rows(1, 1));
  lru.put("big", rows(100, 1));
  EXPECT_EQ(lru.find("big"), nullptr);
  EXPECT_NE(lru.find("small"), nullptr); // nothing evicted for an entry that never fits
  response_lru none{0};
  none.put("a", rows(1, 1));
  EXPECT_EQ(none.size(), 0u);
  EXPECT_EQ(none.bytes(), 0);
}

// --- entries and digests ---------------------------------------------------------

TEST(response_cache_entry, outputs_round_trip_and_damaged_bytes_are_refused) {
  tensor output{{2, 3}, {1.5f, -0.0f, 3e38f, 1e-38f, 0.0f, -7.25f}};
  auto bytes = encode_cached_output(output);
  auto copy = decode_cached_output(bytes);
  ASSERT_TRUE(copy);
  EXPECT_EQ(copy->shape, output.shape);
  EXPECT_EQ(copy->values, output.values);
  EXPECT_FALSE(decode_cached_output(""));
  EXPECT_FALSE(decode_cached_output("xyz1" + bytes.substr(4)));
  EXPECT_FALSE(decode_cached_output(bytes.substr(0, bytes.size() - 1)));
  EXPECT_FALSE(decode_cached_output(bytes + "x"));
  auto huge = encode_cached_output({{int64_t{1} << 40, 1 << 20}, {}});
  EXPECT_FALSE(decode_cached_output(huge));
  auto negative = encode_cached_output({{-1}, {}});
  EXPECT_FALSE(decode_cached_output(negative));
}

TEST(response_cache_entry, key_text_keeps_every_part_apart) {
  response_cache_key key{"a:b", "12", std::string(64, 'f'), std::string(64, '0')};
  EXPECT_EQ(cache_key_text(key),
            "12:" + std::string(64, 'f') + ":" + std::string(64, '0') + ":a:b");
  auto other_version = key;
  other_version.version = "2";
  auto other_identity = key;
  other_identity.model_identity = std::string(64, 'e');
  EXPECT_NE(cache_key_text(key), cache_key_text(other_version));
  EXPECT_NE(cache_key_text(key), cache_key_text(other_identity));
}

TEST(digest, tensors_differ_by_shape_and_by_any_bit_of_a_value) {
  tensor x{{2, 2}, {1, 2, 3, 4}};
  auto digest = tensor_digest(x);
  EXPECT_EQ(digest.size(), 64u);
  EXPECT_EQ(digest, tensor_digest(tensor{{2, 2}, {1, 2, 3, 4}}));
  EXPECT_NE(digest, tensor_digest(tensor{{1, 4}, {1, 2, 3, 4}}));
  EXPECT_NE(digest, tensor_digest(tensor{{4}, {1, 2, 3, 4}}));
  EXPECT_NE(digest, tensor_digest(tensor{{2, 2}, {1, 2, 3, 4.0000005f}}));
  // SHA-256 of the empty string, to be sure it is SHA-256 and hex.
  testing::temp_dir dir;
  testing::write_file(dir.path() / "empty", "");
  auto empty = file_digest(dir.path() / "empty");
  ASSERT_TRUE(empty);
  EXPECT_EQ(*empty, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  testing::write_file(dir.path() / "abc", "abc");
  EXPECT_EQ(*file_digest(dir.path() / "abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_FALSE(file_digest(dir.path() / "missing"));
}

// --- the cache actors ------------------------------------------------------------

/// A batcher that answers every request with its input + 1 and counts them.
batcher_actor counting_batcher(caf::actor_system& system,
                               std::shared_ptr<std::atomic<int>> calls) {
  return caf::actor_cast<batcher_actor>(system.spawn([calls]() -> caf::behavior {
    return {
        [calls](atom::predict, predict_request& request) {
          ++*calls;
          for (auto& value : request.input.values)
            value += 1;
          return predict_reply{"1", std::move(request.input), {}, {}};
        },
    };
  }));
}

/// A batcher that holds every request until its cancel arrives, then answers
/// it `cancelled`: it hears of a cancel only through the cache.
batcher_actor holding_batcher(caf::actor_system& system) {
  struct state {
    std::map<uint64_t, caf::typed_response_promise<predict_reply>> held;
  };
  return system.spawn(
      [](batcher_actor::stateful_pointer<state> self) -> batcher_actor::behavior_type {
        return {
            [](atom::load) { return int64_t{0}; },
            [=](atom::predict, predict_request& request) -> caf::result<predict_reply> {
              auto promise = self->make_response_promise<predict_reply>();
              self->state.held.emplace(request.cancel_key, promise);
              return promise;
            },
            [](atom::stats) { return batcher_stats{}; },
            [](atom::drain) {},
            [=](atom::cancel, uint64_t key) {
              if (auto found = self->state.held.find(key);
                  found != self->state.held.end())
                found->second.deliver(make_error(ec::cancelled, "withdrawn"));
            },
        };
      });
}

struct response_cache_actors : ::testing::Test {
  caf::actor_system system{testing::registered_actor_config()};
  caf::scoped_actor self{system};
  std::shared_ptr<std::atomic<int>> calls = std::make_shared<std::atomic<int>>(0);
  batcher_actor batcher = counting_batcher(system, calls);

  static response_cache_key key_of(const tensor& input) {
    return {"m", "1", std::string(64, 'c'), tensor_digest(input)};
  }

  predict_reply ask(const response_cache_actor& cache, const tensor& input) {
    predict_reply result;
    self->request(cache, 10s, atom::predict_v, batcher, key_of(input),
                  predict_request{"", input, 5000})
        .receive([&](predict_reply& reply) { result = std::move(reply); },
                 [&](caf::error& err) { ADD_FAILURE() << system.render(err); });
    return result;
  }

  /// A miss waiting in a batcher is withdrawn by a cancel sent to the cache.
  void expect_cancel_passed_on(const response_cache_actor& cache) {
    auto holder = holding_batcher(system);
    predict_request request{"", rows(1, 9), 5000, 42};
    auto pending = self->request(cache, 10s, atom::predict_v, holder,
                                 key_of(request.input), request);
    self->send(cache, atom::cancel_v, uint64_t{42});
    pending.receive(
        [](predict_reply&) { ADD_FAILURE() << "answered, not withdrawn"; },
        [](caf::error& err) { EXPECT_EQ(to_api_error(err).code, ec::cancelled); });
    self->send_exit(holder, caf::exit_reason::user_shutdown);
  }

  ~response_cache_actors() override {
    self->send_exit(batcher, caf::exit_reason::user_shutdown);
  }
};

TEST_F(response_cache_actors, memory_cache_answers_a_repeat_without_the_batcher) {
  metrics stats;
  response_cache_settings settings;
  settings.max_bytes = 1 << 20;
  settings.stats = std::make_shared<cache_metrics>(*stats.registry());
  auto cache = spawn_response_cache(system, settings);
  auto first = ask(cache, rows(1, 1));
  EXPECT_EQ(first.cache, "miss");
  EXPECT_EQ(first.output.values, rows(1, 2).values);
  auto second = ask(cache, rows(1, 1));
  EXPECT_EQ(second.cache, "hit");
  EXPECT_EQ(second.version, "1");
  EXPECT_EQ(second.output.values, first.output.values);
  EXPECT_EQ(second.output.shape, first.output.shape);
  EXPECT_EQ(calls->load(), 1);
  EXPECT_EQ(ask(cache, rows(1, 5)).cache, "miss");
  EXPECT_EQ(calls->load(), 2);
  expect_cancel_passed_on(cache);
  auto text = stats.render();
  EXPECT_NE(text.find(R"(actorserve_cache_requests_total{model="m",result="hit"} 1)"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find(R"(actorserve_cache_requests_total{model="m",result="miss"} 3)"),
            std::string::npos)
      << text;
  self->send_exit(cache, caf::exit_reason::user_shutdown);
}

response_cache_settings redis_cache_settings(const testing::redis_server& server) {
  response_cache_settings settings;
  settings.store = "redis";
  settings.redis.endpoint.host = "127.0.0.1";
  settings.redis.endpoint.port = static_cast<uint16_t>(server.port());
  settings.redis.endpoint.password = "pw";
  settings.redis.max_backoff = 200ms;
  return settings;
}

TEST_F(response_cache_actors, redis_cache_is_shared_and_bypassed_while_redis_is_away) {
  testing::redis_server server{"pw"};
  auto a = spawn_response_cache(system, redis_cache_settings(server));
  auto b = spawn_response_cache(system, redis_cache_settings(server));
  EXPECT_EQ(ask(a, rows(1, 1)).cache, "miss");
  auto shared = ask(b, rows(1, 1)); // stored by a, found by b
  EXPECT_EQ(shared.cache, "hit");
  EXPECT_EQ(shared.output.values, rows(1, 2).values);
  EXPECT_EQ(calls->load(), 1);
  expect_cancel_passed_on(b);
  EXPECT_NE(server.cli("TTL " + std::string{redis_cache_prefix} +
                       cache_key_text(key_of(rows(1, 1)))),
            "-1\n"); // stored with an expiry

  server.stop();
  auto bypassed = ask(a, rows(1, 1));
  EXPECT_EQ(bypassed.cache, "miss"); // answered by the batcher all the same
  EXPECT_EQ(bypassed.output.values, rows(1, 2).values);
  EXPECT_EQ(calls->load(), 2);

  server.start(); // empty: the first ask after the backoff misses, then hits
  std::string outcome;
  for (int attempt = 0; attempt < 100 && outcome != "hit"; ++attempt) {
    outcome = ask(a, rows(1, 1)).cache;
    std::this_thread::sleep_for(50ms);
  }
  EXPECT_EQ(outcome, "hit");
  self->send_exit(a, caf::exit_reason::user_shutdown);
  self->send_exit(b, caf::exit_reason::user_shutdown);
}

} // namespace
} // namespace actorserve
