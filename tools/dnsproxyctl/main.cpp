// dnsproxyctl: inspect packets and policies, talk to a running dnsproxyd (status, stats), and
// build and verify the dns_steer package (bpf package / verify).
//
// Exit codes are part of the interface: 0 success, 1 a negative answer (e.g. no match),
// 2 bad input (malformed packet, invalid pattern or file, a daemon answer that makes no sense),
// 3 dnsproxyd not reachable on its admin socket, 64 bad usage.
#include <CLI/CLI.hpp>

#include "tools/dnsproxyctl/commands.h"

int main(int argc, char** argv) {
  CLI::App app{"dnsproxyctl: inspect DNS packets and FQDN policies"};
  app.set_version_flag("--version", "dnsproxyctl 0.1.0");
  app.require_subcommand(1);
  add_dns_commands(app);
  add_policy_commands(app);
  add_daemon_commands(app);
  add_bpf_commands(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::RuntimeError& e) {
    return e.get_exit_code();  // a command's own outcome (1, 2); it printed why
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : 64;
  }
  return 0;
}
