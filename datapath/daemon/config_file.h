// The knob table: every Config field once, with its command-line flag, its config-file key (the
// long flag name; `interfaces` for the repeatable -i/--interface) and its help text. main builds
// its CLI11 flags from it, `--config FILE` reads YAML through it and `--print-config` writes YAML
// from it, so a flag, its key and its printed form cannot drift apart. A feature adds one row.
#pragma once

#include <cstdint>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "datapath/daemon/config.h"

namespace dnsproxy::daemon {

// A field of Config, by type. kInverted: a "--no-x" flag stored as x = false.
struct InvertedBool {
  bool Config::*member;
};
using Field = std::variant<std::string Config::*, bool Config::*, InvertedBool, uint32_t Config::*,
                           std::vector<std::string> Config::*, std::vector<uint16_t> Config::*,
                           std::vector<unsigned> Config::*>;

struct Knob {
  std::string_view key;   // config-file key
  std::string_view flag;  // CLI11 spelling, e.g. "-i,--interface"
  std::string_view help;
  Field field;
  bool comma_list = false;  // the flag also takes "a,b,c"
};

[[nodiscard]] std::span<const Knob> knobs();

// The long flag of a knob ("--interface" for "-i,--interface").
[[nodiscard]] std::string_view long_flag(const Knob& knob);

// Reads `path` (YAML, one mapping of knob keys) over `config`. Unknown keys, wrong types and
// unreadable files are exit 2, the message naming the file, line and key.
[[nodiscard]] Setup<void> load_config_file(const std::string& path, Config& config);

// The configuration in force: defaults, then the file at `config_path` (if not empty), then the
// knobs given on the command line (`given`: their keys) from `cli`; validated, a bad value naming
// its key and line when it came from the file.
[[nodiscard]] Setup<Config> resolve_config(const Config& cli, const std::set<std::string>& given,
                                           const std::string& config_path);

// Every knob as YAML, loadable again with --config.
[[nodiscard]] std::string to_yaml(const Config& config);

}  // namespace dnsproxy::daemon
