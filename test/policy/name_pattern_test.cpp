#include "policy/name_pattern.h"

#include <gtest/gtest.h>

#include <string>

namespace dnsproxy::policy {
namespace {

std::string error_of(const Result<NamePattern>& r) {
  return r ? "" : r.error().message;
}

TEST(NamePatternTest, MatchNameIsLowercasedWithTrailingDot) {
  auto p = parse_match_name("  API.Example.COM ");
  ASSERT_TRUE(p) << error_of(p);
  EXPECT_EQ(p->text, "api.example.com.");
  EXPECT_EQ(p->wire, std::vector<uint8_t>({3, 'a', 'p', 'i', 7, 'e', 'x', 'a', 'm', 'p', 'l', 'e',
                                           3, 'c', 'o', 'm', 0}));
  EXPECT_FALSE(p->match_all);
  EXPECT_FALSE(p->any_subdomain);
  EXPECT_FALSE(p->has_wildcard());
  EXPECT_EQ(parse_match_name("api.example.com.")->wire, p->wire);
}

TEST(NamePatternTest, MatchNameRejectsStarsAndOtherCharacters) {
  EXPECT_NE(error_of(parse_match_name("*.example.com")).find("'*' at offset 0"), std::string::npos);
  EXPECT_NE(error_of(parse_match_name("a b.com")).find("' ' at offset 1"), std::string::npos);
  EXPECT_NE(error_of(parse_match_name("a\\.b.com")).find("'\\'"), std::string::npos);
  EXPECT_NE(error_of(parse_match_name("")).find("empty"), std::string::npos);
  EXPECT_NE(error_of(parse_match_name(".")).find("root"), std::string::npos);
  EXPECT_NE(error_of(parse_match_name("a..b")).find("empty label"), std::string::npos);
  EXPECT_NE(error_of(parse_match_name("a[b].com")).find("not allowed"), std::string::npos);
}

TEST(NamePatternTest, LengthLimits) {
  const std::string label63(63, 'a');
  EXPECT_TRUE(parse_match_name(label63 + ".com"));
  EXPECT_NE(error_of(parse_match_name(label63 + "a.com")).find("63"), std::string::npos);
  // 4 labels of 63 + 4 length bytes + root = 257 > 255.
  const std::string long_name = label63 + "." + label63 + "." + label63 + "." + label63;
  EXPECT_NE(error_of(parse_match_name(long_name)).find("255"), std::string::npos);
  EXPECT_NE(error_of(parse_match_pattern(long_name)).find("255"), std::string::npos);
  // "**." needs room for at least one more label.
  const std::string full = label63 + "." + label63 + "." + label63 + "." + std::string(61, 'b');
  EXPECT_TRUE(parse_match_name(full));
  EXPECT_NE(error_of(parse_match_pattern("**." + full)).find("subdomain"), std::string::npos);
}

TEST(NamePatternTest, AllStarPatternsMatchEverything) {
  for (const char* text : {"*", "**", "***", "*.", "**."}) {
    auto p = parse_match_pattern(text);
    ASSERT_TRUE(p) << text << ": " << error_of(p);
    EXPECT_TRUE(p->match_all) << text;
  }
}

TEST(NamePatternTest, SubdomainPrefix) {
  auto p = parse_match_pattern("**.Example.com");
  ASSERT_TRUE(p) << error_of(p);
  EXPECT_TRUE(p->any_subdomain);
  EXPECT_FALSE(p->has_wildcard());
  EXPECT_EQ(p->text, "**.example.com.");
  EXPECT_EQ(p->wire.size(), 13u);
  // Three stars are one in-label wildcard, not the subdomain prefix (as in Cilium).
  auto three = parse_match_pattern("***.example.com");
  ASSERT_TRUE(three);
  EXPECT_FALSE(three->any_subdomain);
  EXPECT_TRUE(three->has_wildcard());
  EXPECT_EQ(three->text, "*.example.com.");
}

TEST(NamePatternTest, StarRunsCollapseInsideLabels) {
  auto p = parse_match_pattern("api-**-x.example.com");
  ASSERT_TRUE(p);
  EXPECT_EQ(p->text, "api-*-x.example.com.");
  EXPECT_TRUE(p->has_wildcard());
}

TEST(NamePatternTest, MatchPatternRejections) {
  EXPECT_NE(error_of(parse_match_pattern("a+b.com")).find("'+' at offset 1"), std::string::npos);
  EXPECT_NE(error_of(parse_match_pattern("(a|b).com")).find("not allowed"), std::string::npos);
  EXPECT_NE(error_of(parse_match_pattern("a..com")).find("empty label"), std::string::npos);
  EXPECT_NE(error_of(parse_match_pattern(".a.com")).find("empty label"), std::string::npos);
  EXPECT_NE(error_of(parse_match_pattern(" ")).find("empty"), std::string::npos);
  EXPECT_NE(error_of(parse_match_pattern("**.")).find(""), std::string::npos);
}

}  // namespace
}  // namespace dnsproxy::policy
