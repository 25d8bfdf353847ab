// `dnsproxyctl status` and `dnsproxyctl stats`: ask a running dnsproxyd over its admin socket
// (dnsproxyd --admin-socket; datapath/daemon/admin.h): one command line out, one JSON object
// back. Text by default, the daemon's JSON with --json. Exit 3 when the daemon cannot be reached,
// 2 when its answer is not what was asked for.
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <memory>
#include <string>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "tools/dnsproxyctl/commands.h"

namespace {

constexpr int kExitUnreachable = 3;
constexpr const char* kDefaultSocket = "/run/dnsproxy/admin.sock";

[[noreturn]] void exit_with(int code, const std::string& message) {
  std::fprintf(stderr, "dnsproxyctl: %s\n", message.c_str());
  throw CLI::RuntimeError(code);
}

nlohmann::json ask(const std::string& path, const std::string& command) {
  sockaddr_un addr{};
  if (path.size() >= sizeof(addr.sun_path)) exit_with(2, "socket path too long: " + path);
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || ::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) {
    const std::string why = std::strerror(errno);
    if (fd >= 0) ::close(fd);
    exit_with(kExitUnreachable, fmt::format("cannot reach dnsproxyd at {}: {} (is it running "
                                            "with --admin-socket {}?)",
                                            path, why, path));
  }
  const std::string line = command + "\n";
  (void)::send(fd, line.data(), line.size(), MSG_NOSIGNAL);
  std::string reply;
  char buffer[65536];
  for (ssize_t n; (n = ::recv(fd, buffer, sizeof(buffer), 0)) > 0;)
    reply.append(buffer, static_cast<size_t>(n));
  ::close(fd);
  nlohmann::json answer = nlohmann::json::parse(reply, nullptr, false);
  if (answer.is_discarded() || !answer.is_object())
    exit_with(2, "dnsproxyd sent something that is not a JSON object");
  if (answer.contains("error")) exit_with(2, "dnsproxyd: " + answer["error"].dump());
  return answer;
}

std::string pairs(const nlohmann::json& object) {
  std::string out;
  for (const auto& [name, value] : object.items()) out += fmt::format(" {}={}", name, value.dump());
  return out;
}

void print_status(const nlohmann::json& status) {
  std::cout << fmt::format("dnsproxyd pid {}, mode {}, up {:.1f} s\n", status.at("pid").dump(),
                           status.at("mode").get<std::string>(),
                           status.at("uptime_ms").get<double>() / 1000)
            << fmt::format("interfaces {}; DNS ports {}; {}; pins in {}\n",
                           fmt::join(status.at("interfaces").get<std::vector<std::string>>(), ", "),
                           fmt::join(status.at("dns_ports").get<std::vector<int>>(), ","),
                           status.at("fail_closed").get<bool>() ? "fail-closed" : "fail-open",
                           status.at("pin_dir").get<std::string>());
  for (const auto& worker : status.at("workers")) {
    std::cout << fmt::format("worker {} (cpu {}):\n", worker.at("worker").dump(),
                             worker.at("cpu").dump());
    for (const auto& socket : worker.at("sockets"))
      std::cout << fmt::format("  {} queue {}: {} mode, XDP {}{}\n",
                               socket.at("interface").get<std::string>(), socket.at("queue").dump(),
                               socket.at("bind_mode").get<std::string>(),
                               socket.at("xdp_mode").get<std::string>(),
                               socket.at("busy_poll").get<bool>() ? ", busy polling" : "");
  }
  if (!status.contains("agent") || status.at("agent").is_null()) return;
  // The policy's origin: its file, or with an agent "none" / "persisted" / "agent" and the
  // agent's version of it, and why the agent's last update was refused.
  const nlohmann::json& policy = status.at("policy");
  const std::string nack = policy.value("last_nack", "");
  std::cout << fmt::format("agent {} (link {}); policy {} version {}{}{}; l3_guard {}\n",
                           status.at("agent").at("kind").get<std::string>(),
                           status.at("agent").at("link").get<std::string>(),
                           policy.value("file", policy.at("source").get<std::string>()),
                           policy.at("version").dump(),
                           policy.contains("agent_version")
                               ? " (agent's " + policy.at("agent_version").get<std::string>() + ")"
                               : "",
                           nack.empty() ? "" : "; last update refused: " + nack,
                           status.at("l3_guard").get<bool>() ? "on" : "off");
}

