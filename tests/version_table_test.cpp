// The router's choice of version, without actors: pinned versions, default,
// fallbacks, and exact weighted splits.

#include <gtest/gtest.h>

#include "actors/version_table.hpp"
#include "messages/error.hpp"

namespace actorserve {
namespace {

std::string chosen(version_table& table, const std::string& pinned = {}) {
  auto result = table.choose(pinned);
  return result ? result->first : "error:" + to_api_error(result.error()).message;
}

ec chosen_error(version_table& table, const std::string& pinned = {}) {
  auto result = table.choose(pinned);
  EXPECT_FALSE(result);
  return result ? ec::internal : to_api_error(result.error()).code;
}

TEST(version_order, orders_numerically) {
  version_order less;
  EXPECT_TRUE(less("2", "10"));
  EXPECT_FALSE(less("10", "2"));
  EXPECT_TRUE(less("9", "11"));
  EXPECT_FALSE(less("3", "3"));
}

TEST(version_names, only_positive_integers_without_leading_zeros) {
  EXPECT_TRUE(is_version_name("1"));
  EXPECT_TRUE(is_version_name("20"));
  for (auto bad :
       {"", "0", "01", "1a", "../1", "1/..", "-1", "%2e%2e", "1234567890123456789"})
    EXPECT_FALSE(is_version_name(bad)) << bad;
}

TEST(version_table, unpinned_requests_go_to_the_highest_available_version) {
  version_table table;
  table.add("1", {});
  table.add("2", {});
  EXPECT_EQ(chosen_error(table), ec::model_loading);
  table.replace("1", {}, 10);
  EXPECT_EQ(chosen(table), "1");
  table.replace("2", {}, 10);
  EXPECT_EQ(chosen(table), "2");
  table.mark_failed("2", "crashed");
  EXPECT_EQ(chosen(table), "1");
}

TEST(version_table, configured_default_wins_while_available) {
  version_table table;
  table.add("1", {});
  table.add("2", {});
  table.replace("1", {}, 1);
  table.replace("2", {}, 1);
  table.set_traffic("1", {});
  EXPECT_EQ(chosen(table), "1");
  EXPECT_EQ(table.effective_default(), "1");
  table.mark_failed("1", "gone");
  EXPECT_EQ(chosen(table), "2");
}

TEST(version_table, pinned_versions_are_checked) {
  version_table table;
  table.add("1", {});
  table.add("2", {});
  table.replace("1", {}, 1);
  EXPECT_EQ(chosen(table, "1"), "1");
  EXPECT_EQ(chosen_error(table, "3"), ec::version_not_found);
  EXPECT_EQ(chosen_error(table, "2"), ec::model_loading);
  table.mark_failed("2", "bad archive");
  EXPECT_EQ(chosen_error(table, "2"), ec::unavailable);
  EXPECT_NE(chosen(table, "2").find("bad archive"), std::string::npos);
}

TEST(version_table, nothing_available_is_unavailable_once_loading_ends) {
  version_table table;
  table.add("1", {});
  table.mark_failed("1", "bad");
  EXPECT_EQ(chosen_error(table), ec::unavailable);
}

TEST(version_table, weighted_split_is_exact_over_a_window) {
  version_table table;
  table.add("1", {});
  table.add("2", {});
  table.replace("1", {}, 1);
  table.replace("2", {}, 1);
  table.set_traffic("", {{"1", 70}, {"2", 30}});
  std::map<std::string, int> counts;
  for (int i = 0; i < 1000; ++i)
    counts[chosen(table)] += 1;
  EXPECT_EQ(counts["1"], 700);
  EXPECT_EQ(counts["2"], 300);
  // Every window of 10 holds exactly 7 and 3: smooth, not bursty.
  for (int window = 0; window < 5; ++window) {
    std::map<std::string, int> local;
    for (int i = 0; i < 10; ++i)
      local[chosen(table)] += 1;
    EXPECT_EQ(local["1"], 7);
    EXPECT_EQ(local["2"], 3);
  }
}

TEST(version_table, weights_skip_versions_that_are_not_available) {
  version_table table;
  table.add("1", {});
  table.add("2", {});
  table.replace("1", {}, 1);
  table.set_traffic("", {{"1", 50}, {"2", 50}});
  for (int i = 0; i < 10; ++i)
    EXPECT_EQ(chosen(table), "1");
}

TEST(version_table, status_lists_versions_in_order_with_state_and_error) {
  version_table table;
  table.add("10", {});
  table.add("2", {});
  table.replace("10", {}, 42);
  table.mark_failed("2", "bad archive");
  table.set_traffic("", {{"10", 1}});
  auto status = table.status("digits");
  EXPECT_EQ(status.name, "digits");
  EXPECT_EQ(status.default_version, "10");
  ASSERT_EQ(status.versions.size(), 2u);
  EXPECT_EQ(status.versions[0].version, "2");
  EXPECT_EQ(status.versions[0].state, version_state::failed);
  EXPECT_EQ(status.versions[0].error, "bad archive");
  EXPECT_EQ(status.versions[1].version, "10");
  EXPECT_EQ(status.versions[1].load_time_ms, 42);
  EXPECT_EQ(status.traffic.at("10"), 1);
}

} // namespace
} // namespace actorserve
