// Tests of config/repository_watch: the poll's stability rule (a file counts
// once it kept its size and mtime for one scan) and the actions a scan asks
// for. Scans are driven by hand: no timers, no sleeps.

#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

#include "config/repository_watch.hpp"
#include "tests/test_support.hpp"

namespace actorserve {
namespace {

namespace fs = std::filesystem;

file_stamp stamp(std::uintmax_t size, int tick) {
  return {size, fs::file_time_type{} + std::chrono::seconds{tick}};
}

TEST(stability_rule, a_file_settles_once_two_scans_see_the_same_stamp) {
  stability_rule rule;
  EXPECT_FALSE(rule.settled("a", stamp(10, 1))); // first sight
  rule.end_scan();
  EXPECT_FALSE(rule.settled("a", stamp(20, 2))); // still growing
  rule.end_scan();
  EXPECT_FALSE(rule.settled("a", stamp(20, 3))); // same size, touched again
  rule.end_scan();
  EXPECT_TRUE(rule.settled("a", stamp(20, 3)));
  rule.end_scan();
  EXPECT_TRUE(rule.settled("a", stamp(20, 3)));
}

TEST(stability_rule, a_file_missing_from_one_scan_starts_over) {
  stability_rule rule;
  rule.settled("a", stamp(10, 1));
  rule.end_scan();
  rule.end_scan(); // a scan that did not see it
  EXPECT_FALSE(rule.settled("a", stamp(10, 1)));
}

class repository_watch_test : public ::testing::Test {
protected:
  repository_watch_test() {
    write("m/config.json", "{}");
    write("m/1/model.pt", "one");
    watch.prime();
  }

  void write(const std::string& name, const std::string& text) {
    testing::write_file(repository.path() / name, text);
  }

  void append(const std::string& name, const std::string& text) {
    std::ofstream out(repository.path() / name, std::ios::app | std::ios::binary);
    out << text;
  }

  testing::temp_dir repository;
  repository_watch watch{repository.path()};
};

TEST_F(repository_watch_test, what_was_there_at_start_asks_for_nothing) {
  EXPECT_TRUE(watch.scan().empty());
  EXPECT_TRUE(watch.scan().empty());
}

TEST_F(repository_watch_test, a_version_written_in_chunks_loads_once_complete) {
  write("m/2/model.pt", "chunk");
  EXPECT_TRUE(watch.scan().empty()); // first sight
  append("m/2/model.pt", "more");
  EXPECT_TRUE(watch.scan().empty()); // grew
  append("m/2/model.pt", "last");
  EXPECT_TRUE(watch.scan().empty()); // grew again
  auto actions = watch.scan();       // kept its stamp for one scan
  ASSERT_EQ(actions.new_versions.size(), 1u);
  EXPECT_EQ(actions.new_versions.front(), (version_ref{"m", "2"}));
  EXPECT_TRUE(watch.scan().empty()); // reported once
}

TEST_F(repository_watch_test, a_rewritten_version_loads_again_once_settled) {
  write("m/1/model.pt", "a longer archive");
  EXPECT_TRUE(watch.scan().empty());
  EXPECT_EQ(watch.scan().new_versions, (std::vector<version_ref>{{"m", "1"}}));
}

TEST_F(repository_watch_test, a_removed_version_is_reported_at_once) {
  write("m/2/model.pt", "two");
  watch.scan();
  watch.scan(); // loaded
  fs::remove_all(repository.path() / "m" / "2");
  auto actions = watch.scan();
  EXPECT_EQ(actions.gone_versions, (std::vector<version_ref>{{"m", "2"}}));
  EXPECT_TRUE(actions.gone_models.empty());
  EXPECT_TRUE(watch.scan().empty());
}

TEST_F(repository_watch_test, a_new_model_waits_for_every_file_to_settle) {
  write("n/config.json", "{}");
  write("n/1/model.pt", "one");
  EXPECT_TRUE(watch.scan().empty());
  write("n/2/model.pt", "two"); // a second version arrives meanwhile
  EXPECT_TRUE(watch.scan().empty());
  auto actions = watch.scan();
  EXPECT_EQ(actions.new_models, std::vector<std::string>{"n"});
  EXPECT_TRUE(actions.new_versions.empty()); // loading the model loads both
  EXPECT_TRUE(watch.scan().empty());
}

TEST_F(repository_watch_test, a_folder_without_config_or_versions_is_no_model) {
  write("x/1/model.pt", "no config");
  write("y/config.json", "{}");
  watch.scan();
  EXPECT_TRUE(watch.scan().empty());
}

TEST_F(repository_watch_test, a_changed_config_is_one_reload_once_settled) {
  write("m/config.json", R"({"batching": {}})");
  EXPECT_TRUE(watch.scan().empty());
  auto actions = watch.scan();
  EXPECT_EQ(actions.changed_configs, std::vector<std::string>{"m"});
  EXPECT_TRUE(actions.new_versions.empty());
  EXPECT_TRUE(watch.scan().empty());
}

TEST_F(repository_watch_test, a_removed_model_folder_unloads_the_model) {
  fs::remove_all(repository.path() / "m");
  auto actions = watch.scan();
  EXPECT_EQ(actions.gone_models, std::vector<std::string>{"m"});
  EXPECT_TRUE(watch.scan().empty());
  // Put back, it is a new model again once settled.
  write("m/config.json", "{}");
  write("m/1/model.pt", "one");
  watch.scan();
  EXPECT_EQ(watch.scan().new_models, std::vector<std::string>{"m"});
}

} // namespace
} // namespace actorserve
