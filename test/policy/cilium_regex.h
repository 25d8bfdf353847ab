// The std::regex translation of a name pattern the way Cilium builds it (pkg/fqdn/matchpattern):
// the reference the matcher is tested against and the peer it is benchmarked against. Input to
// the regexes is the presentation form of a name, lowercase, with a trailing dot.
#pragma once

#include <regex>
#include <string>
#include <string_view>
#include <vector>

namespace dnsproxy::policy::test {

inline constexpr std::string_view kCiliumLabelChars = "[-a-zA-Z0-9_]";

// matchName: the name itself, dots escaped, anchored.
inline std::string cilium_match_name_regex(std::string_view name) {
  std::string out = "^";
  for (char c : name) out += c == '.' ? std::string("[.]") : std::string(1, c);
  if (name.empty() || name.back() != '.') out += "[.]";
  return out + "$";
}

// matchPattern: "*" -> every name of label characters (and the root); a "**." prefix -> one or
// more whole labels; `*` -> a run of label characters; dots escaped; anchored.
inline std::string cilium_match_pattern_regex(std::string_view pattern) {
  const std::string label = std::string(kCiliumLabelChars);
  std::string_view stars = pattern;
  if (stars.ends_with('.')) stars.remove_suffix(1);
  if (!stars.empty() && stars.find_first_not_of('*') == std::string_view::npos)
    return "(^(" + label + "+[.])+$)|(^[.]$)";
  std::string out = "^";
  if (pattern.starts_with("**.")) {
    out += "(" + label + "+[.])+";
    pattern.remove_prefix(3);
  }
  for (char c : pattern) {
    if (c == '*')
      out += label + "*";
    else if (c == '.')
      out += "[.]";
    else
      out += c;
  }
  if (pattern.empty() || pattern.back() != '.') out += "[.]";
  return out + "$";
}

// One regex for a whole rule, as Cilium's DNS proxy compiles a rule's patterns: an alternation.
inline std::regex cilium_rule_regex(const std::vector<std::string>& alternatives) {
  std::string joined;
  for (const std::string& a : alternatives) {
    if (!joined.empty()) joined += '|';
    joined += "(?:" + a + ")";
  }
  return std::regex(joined, std::regex::ECMAScript | std::regex::optimize);
}

}  // namespace dnsproxy::policy::test
