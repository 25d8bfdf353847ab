// dnsproxy-agent: the reference agent for dnsproxyd --agent (issue 12), a stand-in for
// cilium-agent's side of the link. It owns the agent's pinned BPF maps exactly as dnsproxyd's
// embedded agent does (datapath/agent/agent_maps.h: the endpoint table and ipcache filled from
// --policy FILE, the L3 allow map l3_guard enforces), serves the AgentLink service on a unix
// socket (proto/dnsproxy/v1/agent.proto), answers each MappingBatch with its BatchAck only
// after the batch's addresses are in the allow map (mapping_service.h, with the fault injection),
// and serves the policy of the same file on the Policy stream (policy_streams.h). SIGHUP reads the
// file again: a good one goes into the maps and, as the difference, to every connected proxy; a
// bad one is logged and counted and the policy in force stays.
//
// The socket is this process's own (mode 0600, owned by --proxy-uid): each connection is
// accepted here, its peer's uid checked with SO_PEERCRED, and only then handed to gRPC
// (grpc::AddInsecureChannelFromFd), so the check is made on the socket gRPC speaks over.
//
// Its pins outlive it: a proxy keeps enforcing (and releasing names plumbed before) while the
// agent is down, and a restarted agent takes the same maps up again (AgentMaps::
// open_or_create_pinned). The socket file is removed at exit.
//
// Threads: gRPC's (one per stream, and a reader beside each Policy stream), and the main thread,
// which accepts connections, waits for SIGINT/SIGTERM/SIGHUP (a signalfd) and expires plumbing
// once a second.
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <mutex>
#include <set>
#include <string>

#include <grpcpp/grpcpp.h>
#include <grpcpp/server_posix.h>
#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "datapath/agent/agent_maps.h"
#include "datapath/agent/grpc_socket.h"
#include "policy/policy_file.h"
#include "tools/dnsproxy-agent/mapping_service.h"
#include "tools/dnsproxy-agent/policy_streams.h"

