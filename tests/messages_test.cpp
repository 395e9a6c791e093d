// Every payload that may cross nodes survives a binary round trip, both on
// its own and inside a caf::message (which only works for registered types:
// an unregistered type would travel as an empty message).

#include <gtest/gtest.h>

#include <caf/all.hpp>
#include <caf/binary_deserializer.hpp>
#include <caf/binary_serializer.hpp>

#include "messages/error.hpp"
#include "messages/type_ids.hpp"
#include "tests/test_support.hpp"

namespace actorserve {
namespace {

struct messages_test : ::testing::Test {
  caf::actor_system system{testing::registered_actor_config()};

  template <class T> T round_trip(const T& value) {
    std::vector<char> buffer;
    caf::binary_serializer sink{system, buffer};
    auto copy = value;
    EXPECT_FALSE(sink(copy));
    caf::binary_deserializer source{system, buffer};
    T result;
    EXPECT_FALSE(source(result));
    return result;
  }

  template <class T> T round_trip_in_message(const T& value) {
    std::vector<char> buffer;
    caf::binary_serializer sink{system, buffer};
    auto message = caf::make_message(value);
    EXPECT_FALSE(sink(message));
    caf::binary_deserializer source{system, buffer};
    caf::message result;
    EXPECT_FALSE(source(result));
    EXPECT_TRUE(result.match_elements<T>()) << caf::to_string(result);
    return result.match_elements<T>() ? result.get_as<T>(0) : T{};
  }
};

tensor sample_tensor() {
  return {{2, 3}, {1.5f, -2.0f, 0.0f, 3.25f, 1e-7f, -1e7f}};
}

void expect_equal(const tensor& a, const tensor& b) {
  EXPECT_EQ(a.shape, b.shape);
  EXPECT_EQ(a.values, b.values);
}

TEST_F(messages_test, tensor_round_trips) {
  expect_equal(round_trip(sample_tensor()), sample_tensor());
  expect_equal(round_trip_in_message(sample_tensor()), sample_tensor());
}

TEST_F(messages_test, predict_request_and_reply_round_trip) {
  predict_request request{"7", sample_tensor(),     1234, 0xfedcba9876543210,
                          2,   std::string(64, 'e')};
  for (const auto& copy : {round_trip(request), round_trip_in_message(request)}) {
    EXPECT_EQ(copy.version, "7");
    EXPECT_EQ(copy.input_digest, request.input_digest);
    EXPECT_EQ(copy.priority, 2);
    EXPECT_EQ(copy.timeout_ms, 1234);
    EXPECT_EQ(copy.cancel_key, 0xfedcba9876543210);
    expect_equal(copy.input, request.input);
  }
  predict_reply reply{"3", sample_tensor(), "node-b", "hit"};
  for (const auto& copy : {round_trip(reply), round_trip_in_message(reply)}) {
    EXPECT_EQ(copy.version, "3");
    EXPECT_EQ(copy.node, "node-b");
    EXPECT_EQ(copy.cache, "hit");
    expect_equal(copy.output, reply.output);
  }
}

TEST_F(messages_test, model_spec_round_trips_with_enums_and_labels) {
  model_spec spec;
  spec.name = "digits";
  spec.input.type = input_kind::image;
  spec.input.channels = 1;
  spec.input.color = color_order::bgr;
  spec.input.height = 28;
  spec.input.width = 28;
  spec.input.mean = {0.5f};
  spec.input.std = {0.25f};
  spec.input.shape = {1, 28, 28};
  spec.output.type = output_kind::classification;
  spec.output.top_k = 3;
  spec.output.labels = "labels.txt";
  spec.labels = {"zero", "one"};
  spec.response_cache = true;
  for (const auto& copy : {round_trip(spec), round_trip_in_message(spec)}) {
    EXPECT_EQ(copy.name, "digits");
    EXPECT_TRUE(copy.response_cache);
    EXPECT_EQ(copy.input.type, input_kind::image);
    EXPECT_EQ(copy.input.color, color_order::bgr);
    EXPECT_EQ(copy.input.channels, 1);
    EXPECT_EQ(copy.input.shape, spec.input.shape);
    EXPECT_EQ(copy.input.mean, spec.input.mean);
    EXPECT_EQ(copy.input.std, spec.input.std);
    EXPECT_FLOAT_EQ(copy.input.scale, spec.input.scale);
    EXPECT_EQ(copy.output.type, output_kind::classification);
    EXPECT_EQ(copy.output.top_k, 3);
    EXPECT_EQ(copy.output.labels, "labels.txt");
    EXPECT_EQ(copy.labels, spec.labels);
  }
}

TEST_F(messages_test, response_cache_key_and_handle_round_trip) {
  response_cache_key key{"digits", "2", std::string(64, 'a'), std::string(64, 'b')};
  for (const auto& copy : {round_trip(key), round_trip_in_message(key)}) {
    EXPECT_EQ(copy.model, "digits");
    EXPECT_EQ(copy.version, "2");
    EXPECT_EQ(copy.model_identity, key.model_identity);
    EXPECT_EQ(copy.input_digest, key.input_digest);
  }
  auto cache = caf::actor_cast<response_cache_actor>(
      system.spawn([]() -> caf::behavior { return {[](int) {}}; }));
  EXPECT_EQ(round_trip_in_message(cache).address(), cache.address());
  caf::anon_send_exit(cache, caf::exit_reason::user_shutdown);
}

TEST_F(messages_test, model_status_round_trips) {
  model_status status{"digits",
                      "2",
                      {{"1", 30}, {"2", 70}},
                      {{"1", version_state::failed, "broken archive", 0, "a:1"},
                       {"2", version_state::available, "", 812, "b:2"}}};
  for (const auto& copy : {round_trip(status), round_trip_in_message(status)}) {
    EXPECT_EQ(copy.name, "digits");
    EXPECT_EQ(copy.default_version, "2");
    EXPECT_EQ(copy.traffic, status.traffic);
    ASSERT_EQ(copy.versions.size(), 2u);
    EXPECT_EQ(copy.versions[0].state, version_state::failed);
    EXPECT_EQ(copy.versions[0].error, "broken archive");
    EXPECT_EQ(copy.versions[1].state, version_state::available);
    EXPECT_EQ(copy.versions[1].load_time_ms, 812);
    EXPECT_EQ(copy.versions[0].node, "a:1");
    EXPECT_EQ(copy.versions[1].node, "b:2");
  }
  auto listing = round_trip_in_message(std::vector<model_status>{status, status});
  EXPECT_EQ(listing.size(), 2u);
}

// What registries exchange: catalogs with router handles inside, and the
// replica lists they give their replica sets.
TEST_F(messages_test, catalogs_and_replicas_round_trip_with_their_handles) {
  auto router = caf::actor_cast<router_actor>(
      system.spawn([]() -> caf::behavior { return {[](int) {}}; }));
  model_status status{"digits", "1", {}, {{"1", version_state::available, "", 5, "a"}}};
  model_spec spec;
  spec.name = "digits";
  node_catalog catalog{"a", {{spec, router, status}}};
  auto copy = round_trip_in_message(catalog);
  EXPECT_EQ(copy.node, "a");
  ASSERT_EQ(copy.models.size(), 1u);
  EXPECT_EQ(copy.models[0].spec.name, "digits");
  EXPECT_EQ(copy.models[0].router.address(), router.address());
  EXPECT_EQ(copy.models[0].status.versions.at(0).node, "a");

  std::vector<replica> replicas{{"a", router, {"1", "2"}, true}};
  auto list = round_trip_in_message(replicas);
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0].node, "a");
  EXPECT_EQ(list[0].router.address(), router.address());
  EXPECT_EQ(list[0].versions, replicas[0].versions);
  EXPECT_TRUE(list[0].local);
  caf::anon_send_exit(router, caf::exit_reason::user_shutdown);
}

