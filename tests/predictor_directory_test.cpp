// The registry's published table of predictors: lookups before and after a
// publish, entries that outlive a newer table, and readers that see whole
// entries, in order, while the registry publishes.

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "actors/predictor_directory.hpp"
#include "messages/error.hpp"

namespace actorserve {
namespace {

directory_entry entry_named(const std::string& spec_name) {
  directory_entry entry;
  entry.spec.name = spec_name;
  return entry;
}

ec code_of(const caf::error& err) {
  return to_api_error(err).code;
}

TEST(predictor_directory, is_loading_until_the_first_publish) {
  predictor_directory directory;
  auto found = directory.find("digits");
  ASSERT_FALSE(found);
  EXPECT_EQ(code_of(found.error()), ec::model_loading);
  EXPECT_TRUE(directory.names().empty());
}

TEST(predictor_directory, finds_published_models_only) {
  predictor_directory directory;
  directory.publish(
      {{"digits", entry_named("digits")}, {"affine", entry_named("affine")}});
  auto found = directory.find("affine");
  ASSERT_TRUE(found);
  EXPECT_EQ((*found)->spec.name, "affine");
  auto missing = directory.find("resnet18");
  ASSERT_FALSE(missing);
  EXPECT_EQ(code_of(missing.error()), ec::model_not_found);
  EXPECT_NE(to_api_error(missing.error()).message.find("resnet18"), std::string::npos);
  EXPECT_EQ(directory.names(), (std::vector<std::string>{"affine", "digits"}));
}

TEST(predictor_directory, an_entry_held_outlives_the_next_publish) {
  predictor_directory directory;
  directory.publish({{"digits", entry_named("first")}});
  auto held = directory.find("digits");
  ASSERT_TRUE(held);
  directory.publish({{"digits", entry_named("second")}});
  directory.publish({});
  EXPECT_EQ((*held)->spec.name, "first");
  EXPECT_EQ(code_of(directory.find("digits").error()), ec::model_not_found);
}

TEST(predictor_directory, readers_see_whole_entries_in_order_while_tables_change) {
  // Generation g publishes an entry whose name and label both say g. A
  // reader must see them agree (the entry never changes under it) and the
  // generations it sees must never go back.
  predictor_directory directory;
  auto table_of = [](int64_t generation) {
    auto entry = entry_named(std::to_string(generation));
    entry.spec.labels = {entry.spec.name};
    return predictor_directory::table{{"digits", entry}};
  };
  directory.publish(table_of(0));
  constexpr int64_t last_generation = 2000;
  std::atomic<bool> done{false};
  std::atomic<int64_t> reads{0};
  std::atomic<int64_t> faults{0};
  std::vector<std::thread> readers;
  for (int r = 0; r < 4; ++r) {
    readers.emplace_back([&] {
      int64_t seen = 0;
      while (!done) {
        auto found = directory.find("digits");
        if (!found || (*found)->spec.labels.size() != 1 ||
            (*found)->spec.labels[0] != (*found)->spec.name ||
            std::stoll((*found)->spec.name) < seen) {
          ++faults;
          continue;
        }
        seen = std::stoll((*found)->spec.name);
        ++reads;
      }
    });
  }
  for (int64_t generation = 1; generation <= last_generation; ++generation)
    directory.publish(table_of(generation));
  done = true;
  for (auto& reader : readers)
    reader.join();
  EXPECT_EQ(faults.load(), 0);
  EXPECT_GT(reads.load(), 0);
  EXPECT_EQ((*directory.find("digits"))->spec.name, std::to_string(last_generation));
}

} // namespace
} // namespace actorserve
