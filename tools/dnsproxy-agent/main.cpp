// dnsproxy-agent: the reference agent for dnsproxyd --agent (issue 12), a stand-in for
// cilium-agent's side of the link. It owns the agent's pinned BPF maps exactly as dnsproxyd's
// embedded agent does (datapath/agent/agent_maps.h: the endpoint table and ipcache filled from
// --policy FILE, the L3 allow map l3_guard enforces), serves the AgentLink service on a unix
// socket (proto/dnsproxy/v1/agent.proto), and answers each MappingBatch with its BatchAck only
// after the batch's addresses are in the allow map.
//
// Its pins outlive it: a proxy keeps enforcing (and releasing names plumbed before) while the
// agent is down, and a restarted agent takes the same maps up again (AgentMaps::
// open_or_create_pinned). The socket file is removed at exit.
//
// Threads: gRPC's (one per stream, the synchronous API: an agent may block on its own work), and
// the main thread, which waits for SIGINT/SIGTERM and expires plumbing once a second. The maps
// are used under one mutex.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <mutex>
#include <string>

#include <grpcpp/grpcpp.h>
#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "datapath/agent/agent_maps.h"
#include "datapath/agent/grpc_agent.h"  // unix_socket_path
#include "datapath/agent/grpc_codec.h"
#include "dnsproxy/v1/agent.grpc.pb.h"
#include "policy/policy_file.h"

namespace {

namespace v1 = dnsproxy::v1;
using dnsproxy::datapath::agent::AgentMaps;

constexpr int kExitOk = 0;
constexpr int kExitBadConfig = 2;
constexpr int kExitMaps = 3;
constexpr int kExitListen = 4;

struct Options {
  std::string listen;
  std::string policy;
  std::string pin_dir = "/sys/fs/bpf/dnsproxy";
  uint32_t grace = 10;
  std::string stats_file;
};

class MappingService final : public v1::AgentLink::Service {
 public:
  MappingService(AgentMaps& maps, std::mutex& mutex) : maps_(maps), mutex_(mutex) {}

  grpc::Status Mappings(grpc::ServerContext* context,
                        grpc::ServerReaderWriter<v1::BatchAck, v1::MappingBatch>* stream) override {
    spdlog::info("proxy connected ({})", context->peer());
    stream->SendInitialMetadata();  // the proxy reports the link up on it
    v1::MappingBatch batch;
    uint64_t answered = 0;
    while (stream->Read(&batch)) {
      const v1::BatchAck ack = plumb(batch);
      if (!stream->Write(ack)) break;
      ++answered;
    }
    spdlog::info("proxy stream ended after {} batch(es)", answered);
    return grpc::Status::OK;
  }

 private:
  // The map writes first, the ACK after: the ACK is what releases the proxy's parked responses.
  v1::BatchAck plumb(const v1::MappingBatch& batch) {
    v1::BatchAck ack;
    ack.set_batch_id(batch.batch_id());
    const auto now = dnsproxy::datapath::pipeline::Clock::now();
    bool plumbed = true;
    std::lock_guard lock(mutex_);
    for (const v1::Mapping& mapping : batch.mappings()) {
      v1::MappingResult& result = *ack.add_results();
      auto addresses = dnsproxy::datapath::agent::decode_addresses(mapping, now);
      if (!addresses) {
        result.set_status(v1::MAPPING_STATUS_INVALID);
        result.set_error(addresses.error().message);
        plumbed = false;
        continue;
      }
      if (auto written = maps_.plumb_name(mapping.endpoint_id(), *addresses); !written) {
        result.set_status(v1::MAPPING_STATUS_FAILED);
        result.set_error(written.error().message);
        plumbed = false;
        continue;
      }
      result.set_status(v1::MAPPING_STATUS_PLUMBED);
    }
    maps_.count_batch(plumbed);
    if (!plumbed)
      spdlog::warn("batch {}: not every mapping was plumbed (see the ACK)", batch.batch_id());
    return ack;
  }