namespace {

using dnsproxy::CounterSet;
using dnsproxy::Result;
using dnsproxy::agent_tool::LinkCounter;
using dnsproxy::datapath::Fd;
using dnsproxy::datapath::agent::AgentMaps;

constexpr int kExitOk = 0;
constexpr int kExitBadConfig = 2;
constexpr int kExitMaps = 3;
constexpr int kExitListen = 4;

// The proxy pings every 2 s on an idle link (GrpcAgent's keepalive); gRPC's default would count
// those as abuse and close the connection (GOAWAY too_many_pings).
constexpr int kMinPingIntervalMs = 1000;

struct Options {
  std::string listen;
  std::string policy;
  std::string pin_dir = "/sys/fs/bpf/dnsproxy";
  uint32_t grace = 10;
  std::string stats_file;
  uint32_t proxy_uid = 0;
  uint32_t ack_delay = 0;
  dnsproxy::agent_tool::Faults faults;
  bool nack_next_update = false;
};

struct State {
  std::mutex mutex;  // maps and counters
  std::unique_ptr<AgentMaps> maps;
  CounterSet<LinkCounter> counters;
};

void write_stats(const Options& options, State& state, bool final) {
  if (options.stats_file.empty()) return;
  nlohmann::json counters = nlohmann::json::object();
  const auto add = [&](std::string_view name, uint64_t value) {
    counters[std::string(name)] = value;
  };
  {
    std::lock_guard lock(state.mutex);
    state.maps->counters().for_each(add);
    state.counters.for_each(add);
  }
  const std::string temporary = options.stats_file + ".tmp";
  {
    std::ofstream out(temporary);
    out << nlohmann::json{{"final", final}, {"counters", counters}}.dump(2) << "\n";
  }
  if (std::rename(temporary.c_str(), options.stats_file.c_str()) != 0)
    spdlog::warn("stats file {}: {}", options.stats_file, std::strerror(errno));
}

// Every connection waiting on `listener`: the proxy's uid goes to gRPC, any other is closed at
// once. Each refused uid is logged the first time (a proxy retries every few hundred ms), and
// every refusal counted.
void accept_connections(int listener, grpc::Server& server, const Options& options, State& state,
                        std::set<uid_t>& refused_logged) {
  for (;;) {
    Fd connection(::accept4(listener, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (connection.get() < 0) {
      if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
        spdlog::warn("accept on {}: {}", options.listen, std::strerror(errno));
      return;
    }
    auto peer = dnsproxy::datapath::agent::peer_credentials(connection.get());
    if (!peer || peer->uid != options.proxy_uid) {
      {
        std::lock_guard lock(state.mutex);
        state.counters.add(LinkCounter::kConnectionsRefused);
      }
      const uid_t uid = peer ? peer->uid : static_cast<uid_t>(-1);
      if (refused_logged.insert(uid).second)
        spdlog::warn("refused a connection on {}: {} (further ones from this uid are counted)",
                     options.listen,
                     peer ? fmt::format("peer uid {} (pid {}) is not --proxy-uid {}", peer->uid,
                                        peer->pid, options.proxy_uid)
                          : peer.error().message);
      continue;  // closed here
    }
    {
      std::lock_guard lock(state.mutex);
      state.counters.add(LinkCounter::kConnectionsAccepted);
    }
    spdlog::info("proxy connected (pid {}, uid {})", peer->pid, peer->uid);
    grpc::AddInsecureChannelFromFd(&server, connection.release());  // gRPC owns it now
  }
}

// SIGHUP: the policy file again, whole; only a good one replaces the maps' endpoints and ipcache
// and the policy the proxies get.
void reload_policy(const Options& options, State& state,
                   dnsproxy::agent_tool::PolicyStreams& policy) {
  auto file = dnsproxy::policy::load_policy_file(options.policy);
  Result<void> loaded = file ? Result<void>{} : tl::unexpected(file.error());
  if (file) {
    std::lock_guard lock(state.mutex);
    loaded = state.maps->load_policy(*file);
  }
  if (!loaded) {
    {
      std::lock_guard lock(state.mutex);
      state.counters.add(LinkCounter::kPolicyReloadsFailed);
    }
    spdlog::error("SIGHUP: policy {} not reloaded, the policy in force stays: {}", options.policy,
                  loaded.error().message);
    return;
  }
  auto resources = dnsproxy::datapath::agent::encode_policy(*file);
  spdlog::info("SIGHUP: policy {} reloaded (version {}); sending the difference to the proxies",
               options.policy, dnsproxy::datapath::agent::policy_version(resources));
  policy.update(std::move(resources));
}

// Until SIGINT/SIGTERM: connections accepted as they come, plumbing expired and the stats file
// written once a second; SIGHUP reloads the policy.
void serve(int listener, grpc::Server& server, const Options& options, State& state,
           dnsproxy::agent_tool::PolicyStreams& policy) {
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGHUP);
  const Fd signals(::signalfd(-1, &stop, SFD_CLOEXEC));
  std::set<uid_t> refused_logged;
  auto next_tick = std::chrono::steady_clock::now() + std::chrono::seconds(1);
  for (;;) {
    pollfd fds[2] = {{.fd = listener, .events = POLLIN, .revents = 0},
                     {.fd = signals.get(), .events = POLLIN, .revents = 0}};
    const auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(
        next_tick - std::chrono::steady_clock::now());
    ::poll(fds, 2, static_cast<int>(std::max<int64_t>(wait.count(), 0)));
    if (fds[1].revents & POLLIN) {
      signalfd_siginfo info{};
      (void)!::read(signals.get(), &info, sizeof info);
      if (info.ssi_signo != SIGHUP) {
        spdlog::info("{}: stopping", strsignal(static_cast<int>(info.ssi_signo)));
        return;
      }
      reload_policy(options, state, policy);
    }
    if (fds[0].revents & POLLIN)
      accept_connections(listener, server, options, state, refused_logged);
    if (std::chrono::steady_clock::now() < next_tick) continue;
    next_tick += std::chrono::seconds(1);
    {
      std::lock_guard lock(state.mutex);
      state.maps->expire(dnsproxy::datapath::pipeline::Clock::now());
    }
    write_stats(options, state, false);
  }
}

int run(Options options) {
  auto socket_path = dnsproxy::datapath::agent::unix_socket_path(options.listen, "--listen");
  if (!socket_path) {
    spdlog::error("{}", socket_path.error().message);
    return kExitBadConfig;
  }
  auto file = dnsproxy::policy::load_policy_file(options.policy);
  if (!file) {
    spdlog::error("--policy: {}", file.error().message);
    return kExitBadConfig;
  }
  State state;
  bool reused = false;
  auto maps = AgentMaps::open_or_create_pinned({.grace = std::chrono::seconds(options.grace)},
                                               options.pin_dir, reused);
  if (!maps) {
    spdlog::error("{}", maps.error().message);
    return kExitMaps;
  }
  state.maps = std::move(*maps);
  if (auto loaded = state.maps->load_policy(*file); !loaded) {
    spdlog::error("loading {} into the maps: {}", options.policy, loaded.error().message);
    return kExitMaps;
  }
  spdlog::info("{} the agent's maps in {}; {} endpoint address(es), {} ipcache prefix(es) from {}",
               reused ? "took up" : "created and pinned", options.pin_dir, file->endpoints.size(),
               file->ipcache.size(), options.policy);

  auto listener = dnsproxy::datapath::agent::listen_unix(*socket_path, options.proxy_uid);
  if (!listener) {
    spdlog::error("--listen {}: {}", options.listen, listener.error().message);
    return kExitListen;
  }
  options.faults.ack_delay = std::chrono::milliseconds(options.ack_delay);
  dnsproxy::agent_tool::PolicyStreams policy(dnsproxy::datapath::agent::encode_policy(*file),
                                             state.counters, state.mutex, options.nack_next_update);
  dnsproxy::agent_tool::MappingService service(*state.maps, state.counters, state.mutex,
                                               options.faults, policy);
  grpc::ServerBuilder builder;  // no listening port: connections come from accept_connections
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS,
                             kMinPingIntervalMs);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server) {
    spdlog::error("--listen {}: the gRPC server did not start", options.listen);
    return kExitListen;
  }
  spdlog::info("serving the agent link on {} for uid {}", options.listen, options.proxy_uid);

