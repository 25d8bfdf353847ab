#include "policy/name_matcher.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "dns/name_text.h"
#include "test/policy/cilium_regex.h"
#include "test/policy/test_names.h"

namespace dnsproxy::policy {
namespace {

using test::name_pattern;
using test::pattern;
using test::wire;

NameMatcher build(std::vector<NamePattern> patterns) {
  auto m = NameMatcher::build(patterns);
  EXPECT_TRUE(m) << (m ? "" : m.error().message);
  return m ? std::move(*m) : NameMatcher{};
}

bool matches(const NameMatcher& m, std::string_view name) {
  return m.matches(wire(name));
}

TEST(NameMatcherTest, EmptyPatternListAllowsEverything) {
  const NameMatcher m = build({});
  EXPECT_TRUE(matches(m, "anything.example"));
  EXPECT_TRUE(matches(m, "a\\032b.example"));
  EXPECT_TRUE(matches(m, "."));
}

TEST(NameMatcherTest, ExactNames) {
  const NameMatcher m = build({name_pattern("api.example.com"), name_pattern("Example.ORG.")});
  EXPECT_TRUE(matches(m, "api.example.com"));
  EXPECT_TRUE(matches(m, "API.EXAMPLE.COM."));  // the codec lowercases
  EXPECT_TRUE(matches(m, "example.org"));
  EXPECT_FALSE(matches(m, "x.api.example.com"));
  EXPECT_FALSE(matches(m, "example.com"));
  EXPECT_FALSE(matches(m, "api\\.example.com"));  // one label "api.example": not the same name
  EXPECT_FALSE(matches(m, "."));
}

TEST(NameMatcherTest, MatchAllNeedsPlainLabels) {
  const NameMatcher m = build({pattern("*")});
  EXPECT_TRUE(matches(m, "a.b.c.d"));
  EXPECT_TRUE(matches(m, "under_score-dash.example"));
  EXPECT_TRUE(matches(m, "."));
  EXPECT_FALSE(matches(m, "a\\032b.example"));  // a space inside a label
  EXPECT_FALSE(matches(m, "a\\.b.example"));    // a dot inside a label
}

TEST(NameMatcherTest, SubdomainPrefixNeedsAtLeastOneLabel) {
  const NameMatcher m = build({pattern("**.example.com")});
  EXPECT_TRUE(matches(m, "a.example.com"));
  EXPECT_TRUE(matches(m, "a.b.c.example.com"));
  EXPECT_FALSE(matches(m, "example.com"));
  EXPECT_FALSE(matches(m, "aexample.com"));
  EXPECT_FALSE(matches(m, "a.example.org"));
  EXPECT_FALSE(matches(m, "a\\032b.example.com"));
  EXPECT_FALSE(matches(m, "a.x\\032y.example.com"));
}

TEST(NameMatcherTest, ExactAndSubdomainOfTheSameName) {
  const NameMatcher m = build({pattern("**.example.com"), name_pattern("example.com")});
  EXPECT_TRUE(matches(m, "example.com"));
  EXPECT_TRUE(matches(m, "www.example.com"));
}

TEST(NameMatcherTest, StarStaysInsideOneLabel) {
  const NameMatcher m = build({pattern("*.example.com")});
  EXPECT_TRUE(matches(m, "www.example.com"));
  EXPECT_FALSE(matches(m, "a.www.example.com"));
  EXPECT_FALSE(matches(m, "example.com"));
  EXPECT_FALSE(matches(m, "w\\.w.example.com"));
}

TEST(NameMatcherTest, StarsInsideLabels) {
  const NameMatcher m = build({pattern("api-*.svc-*-prod.example.com"), pattern("*x*y*.test")});
  EXPECT_TRUE(matches(m, "api-.svc--prod.example.com"));
  EXPECT_TRUE(matches(m, "api-7.svc-eu-1-prod.example.com"));
  EXPECT_FALSE(matches(m, "api.svc-eu-prod.example.com"));
  EXPECT_FALSE(matches(m, "api-1.svc-eu.prod.example.com"));
  EXPECT_TRUE(matches(m, "xy.test"));
  EXPECT_TRUE(matches(m, "axbxcyd.test"));
  EXPECT_FALSE(matches(m, "yx.test"));
}

TEST(NameMatcherTest, WildcardsWithoutALiteralSuffix) {
  const NameMatcher m = build({pattern("a*"), pattern("*.*"), pattern("*.example")});
  EXPECT_TRUE(matches(m, "ab"));
  EXPECT_TRUE(matches(m, "a"));
  EXPECT_FALSE(matches(m, "ba"));
  EXPECT_TRUE(matches(m, "x.y"));
  EXPECT_FALSE(matches(m, "x.y.z"));
  EXPECT_TRUE(matches(m, "www.example"));
  EXPECT_FALSE(matches(m, "."));
}

TEST(NameMatcherTest, WildcardSubdomainPattern) {
  const NameMatcher m = build({pattern("**.*-cdn.example")});
  EXPECT_TRUE(matches(m, "a.eu-cdn.example"));
  EXPECT_TRUE(matches(m, "a.b.eu-cdn.example"));
  EXPECT_FALSE(matches(m, "eu-cdn.example"));
}

TEST(NameMatcherTest, MalformedWireNeverMatches) {
  const NameMatcher m = build({pattern("*")});
  const std::vector<uint8_t> no_root = {3, 'a', 'b', 'c'};
  const std::vector<uint8_t> overrun = {9, 'a', 'b', 0};
  const std::vector<uint8_t> pointer = {0xc0, 0x0c};
  EXPECT_FALSE(m.matches(no_root));
  EXPECT_FALSE(m.matches(overrun));
  EXPECT_FALSE(m.matches(pointer));
  EXPECT_FALSE(m.matches({}));
}

TEST(NameMatcherTest, RejectsPatternSetsBeyondTheStateCap) {
  // Each "*a*b*..." pattern tracks its own progress through the label, so the DFA's states are
  // the product of every pattern's progress: enough of them exceed the cap.
  std::vector<NamePattern> patterns;
  std::mt19937 rng(3);
  for (size_t i = 0; i < 12; ++i) {
    std::string p = "*";
    for (size_t k = 0; k < 6; ++k) p += std::string(1, "abc"[rng() % 3]) + "*";
    patterns.push_back(pattern(p + ".example"));
  }
  auto m = NameMatcher::build(patterns);
  ASSERT_FALSE(m);
  EXPECT_NE(m.error().message.find("automaton states"), std::string::npos);
  // The same patterns on different suffixes are separate automata, each small.
  for (size_t i = 0; i < patterns.size(); ++i)
    patterns[i] = pattern(patterns[i].text + "s" + std::to_string(i));
  EXPECT_TRUE(NameMatcher::build(patterns));
}

// Differential test: random patterns and names, compared with Cilium's regex translation.
TEST(NameMatcherTest, AgreesWithCiliumRegexOnRandomInput) {
  std::mt19937 rng(1234);
  const std::string alphabet = "ab-_9";
  auto random_label = [&](bool with_stars) {
    std::string label;
    const size_t length = 1 + rng() % 4;
    for (size_t k = 0; k < length; ++k) {
      if (with_stars && rng() % 4 == 0)
        label += '*';
      else
        label += alphabet[rng() % alphabet.size()];
    }
    return label;
  };
  auto random_name = [&](bool with_stars) {
    std::string name;
    const size_t labels = 1 + rng() % 4;
    for (size_t l = 0; l < labels; ++l) name += random_label(with_stars) + ".";
    return name;
  };
  for (int round = 0; round < 200; ++round) {
    std::vector<NamePattern> patterns;
    std::vector<std::string> regexes;
    const size_t count = 1 + rng() % 6;
    for (size_t i = 0; i < count; ++i) {
      std::string text = random_name(rng() % 2 == 0);
      if (rng() % 5 == 0) text = "**." + text;
      const bool exact = text.find('*') == std::string::npos && rng() % 2 == 0;
      auto p = exact ? parse_match_name(text) : parse_match_pattern(text);
      ASSERT_TRUE(p) << text << ": " << p.error().message;
      regexes.push_back(exact ? test::cilium_match_name_regex(p->text)
                              : test::cilium_match_pattern_regex(p->text));
      patterns.push_back(*p);
    }
    const std::regex reference = test::cilium_rule_regex(regexes);
    const NameMatcher m = build(patterns);
    for (int n = 0; n < 200; ++n) {
      std::string name = random_name(false);
      if (rng() % 8 == 0) name = "x\\032y." + name;  // a byte no pattern character matches
      if (rng() % 3 == 0) {                          // often take a pattern and fill in its stars
        name = patterns[rng() % patterns.size()].text;
        if (name.starts_with("**.")) name = random_label(false) + name.substr(2);
        for (char& c : name)
          if (c == '*') c = alphabet[rng() % alphabet.size()];
      }
      const std::vector<uint8_t> w = wire(name);
      std::string text;
      dns::append_name_text(w, text);
      const bool expected = std::regex_match(text, reference);
      std::string all;
      for (const NamePattern& p : patterns) all += p.text + " ";
      ASSERT_EQ(m.matches(w), expected) << "name " << text << " patterns " << all;
    }
  }
}

}  // namespace
}  // namespace dnsproxy::policy
