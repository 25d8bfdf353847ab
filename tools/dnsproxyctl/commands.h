// Command groups of dnsproxyctl; each *_commands.cpp defines one add_*_commands().
//
// A command reports its outcome by throwing CLI::RuntimeError(exit code) after printing what
// went wrong; main() turns that into the process exit code (see main.cpp for the codes).
#pragma once

#include <CLI/CLI.hpp>

void add_dns_commands(CLI::App& app);
void add_policy_commands(CLI::App& app);
void add_daemon_commands(CLI::App& app);
void add_bpf_commands(CLI::App& app);
