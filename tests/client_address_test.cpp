// Which address a request comes from: X-Forwarded-For only from trusted
// proxies (http/client_address).

#include <gtest/gtest.h>

#include "http/client_address.hpp"

namespace actorserve {
namespace {

TEST(client_address, canonical_ip_accepts_only_ip_literals) {
  EXPECT_EQ(canonical_ip("10.0.0.1"), "10.0.0.1");
  EXPECT_EQ(canonical_ip("2001:DB8:0:0::1"), "2001:db8::1");
  EXPECT_EQ(canonical_ip("::ffff:192.0.2.7"), "192.0.2.7");
  EXPECT_EQ(canonical_ip("example.com"), std::nullopt);
  EXPECT_EQ(canonical_ip("10.0.0.1:80"), std::nullopt);
  EXPECT_EQ(canonical_ip(std::string(10000, '1')), std::nullopt);
  EXPECT_EQ(canonical_ip(std::string("10.0.0.1\0x", 10)), std::nullopt);
  EXPECT_EQ(canonical_ip(""), std::nullopt);
}

TEST(client_address, forwarded_for_from_an_untrusted_peer_is_ignored) {
  client_address_resolver resolver{"10.0.0.5"};
  EXPECT_EQ(resolver.client_ip("192.0.2.1", "203.0.113.9"), "192.0.2.1");
  client_address_resolver nobody_trusted{""};
  EXPECT_EQ(nobody_trusted.client_ip("127.0.0.1", "203.0.113.9"), "127.0.0.1");
}

TEST(client_address, the_rightmost_untrusted_entry_is_the_client) {
  client_address_resolver resolver{"10.0.0.5, 10.0.0.6,2001:db8::5"};
  EXPECT_EQ(resolver.client_ip("10.0.0.5", "203.0.113.9"), "203.0.113.9");
  // A client cannot pick its address by prepending entries.
  EXPECT_EQ(resolver.client_ip("10.0.0.5", "1.1.1.1, 203.0.113.9, 10.0.0.6"),
            "203.0.113.9");
  EXPECT_EQ(resolver.client_ip("2001:db8:0::5", "2001:db8::77"), "2001:db8::77");
  // Only trusted hops: the leftmost of them is the best guess.
  EXPECT_EQ(resolver.client_ip("10.0.0.5", "10.0.0.6"), "10.0.0.6");
  // No header: the proxy itself.
  EXPECT_EQ(resolver.client_ip("10.0.0.5", ""), "10.0.0.5");
}

TEST(client_address, junk_in_forwarded_for_stops_at_the_trusted_hop) {
  client_address_resolver resolver{"10.0.0.5,10.0.0.6"};
  EXPECT_EQ(resolver.client_ip("10.0.0.5", "203.0.113.9, not-an-ip"), "10.0.0.5");
  EXPECT_EQ(resolver.client_ip("10.0.0.5", "evil, 10.0.0.6"), "10.0.0.6");
  EXPECT_EQ(resolver.client_ip("10.0.0.5", " , ,"), "10.0.0.5");
  std::string many;
  for (int i = 0; i < 1000; ++i)
    many += "10.0.0.6,";
  EXPECT_EQ(resolver.client_ip("10.0.0.5", many + "10.0.0.6"), "10.0.0.6");
}

} // namespace
} // namespace actorserve