void print_stats(const nlohmann::json& stats) {
  for (const auto& worker : stats.at("workers")) {
    const std::string name = fmt::format("worker {}", worker.at("worker").dump());
    std::cout << name << ":" << pairs(worker.at("counters")) << "\n"
              << name << " drops:" << pairs(worker.at("drops")) << "\n"
              << name << " frames:" << pairs(worker.at("frames")) << "\n";
    for (const auto& socket : worker.at("sockets"))
      std::cout << fmt::format("{} {} queue {} kernel:{}\n", name,
                               socket.at("interface").get<std::string>(), socket.at("queue").dump(),
                               pairs(socket.at("kernel")));
  }
  std::cout << "totals:" << pairs(stats.at("totals").at("counters")) << "\n"
            << "totals drops:" << pairs(stats.at("totals").at("drops")) << "\n";
  if (!stats.at("dns_steer").is_null())
    std::cout << "dns_steer:" << pairs(stats.at("dns_steer")) << "\n";
}

void print_cache(const nlohmann::json& cache) {
  std::cout << fmt::format("{} mapping(s){}\n", cache.at("count").dump(),
                           cache.at("listed") != cache.at("count")
                               ? fmt::format(", the first {} listed", cache.at("listed").dump())
                               : "");
  for (const auto& mapping : cache.at("mappings"))
    std::cout << fmt::format("endpoint {} {} {} expires in {:.1f} s, {}\n",
                             mapping.at("endpoint").dump(), mapping.at("name").get<std::string>(),
                             mapping.at("ip").get<std::string>(),
                             mapping.at("expires_in_ms").get<double>() / 1000,
                             mapping.at("plumbed").get<bool>() ? "plumbed" : "not plumbed");
}

void print_policy(const nlohmann::json& policy) {
  std::cout << fmt::format(
      "policy {}: defaults unknown_source={} port_without_rules={}; {} "
      "endpoint address(es), {} ipcache prefix(es)\n",
      policy.at("source").get<std::string>(),
      policy.at("defaults").at("unknown_source").get<std::string>(),
      policy.at("defaults").at("port_without_rules").get<std::string>(),
      policy.at("endpoint_addresses").dump(), policy.at("ipcache_prefixes").dump());
  for (const auto& endpoint : policy.at("endpoints")) {
    std::cout << fmt::format("endpoint {}:\n", endpoint.at("endpoint").dump());
    for (const auto& rule : endpoint.at("dns"))
      std::cout << fmt::format("  dns port {}/{} servers {}: {}\n", rule.at("port").dump(),
                               rule.at("protocol").get<std::string>(), rule.at("servers").dump(),
                               rule.at("names").dump());
    if (!endpoint.at("to_fqdns").empty())
      std::cout << fmt::format("  toFQDNs: {}\n", endpoint.at("to_fqdns").dump());
  }
}

// `request` is the admin socket's command (the subcommand's name unless given).
void add_daemon_command(CLI::App& app, const std::string& name, const std::string& help,
                        void (*print)(const nlohmann::json&), std::string request = "") {
  struct Options {
    std::string socket = kDefaultSocket;
    bool json = false;
  };
  auto options = std::make_shared<Options>();
  CLI::App* command = app.add_subcommand(name, help);
  command->add_option("--socket", options->socket, "dnsproxyd's admin socket")
      ->capture_default_str();
  command->add_flag("--json", options->json, "print dnsproxyd's JSON answer as it is");
  if (request.empty()) request = name;
  command->callback([request, print, options] {
    const nlohmann::json answer = ask(options->socket, request);
    if (options->json)
      std::cout << answer.dump(2) << "\n";
    else
      print(answer);
  });
}

}  // namespace

void add_daemon_commands(CLI::App& app) {
  add_daemon_command(app, "status",
                     "a running dnsproxyd: interfaces, sockets and modes, workers and CPUs, agent "
                     "link and policy version",
                     print_status);
  add_daemon_command(app, "stats",
                     "a running dnsproxyd's counters (the stats file's schema with --json)",
                     print_stats);
  add_daemon_command(app, "cache",
                     "a running dnsproxyd's learned mappings (endpoint, name, IP, expiry) and "
                     "whether each is plumbed",
                     print_cache);
  // `policy check` and `policy test` work on files; `policy show` asks the daemon.
  add_daemon_command(*app.get_subcommand("policy"), "show",
                     "the rules in force in a running dnsproxyd", print_policy, "policy");
}