  AgentMaps& maps_;
  std::mutex& mutex_;
};

void write_stats(const Options& options, AgentMaps& maps, std::mutex& mutex, bool final) {
  if (options.stats_file.empty()) return;
  nlohmann::json counters = nlohmann::json::object();
  {
    std::lock_guard lock(mutex);
    maps.counters().for_each(
        [&](std::string_view name, uint64_t value) { counters[std::string(name)] = value; });
  }
  const std::string temporary = options.stats_file + ".tmp";
  {
    std::ofstream out(temporary);
    out << nlohmann::json{{"final", final}, {"counters", counters}}.dump(2) << "\n";
  }
  if (std::rename(temporary.c_str(), options.stats_file.c_str()) != 0)
    spdlog::warn("stats file {}: {}", options.stats_file, std::strerror(errno));
}

int run(const Options& options) {
  auto socket_path = dnsproxy::datapath::agent::unix_socket_path(options.listen);
  if (!socket_path) {
    spdlog::error("--listen: \"{}\" is not unix:PATH", options.listen);
    return kExitBadConfig;
  }
  auto file = dnsproxy::policy::load_policy_file(options.policy);
  if (!file) {
    spdlog::error("--policy: {}", file.error().message);
    return kExitBadConfig;
  }
  bool reused = false;
  auto maps = AgentMaps::open_or_create_pinned({.grace = std::chrono::seconds(options.grace)},
                                               options.pin_dir, reused);
  if (!maps) {
    spdlog::error("{}", maps.error().message);
    return kExitMaps;
  }
  if (auto loaded = (*maps)->load_policy(*file); !loaded) {
    spdlog::error("loading {} into the maps: {}", options.policy, loaded.error().message);
    return kExitMaps;
  }
  spdlog::info("{} the agent's maps in {}; {} endpoint address(es), {} ipcache prefix(es) from {}",
               reused ? "took up" : "created and pinned", options.pin_dir, file->endpoints.size(),
               file->ipcache.size(), options.policy);

  // A socket file a dead run left would make the bind fail; anything else there is not ours.
  struct stat st {};
  if (lstat(socket_path->c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      spdlog::error("--listen: {} exists and is not a socket", *socket_path);
      return kExitListen;
    }
    unlink(socket_path->c_str());
  }
  std::mutex mutex;
  MappingService service(**maps, mutex);
  grpc::ServerBuilder builder;
  builder.AddListeningPort(options.listen, grpc::InsecureServerCredentials());
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server) {
    spdlog::error("--listen {}: could not listen (does the directory exist?)", options.listen);
    return kExitListen;
  }
  spdlog::info("serving the agent link on {}", options.listen);

  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  for (;;) {
    const timespec second{.tv_sec = 1, .tv_nsec = 0};
    const int sig = sigtimedwait(&stop, nullptr, &second);
    if (sig == SIGINT || sig == SIGTERM) {
      spdlog::info("{}: stopping", strsignal(sig));
      break;
    }
    {
      std::lock_guard lock(mutex);
      (*maps)->expire(dnsproxy::datapath::pipeline::Clock::now());
    }
    write_stats(options, **maps, mutex, false);
  }
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::milliseconds(500));
  unlink(socket_path->c_str());
  write_stats(options, **maps, mutex, true);
  spdlog::info("stopped; the maps stay pinned in {}", options.pin_dir);
  return kExitOk;
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  CLI::App app{"dnsproxy-agent: the reference agent for dnsproxyd --agent (owns the pinned maps)"};
  app.add_option("--listen", options.listen, "serve the agent link on unix:PATH")->required();
  app.add_option("--policy", options.policy, "policy file: endpoints and identities for the maps")
      ->required();
  app.add_option("--pin-dir", options.pin_dir,
                 "bpffs directory for the maps (dnsproxyd's --pin-dir)")
      ->capture_default_str();
  app.add_option("--grace", options.grace, "seconds an allow entry outlives its TTL")
      ->capture_default_str();
  app.add_option("--stats-file", options.stats_file,
                 "write the counters as JSON here every second and at exit");
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ dnsproxy-agent: %v");
  CLI11_PARSE(app, argc, argv);
  // Blocked before gRPC starts its threads, so they inherit the mask and the main thread's
  // sigtimedwait() gets them.
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);
  return run(options);
}
