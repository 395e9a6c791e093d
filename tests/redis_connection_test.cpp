// The Redis URL and the hiredis connection, against a real redis-server.

#include <thread>

#include <gtest/gtest.h>

#include "actors/redis_connection.hpp"
#include "config/model_config.hpp"
#include "messages/error.hpp"
#include "tests/redis_server.hpp"

namespace actorserve {
namespace {

using namespace std::chrono_literals;

TEST(RedisUrl, ParsesHostPortPasswordAndDatabase) {
  auto endpoint = parse_redis_url("redis://:s3cret@cache.internal:6380/2", "redis_url");
  EXPECT_EQ(endpoint.host, "cache.internal");
  EXPECT_EQ(endpoint.port, 6380);
  EXPECT_EQ(endpoint.password, "s3cret");
  EXPECT_EQ(endpoint.db, 2);
  EXPECT_EQ(loggable_url(endpoint), "redis://:***@cache.internal:6380/2");
  auto plain = parse_redis_url("redis://127.0.0.1", "redis_url");
  EXPECT_EQ(plain.port, 6379);
  EXPECT_EQ(plain.db, 0);
  EXPECT_EQ(loggable_url(plain), "redis://127.0.0.1:6379/0");
}

TEST(RedisUrl, ErrorsNameTheKeyAndNeverShowThePassword) {
  for (const char* url :
       {"http://:hunter2@h:1", "redis://:hunter2@h:0", "redis://:hunter2@h:1/x",
        "redis://user:hunter2@h:1", "redis://:hunter2@:1", "redis://:@h:1"}) {
    try {
      parse_redis_url(url, "redis_url (--redis-url)");
      ADD_FAILURE() << url << " was accepted";
    } catch (const config_error& e) {
      std::string what = e.what();
      EXPECT_NE(what.find("redis_url (--redis-url)"), std::string::npos) << what;
      EXPECT_EQ(what.find("hunter2"), std::string::npos) << what;
    }
  }
}

redis_settings settings_for(const testing::redis_server& server,
                            std::string password = {}) {
  redis_settings settings;
  settings.endpoint.host = "127.0.0.1";
  settings.endpoint.port = static_cast<uint16_t>(server.port());
  settings.endpoint.password = std::move(password);
  settings.timeout = 500ms;
  settings.max_backoff = 400ms;
  return settings;
}

TEST(RedisConnection, RunsBinarySafeCommandsPipelinesAndScripts) {
  testing::redis_server server;
  redis_connection redis{settings_for(server)};
  std::string value{"a\0b\r\n", 5};
  ASSERT_TRUE(redis.run({"SET", "k", value}));
  auto got = redis.run({"GET", "k"});
  ASSERT_TRUE(got) << to_string(got.error());
  EXPECT_EQ(got->text, value);
  EXPECT_TRUE(redis.run({"GET", "absent"})->is_nil());
  auto replies =
      redis.run_all({{"INCR", "n"}, {"INCR", "n"}, {"LRANGE", "k2", "0", "-1"}});
  ASSERT_TRUE(replies);
  EXPECT_EQ((*replies)[1].integer, 2);
  EXPECT_EQ((*replies)[2].type, redis_reply::kind::array);
  auto sum = redis.eval("return redis.call('INCRBY', KEYS[1], ARGV[1])", {"n"}, {"40"});
  ASSERT_TRUE(sum);
  EXPECT_EQ(sum->integer, 42);
  // An error reply is an error value, and the connection stays usable.
  auto wrong = redis.run({"LPUSH", "k", "x"}); // k holds a string
  ASSERT_FALSE(wrong);
  EXPECT_EQ(to_api_error(wrong.error()).code, ec::internal);
  EXPECT_TRUE(redis.run({"PING"}));
}

TEST(RedisConnection, AuthenticatesAndRefusesAWrongPassword) {
  testing::redis_server server{"pw-1"};
  redis_connection right{settings_for(server, "pw-1")};
  EXPECT_TRUE(right.run({"PING"}));
  redis_connection wrong{settings_for(server, "nope")};
  auto answer = wrong.run({"PING"});
  ASSERT_FALSE(answer);
  EXPECT_EQ(to_api_error(answer.error()).code, ec::unavailable);
  EXPECT_EQ(to_string(answer.error()).find("nope"), std::string::npos);
}

TEST(RedisConnection, FailsFastWhileRedisIsAwayAndReconnectsWhenItReturns) {
  testing::redis_server server;
  redis_connection redis{settings_for(server)};
  ASSERT_TRUE(redis.run({"SET", "k", "1"}));
  server.stop();
  auto gone = redis.run({"GET", "k"});
  ASSERT_FALSE(gone);
  EXPECT_EQ(to_api_error(gone.error()).code, ec::unavailable);
  EXPECT_FALSE(redis.connected());
  // Within the backoff, calls fail without dialling.
  EXPECT_FALSE(redis.run({"PING"}));
  server.start();
  bool back = false;
  for (int attempt = 0; attempt < 50 && !back; ++attempt) {
    back = static_cast<bool>(redis.run({"PING"}));
    if (!back)
      std::this_thread::sleep_for(100ms);
  }
  EXPECT_TRUE(back);
  EXPECT_TRUE(redis.run({"GET", "k"})->is_nil()); // the new server is empty
}

} // namespace
} // namespace actorserve
