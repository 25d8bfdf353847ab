// dnsproxyctl command groups: each *_commands.cpp adds its subcommands to the app. A command
// reports its exit code by throwing CLI::RuntimeError(code) (see main.cpp).
#pragma once

#include <CLI/CLI.hpp>

void add_policy_commands(CLI::App& app);
