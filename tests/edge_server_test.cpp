// The edge's generated request ids: 32 lowercase hex digits (128 random
// bits), never repeated.

#include <gtest/gtest.h>

#include <set>
#include <string>

#include "http/edge_server.hpp"

namespace actorserve {
namespace {

TEST(random_request_id, is_32_lowercase_hex_digits_and_never_repeats) {
  std::set<std::string> seen;
  std::set<char> digits_used;
  for (int i = 0; i < 10000; ++i) {
    auto id = random_request_id();
    ASSERT_EQ(id.size(), 32u) << id;
    for (char c : id) {
      ASSERT_TRUE((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')) << id;
      digits_used.insert(c);
    }
    EXPECT_TRUE(seen.insert(id).second) << "repeated: " << id;
  }
  EXPECT_EQ(digits_used.size(), 16u); // every hex digit turns up
}

} // namespace
} // namespace actorserve
