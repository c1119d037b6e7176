// util::client_address: which address is the client's behind trusted proxies.
#include "core/util/net.h"

#include <gtest/gtest.h>

#include "core/config/config.h"

namespace wmk::util {

TEST(NetTest, CanonicalIp) {
  EXPECT_EQ(canonical_ip("192.0.2.1"), "192.0.2.1");
  EXPECT_EQ(canonical_ip("2001:DB8:0::1"), "2001:db8::1");
  EXPECT_FALSE(canonical_ip("example.org").has_value());
  EXPECT_FALSE(canonical_ip("192.0.2.1:80").has_value());
  EXPECT_FALSE(canonical_ip("192.0.2.0/24").has_value());
  EXPECT_FALSE(canonical_ip("").has_value());
}

TEST(NetTest, HeaderIgnoredWithoutTrustedProxies) {
  EXPECT_EQ(client_address("203.0.113.5", std::string("198.51.100.1"), {}), "203.0.113.5");
}

TEST(NetTest, HeaderIgnoredFromAnUntrustedPeer) {
  // A client talking to us directly cannot choose its address by sending the header.
  EXPECT_EQ(client_address("203.0.113.5", std::string("198.51.100.1"), {"127.0.0.1"}),
            "203.0.113.5");
}

TEST(NetTest, RightmostUntrustedEntryIsTheClient) {
  const std::vector<std::string> proxies{"127.0.0.1", "10.0.0.2"};
  // The client made up the first entry; our proxies appended the rest.
  EXPECT_EQ(client_address("127.0.0.1", std::string("1.2.3.4, 198.51.100.7, 10.0.0.2"), proxies),
            "198.51.100.7");
  EXPECT_EQ(client_address("127.0.0.1", std::string("198.51.100.7"), proxies), "198.51.100.7");
  EXPECT_EQ(client_address("::1", std::string("2001:DB8::7"), {"::1"}), "2001:db8::7");
}

TEST(NetTest, MalformedOrMissingEntryStopsAtTheLastTrustedHop) {
  const std::vector<std::string> proxies{"127.0.0.1", "10.0.0.2"};
  EXPECT_EQ(client_address("127.0.0.1", std::string("1.2.3.4, junk"), proxies), "127.0.0.1");
  EXPECT_EQ(client_address("127.0.0.1", std::string("1.2.3.4, 10.0.0.2, unknown"), proxies),
            "127.0.0.1");
  EXPECT_EQ(client_address("127.0.0.1", std::string(""), proxies), "127.0.0.1");
  EXPECT_EQ(client_address("127.0.0.1", std::nullopt, proxies), "127.0.0.1");
  EXPECT_EQ(client_address("127.0.0.1", std::string("10.0.0.2"), proxies), "10.0.0.2");
}

TEST(NetTest, ConfigTakesAListOfAddresses) {
  auto c = config::parse("trusted_proxies = 127.0.0.1, ::1\n", "t.conf");
  ASSERT_TRUE(c.ok()) << c.error().message;
  EXPECT_EQ(c->trusted_proxies, (std::vector<std::string>{"127.0.0.1", "::1"}));
  auto bad = config::parse("trusted_proxies = proxy.example.org\n", "t.conf");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("t.conf:1"), std::string::npos);
  // render() writes it back so that parse() reads the same.
  auto again = config::parse(config::render(*c), "r.conf");
  ASSERT_TRUE(again.ok()) << again.error().message;
  EXPECT_EQ(again->trusted_proxies, c->trusted_proxies);
}

}  // namespace wmk::util
