// `dnsproxyctl policy test PATTERN NAME` and `dnsproxyctl policy check FILE`.
#include <array>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "dns/name_text.h"
#include "policy/name_matcher.h"
#include "policy/policy_file.h"
#include "tools/dnsproxyctl/commands.h"

namespace {

constexpr int kNoMatch = 1;
constexpr int kBadInput = 2;

void test_pattern(const std::string& pattern_text, const std::string& name_text, bool exact) {
  using namespace dnsproxy;
  auto pattern =
      exact ? policy::parse_match_name(pattern_text) : policy::parse_match_pattern(pattern_text);
  if (!pattern) {
    std::cerr << "invalid pattern: " << pattern.error().message << "\n";
    throw CLI::RuntimeError(kBadInput);
  }
  std::array<uint8_t, dns::kMaxNameWireLength> wire{};
  auto length = dns::name_from_text(name_text, wire);
  if (!length) {
    std::cerr << "invalid name \"" << name_text << "\": " << dns::to_string(length.error()) << "\n";
    throw CLI::RuntimeError(kBadInput);
  }
  const std::span<uint8_t> name(wire.data(), *length);
  dns::lowercase_ascii(name);
  auto matcher = policy::NameMatcher::build(std::vector<policy::NamePattern>{*pattern});
  if (!matcher) {
    std::cerr << "invalid pattern: " << matcher.error().message << "\n";
    throw CLI::RuntimeError(kBadInput);
  }
  std::string shown;
  dns::append_name_text(name, shown);
  const bool match = matcher->matches(name);
  std::cout << (match ? "match: " : "no match: ") << shown
            << (match ? " matches " : " does not match ")
            << (exact ? "matchName " : "matchPattern ") << pattern->text << "\n";
  if (!match) throw CLI::RuntimeError(kNoMatch);
}

void check_file(const std::string& path) {
  auto file = dnsproxy::policy::load_policy_file(path);
  if (!file) {
    std::cerr << file.error().message << "\n";
    throw CLI::RuntimeError(kBadInput);
  }
  size_t rules = 0;
  for (const auto& endpoint : file->spec.endpoints) rules += endpoint.dns_rules.size();
  std::cout << path << ": ok: " << file->endpoints.size() << " endpoint addresses, "
            << file->ipcache.size() << " ipcache prefixes, " << file->spec.endpoints.size()
            << " endpoints with rules, " << rules << " DNS rules\n";
}

}  // namespace

void add_policy_commands(CLI::App& app) {
  CLI::App* policy = app.add_subcommand(
      "policy", "test name patterns, validate policy files, show a running dnsproxyd's rules");
  policy->require_subcommand(1);

  // The option values live as long as the callbacks that read them (owned by the app).
  struct TestArgs {
    std::string pattern;
    std::string name;
    bool exact = false;
  };
  auto test_args = std::make_shared<TestArgs>();
  CLI::App* test = policy->add_subcommand(
      "test", "does NAME match PATTERN? exit 0 match, 1 no match, 2 invalid pattern or name");
  test->add_option("PATTERN", test_args->pattern,
                   "a matchPattern (`*`, `**.`), or a matchName with --name")
      ->required();
  test->add_option("NAME", test_args->name,
                   "a name in presentation form; \\. and \\065 escapes work")
      ->required();
  test->add_flag("--name", test_args->exact, "treat PATTERN as a matchName (exact name)");
  test->callback(
      [test_args] { test_pattern(test_args->pattern, test_args->name, test_args->exact); });

  auto path = std::make_shared<std::string>();
  CLI::App* check =
      policy->add_subcommand("check", "validate a policy file; exit 0 valid, 2 invalid");
  check->add_option("FILE", *path, "the policy file (YAML)")->required();
  check->callback([path] { check_file(*path); });
}