TEST_F(messages_test, batcher_stats_round_trip) {
  batcher_stats stats{5, 40, 3, 2, 1};
  auto copy = round_trip_in_message(stats);
  EXPECT_EQ(copy.batches, 5);
  EXPECT_EQ(copy.batched_rows, 40);
  EXPECT_EQ(copy.queue_depth, 3);
  EXPECT_EQ(copy.rejected_overloaded, 2);
  EXPECT_EQ(copy.expired, 1);
}

TEST_F(messages_test, errors_keep_code_and_message_across_the_wire) {
  auto err = make_error(ec::version_not_found, "version 9 does not exist");
  auto copy = round_trip(err);
  auto api = to_api_error(copy);
  EXPECT_EQ(api.code, ec::version_not_found);
  EXPECT_EQ(api.message, "version 9 does not exist");
  EXPECT_EQ(http_status(api.code), 404);
}

TEST(error_mapping, every_code_has_its_contract_status) {
  EXPECT_EQ(http_status(ec::invalid_json), 400);
  EXPECT_EQ(http_status(ec::invalid_request), 400);
  EXPECT_EQ(http_status(ec::invalid_input), 400);
  EXPECT_EQ(http_status(ec::unauthorized), 401);
  EXPECT_EQ(http_status(ec::forbidden), 403);
  EXPECT_EQ(http_status(ec::model_not_found), 404);
  EXPECT_EQ(http_status(ec::version_not_found), 404);
  EXPECT_EQ(http_status(ec::job_not_found), 404);
  EXPECT_EQ(http_status(ec::conflict), 409);
  EXPECT_EQ(http_status(ec::payload_too_large), 413);
  EXPECT_EQ(http_status(ec::unsupported_media_type), 415);
  EXPECT_EQ(http_status(ec::rate_limited), 429);
  EXPECT_EQ(http_status(ec::model_loading), 503);
  EXPECT_EQ(http_status(ec::overloaded), 503);
  EXPECT_EQ(http_status(ec::unavailable), 503);
  EXPECT_EQ(http_status(ec::deadline_exceeded), 504);
  EXPECT_EQ(http_status(ec::internal), 500);
  EXPECT_EQ(http_status(ec::cancelled), 499);
  EXPECT_EQ(code_name(ec::model_loading), "model_loading");
  EXPECT_EQ(code_name(ec::cancelled), "cancelled");
  EXPECT_TRUE(wants_retry_after(ec::overloaded));
  EXPECT_TRUE(wants_retry_after(ec::rate_limited));
  EXPECT_FALSE(wants_retry_after(ec::invalid_input));
  EXPECT_FALSE(wants_retry_after(ec::cancelled));
}

TEST(error_mapping, caf_timeouts_become_deadline_exceeded) {
  EXPECT_EQ(to_api_error(caf::make_error(caf::sec::request_timeout)).code,
            ec::deadline_exceeded);
  EXPECT_EQ(to_api_error(caf::make_error(caf::sec::request_receiver_down)).code,
            ec::unavailable);
}

} // namespace
} // namespace actorserve
