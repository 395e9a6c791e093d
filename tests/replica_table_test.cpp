// The replica table alone: least outstanding requests, local first when
// equal, turns between equal remote nodes, versions, and members leaving.

#include <gtest/gtest.h>

#include <map>

#include "actors/replica_table.hpp"

namespace actorserve {
namespace {

using member = replica_table::member;

TEST(replica_table, no_member_no_choice) {
  replica_table table;
  EXPECT_FALSE(table.choose(""));
  table.update({{"a", {"1"}, false}});
  table.remove("a");
  EXPECT_FALSE(table.choose(""));
}

TEST(replica_table, picks_the_member_with_fewest_outstanding_requests) {
  replica_table table;
  table.update({{"a", {"1"}, false}, {"b", {"1"}, false}});
  table.started("a");
  table.started("a");
  table.started("b");
  EXPECT_EQ(table.choose(""), "b");
  table.finished("a");
  table.finished("a");
  EXPECT_EQ(table.choose(""), "a");
}

TEST(replica_table, prefers_the_local_member_when_equal) {
  replica_table table;
  table.update({{"a", {"1"}, false}, {"local", {"1"}, true}, {"z", {"1"}, false}});
  for (int i = 0; i < 5; ++i)
    EXPECT_EQ(table.choose(""), "local");
  table.started("local");
  auto other = table.choose("");
  EXPECT_TRUE(other == "a" || other == "z");
}

TEST(replica_table, equal_remote_members_take_turns) {
  replica_table table;
  table.update({{"a", {"1"}, false}, {"b", {"1"}, false}});
  std::map<std::string, int> chosen;
  for (int i = 0; i < 10; ++i)
    ++chosen[*table.choose("")];
  EXPECT_EQ(chosen["a"], 5);
  EXPECT_EQ(chosen["b"], 5);
}

TEST(replica_table, a_pinned_version_goes_where_it_is_served) {
  replica_table table;
  table.update({{"a", {"1"}, true}, {"b", {"1", "2"}, false}});
  table.started("b");
  table.started("b");
  EXPECT_EQ(table.choose("2"), "b");
  EXPECT_EQ(table.choose("1"), "a");
  // Nobody advertises version 9: any member, whose router then answers.
  EXPECT_EQ(table.choose("9"), "a");
}

TEST(replica_table, members_without_available_versions_get_no_unpinned_requests) {
  replica_table table;
  table.update({{"loading", {}, true}, {"b", {"1"}, false}});
  table.started("b");
  EXPECT_EQ(table.choose(""), "b");
}

TEST(replica_table, update_keeps_counts_of_staying_members_and_reports_who_left) {
  replica_table table;
  table.update({{"a", {"1"}, false}, {"b", {"1"}, false}});
  table.started("a");
  auto left = table.update({{"a", {"1", "2"}, false}, {"c", {"1"}, false}});
  EXPECT_EQ(left, std::vector<std::string>{"b"});
  EXPECT_EQ(table.outstanding("a"), 1);
  EXPECT_EQ(table.outstanding("c"), 0);
  EXPECT_EQ(table.size(), 2u);
  EXPECT_EQ(table.choose("2"), "a");
}

} // namespace
} // namespace actorserve
