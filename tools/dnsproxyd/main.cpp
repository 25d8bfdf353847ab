// dnsproxyd: the command line (and `--config FILE`) -> daemon::Config -> daemon::run
// (datapath/daemon/daemon.h). The flags come from the daemon's knob table
// (datapath/daemon/config_file.h), one per Config field, so a flag and its config-file key are
// defined once; validation, setup, the control loop and the exit codes (README, "Running
// dnsproxyd") live in the daemon library.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <map>
#include <set>
#include <string>
#include <type_traits>
#include <variant>

#include <spdlog/spdlog.h>

#include "datapath/daemon/config_file.h"
#include "datapath/daemon/daemon.h"
#include "datapath/daemon/logging.h"

namespace {

using dnsproxy::daemon::Config;
using dnsproxy::daemon::Knob;

CLI::Option* add_knob(CLI::App& app, const Knob& knob, Config& cli) {
  const std::string flag(knob.flag);
  const std::string help(knob.help);
  return std::visit(
      [&](auto member) -> CLI::Option* {
        using M = decltype(member);
        if constexpr (std::is_same_v<M, dnsproxy::daemon::InvertedBool>)
          return app.add_flag("!" + flag, cli.*member.member, help);
        else if constexpr (std::is_same_v<M, bool Config::*>)
          return app.add_flag(flag, cli.*member, help);
        else {
          CLI::Option* option = app.add_option(flag, cli.*member, help)->capture_default_str();
          if (knob.comma_list) option->delimiter(',');
          return option;
        }
      },
      knob.field);
}

}  // namespace

int main(int argc, char** argv) {
  Config cli;
  CLI::App app{"dnsproxyd: DNS proxy for FQDN network policy on AF_XDP"};
  std::map<std::string, CLI::Option*> options;
  for (const Knob& knob : dnsproxy::daemon::knobs())
    options[std::string(knob.key)] = add_knob(app, knob, cli);
  std::string config_path;
  bool print_config = false;
  app.add_option("--config", config_path,
                 "YAML file of settings (keys: the long flag names; flags given override it)");
  app.add_flag("--print-config", print_config,
               "print the settings in force as YAML (loadable with --config) and exit");
  dnsproxy::daemon::configure_logging(dnsproxy::daemon::LogFormat::kText);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    const int code = app.exit(error);
    return code == 0 ? 0 : dnsproxy::daemon::kExitBadConfig;
  }
  std::set<std::string> given;
  for (const auto& [key, option] : options)
    if (option->count() > 0) given.insert(key);
  auto config = dnsproxy::daemon::resolve_config(cli, given, config_path);
  if (!config) {
    spdlog::error("{}", config.error().message);
    return config.error().code;
  }
  if (auto format = dnsproxy::daemon::parse_log_format(config->log_format))
    dnsproxy::daemon::configure_logging(*format);  // invalid: validate() says so in text
  if (print_config) {
    std::fputs(dnsproxy::daemon::to_yaml(*config).c_str(), stdout);
    return 0;
  }
  // SIGHUP reads the file again under the same flags.
  dnsproxy::daemon::Reload reload;
  if (!config_path.empty())
    reload = [cli, given, config_path] {
      return dnsproxy::daemon::resolve_config(cli, given, config_path);
    };
  return dnsproxy::daemon::run(std::move(*config), std::move(reload));
}