  serve(listener->get(), *server, options, state, policy);
  ::unlink(socket_path->c_str());
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::milliseconds(500));
  write_stats(options, state, true);
  spdlog::info("stopped; the maps stay pinned in {}", options.pin_dir);
  return kExitOk;
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  CLI::App app{"dnsproxy-agent: the reference agent for dnsproxyd --agent (owns the pinned maps)"};
  app.add_option("--listen", options.listen, "serve the agent link on unix:PATH")->required();
  app.add_option("--policy", options.policy,
                 "policy file: endpoints and identities for the maps, and the policy the proxies "
                 "get (SIGHUP reloads it)")
      ->required();
  app.add_option("--pin-dir", options.pin_dir,
                 "bpffs directory for the maps (dnsproxyd's --pin-dir)")
      ->capture_default_str();
  app.add_option("--grace", options.grace, "seconds an allow entry outlives its TTL")
      ->capture_default_str();
  app.add_option("--stats-file", options.stats_file,
                 "write the counters as JSON here every second and at exit");
  app.add_option("--proxy-uid", options.proxy_uid,
                 "uid the proxy runs as: owns the socket, and every other peer is refused "
                 "(SO_PEERCRED)")
      ->capture_default_str();
  app.add_option("--ack-delay", options.ack_delay,
                 "fault injection: ACK each batch MS after its map writes (batches are answered "
                 "one after another)");
  app.add_option("--drop-stream-after", options.faults.drop_stream_after,
                 "fault injection: end every stream after answering N batches");
  app.add_flag("--stop-answering", options.faults.stop_answering,
               "fault injection: accept the stream and read every batch, but neither plumb nor "
               "ACK any");
  app.add_flag("--nack-next-update", options.nack_next_update,
               "fault injection: the next policy update after a proxy's first sync (a SIGHUP's) "
               "carries an invalid resource (a DNS rule on port 70000), which the proxy must "
               "NACK");
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ dnsproxy-agent: %v");
  CLI11_PARSE(app, argc, argv);
  // Blocked before gRPC starts its threads, so they inherit the mask and only the main thread's
  // signalfd sees them.
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);
  return run(std::move(options));
}
