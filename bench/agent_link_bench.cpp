// dnsproxy-agent-bench: mapping -> ACK latency of the agent link (issue 12, bench/RESULTS.md
// "Agent link"). What dnsproxyd's control thread does with the mappings its workers learn, without
// the workers: new (endpoint, name, IP) mappings arrive open loop at a fixed rate, a real
// Coordinator batches them (batch_max addresses or batch_delay after a batch's first mapping),
// and a real agent plumbs them:
//
//   external   GrpcAgent -> unix socket -> the reference agent dnsproxy-agent (a subprocess, its
//              maps pinned on a bpffs of this run), which writes the allow map and then ACKs
//   embedded   dnsproxyd's in-process agent (the same map writes, no link)
//
// Latency per mapping: from the moment it was due (its slot in the open-loop schedule, so a late
// loop counts against the link, not for it) to the poll that reported its batch's ACK: the
// batch delay, the encode, the socket, the agent's map writes, its ACK and the control loop's
// wake-up. The runs alternate the agents (the order reverses every run); each configuration
// prints the median and range of its runs' quantiles.
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "bench/summary.h"
#include "datapath/agent/embedded_agent.h"
#include "datapath/agent/grpc_agent.h"
#include "dns/name_text.h"
#include "policy/policy_file.h"
#include "test/support/bpffs.h"
#include "test/support/netns.h"
#include "test/support/privileges.h"

namespace dnsproxy::bench {
namespace {

namespace agent = datapath::agent;
namespace pipeline = datapath::pipeline;
using nlohmann::json;
using pipeline::Clock;

constexpr uint32_t kEndpoint = 101;
constexpr uint32_t kEndpointIdentity = 10001;
constexpr uint32_t kTtlSeconds = 300;
constexpr auto kDrainTimeout = std::chrono::seconds(2);  // unanswered after this: lost
constexpr auto kHousekeeping = std::chrono::seconds(1);  // dnsproxyd's expiry timer

struct Options {
  std::vector<double> rates = {1000, 10000};
  std::vector<unsigned> batch_delays_us = {0};  // dnsproxyd's --plumb-batch-delay default
  size_t batch_max = 256;
  std::vector<std::string> agents = {"external", "embedded"};
  int runs = 5;
  double seconds = 3;
  std::string json_path = "agent-bench.json";
};

// One endpoint: the agents plumb any (endpoint, IP), the policy only fills their endpoint table.
constexpr std::string_view kPolicy = R"(endpoints:
  - id: 101
    identity: 10001
    labels: {app: bench}
    ips: [192.0.2.10]
policies: []
)";

struct Sample {
  std::string agent;
  double rate = 0;
  unsigned batch_delay_us = 0;
  uint64_t mappings = 0;  // learned in the run
  uint64_t acked = 0;     // ... whose batch was ACKed (plumbed)
  uint64_t batches = 0;
  double max_lag_us = 0;  // how far the loop fell behind its schedule (0: kept the rate)
  double p50_us = 0, p99_us = 0, p999_us = 0, max_us = 0;
};

double quantile(std::vector<double>& sorted, double q) {
  if (sorted.empty()) return 0;
  const auto rank = static_cast<size_t>(std::ceil(q * static_cast<double>(sorted.size())));
  return sorted[std::min(sorted.size(), std::max<size_t>(rank, 1)) - 1];
}

// The i-th mapping: a name and an address of its own (no traffic is sent to it; it only goes
// into the allow map).
pipeline::MappingNotice notice_for(uint32_t i) {
  pipeline::MappingNotice notice;
  notice.endpoint_id = kEndpoint;
  notice.ttl = kTtlSeconds;
  notice.flags = pipeline::MappingNotice::kNoTicket;
  const uint8_t ip[4] = {100, static_cast<uint8_t>(64 + (i >> 16 & 0x3f)),
                         static_cast<uint8_t>(i >> 8), static_cast<uint8_t>(i)};
  notice.ip = policy::IpAddress::v4(std::span<const uint8_t, 4>(ip));
  // Always a valid name: "host<i>.bench.test".
  const auto length = dns::name_from_text("host" + std::to_string(i) + ".bench.test", notice.name);
  notice.name_length = static_cast<uint8_t>(*length);
  return notice;
}

// The reference agent as a subprocess on its own socket and bpffs, for one run.
class ExternalAgent {
 public:
  static Result<std::unique_ptr<ExternalAgent>> start(const std::string& dir,
                                                      const std::string& policy_path) {
    auto bpffs = test::BpfFsMount::create();
    if (!bpffs) return tl::unexpected(bpffs.error());
    auto self = std::unique_ptr<ExternalAgent>(new ExternalAgent(std::move(*bpffs)));
    self->socket_ = dir + "/agent.sock";
    std::filesystem::remove(self->socket_);
    auto process =
        test::BackgroundProcess::start({DNSPROXY_AGENT_PATH, "--listen", "unix:" + self->socket_,
                                        "--policy", policy_path, "--pin-dir", self->bpffs_.path()},
                                       nullptr, dir + "/agent.log");
    if (!process) return tl::unexpected(process.error());
    self->process_ = std::make_unique<test::BackgroundProcess>(std::move(*process));
    return self;
  }
  [[nodiscard]] std::string target() const { return "unix:" + socket_; }

 private:
  explicit ExternalAgent(test::BpfFsMount bpffs) : bpffs_(std::move(bpffs)) {}
  test::BpfFsMount bpffs_;
  std::string socket_;
  std::unique_ptr<test::BackgroundProcess> process_;  // stopped before the bpffs goes
};

// The agent of one run, ready to plumb (the external one's link up).
struct RunAgent {
  std::unique_ptr<ExternalAgent> external;  // declared first: outlives the link to it
  std::unique_ptr<agent::Agent> agent;
};

Result<RunAgent> start_agent(const std::string& kind, const std::string& dir,
                             const std::string& policy_path) {
  RunAgent run;
  if (kind == "embedded") {
    auto embedded = agent::EmbeddedAgent::create({});
    if (!embedded) return tl::unexpected(embedded.error());
    run.agent = std::move(*embedded);
    return run;
  }
  auto external = ExternalAgent::start(dir, policy_path);
  if (!external) return tl::unexpected(external.error());
  run.external = std::move(*external);
  auto link = agent::GrpcAgent::create({.target = run.external->target(),
                                        .identity_of = [](uint32_t) { return kEndpointIdentity; }});
  if (!link) return tl::unexpected(link.error());
  run.agent = std::move(*link);
  std::vector<agent::BatchResult> ignored;
  const auto deadline = Clock::now() + std::chrono::seconds(10);
  while (run.agent->link_state() != agent::LinkState::kUp) {
    if (Clock::now() > deadline)
      return fail("the agent link did not come up in 10 s (see ", dir, "/agent.log)");
    pollfd ready{.fd = run.agent->event_fd(), .events = POLLIN, .revents = 0};
    (void)::poll(&ready, 1, 10);
    run.agent->poll(Clock::now(), ignored);
  }
  return run;
}

// Waits on the agent's fd until `until` at the latest (nanosecond timeout: a batch falls due
// within microseconds).
void wait_for_agent(const agent::Agent& agent, Clock::time_point until) {
  const auto left = std::max(until - Clock::now(), Clock::duration::zero());
  const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(left).count();
  const timespec timeout{.tv_sec = ns / 1'000'000'000, .tv_nsec = ns % 1'000'000'000};
  pollfd ready{.fd = agent.event_fd(), .events = POLLIN, .revents = 0};
  (void)::ppoll(&ready, 1, &timeout, nullptr);
}

Result<Sample> measure(const Options& options, const std::string& kind, double rate,
                       unsigned batch_delay_us, const std::string& dir,
                       const std::string& policy_path) {
  auto run = start_agent(kind, dir, policy_path);
  if (!run) return tl::unexpected(run.error());
  policy::QsbrDomain domain;
  policy::SnapshotStore store(domain);
  pipeline::Coordinator coordinator(
      {.batch_max = options.batch_max, .batch_delay = std::chrono::microseconds(batch_delay_us)},
      store, 1);

  Sample sample{.agent = kind, .rate = rate, .batch_delay_us = batch_delay_us};
  const auto total = static_cast<uint32_t>(rate * options.seconds);
  const auto interval = std::chrono::duration<double>(1.0 / rate);
  std::vector<Clock::time_point> due(total);
  std::map<uint64_t, std::vector<uint32_t>> in_flight;  // batch id -> its mappings
  std::vector<double> latencies_us;
  latencies_us.reserve(total);
  std::vector<agent::BatchResult> results;

  const auto start = Clock::now() + std::chrono::milliseconds(10);
  for (uint32_t i = 0; i < total; ++i)
    due[i] = start + std::chrono::duration_cast<Clock::duration>(interval * i);
  uint32_t next = 0;
  const auto index_of = [](const policy::IpAddress& ip) {
    const uint8_t* b = ip.bytes.data();
    return static_cast<uint32_t>((b[1] - 64) << 16 | b[2] << 8 | b[3]);
  };
  const auto drain_deadline = due.back() + kDrainTimeout;
  auto next_housekeeping = start + kHousekeeping;
  while (next < total || !in_flight.empty()) {
    auto now = Clock::now();
    if (now > drain_deadline) break;
    if (now >= next_housekeeping) {  // as dnsproxyd's slow timer does
      coordinator.expire(now);
      run->agent->expire(now);
      store.reclaim();
      next_housekeeping += kHousekeeping;
    }
    for (; next < total && due[next] <= now; ++next) {
      sample.max_lag_us = std::max(
          sample.max_lag_us, std::chrono::duration<double, std::micro>(now - due[next]).count());
      coordinator.on_notice(0, notice_for(next), now);
    }
    while (auto batch = coordinator.cut(now, next == total)) {
      std::vector<uint32_t>& members = in_flight[batch->id];
      for (const pipeline::PlumbName& name : batch->names)
        for (const pipeline::PlumbAddress& address : name.addresses)
          members.push_back(index_of(address.ip));
      ++sample.batches;
      run->agent->submit(std::move(*batch));
    }
    Clock::time_point wake = next < total ? due[next] : drain_deadline;
    if (auto deadline = coordinator.next_deadline()) wake = std::min(wake, *deadline);
    wait_for_agent(*run->agent, wake);
    results.clear();
    now = Clock::now();
    run->agent->poll(now, results);
    for (const agent::BatchResult& result : results) {
      const auto found = in_flight.find(result.batch_id);
      if (found == in_flight.end()) continue;
      if (result.plumbed) {
        coordinator.on_batch_acked(result.batch_id, now);
        for (uint32_t member : found->second) {
          latencies_us.push_back(
              std::chrono::duration<double, std::micro>(now - due[member]).count());
          ++sample.acked;
        }
      }
      in_flight.erase(found);
    }
  }
  sample.mappings = next;
  std::sort(latencies_us.begin(), latencies_us.end());
  sample.p50_us = quantile(latencies_us, 0.50);
  sample.p99_us = quantile(latencies_us, 0.99);
  sample.p999_us = quantile(latencies_us, 0.999);
  sample.max_us = latencies_us.empty() ? 0 : latencies_us.back();
  return sample;
}

json to_json(const Sample& s) {
  return {{"agent", s.agent},           {"rate", s.rate},     {"batch_delay_us", s.batch_delay_us},
          {"mappings", s.mappings},     {"acked", s.acked},   {"batches", s.batches},
          {"max_lag_us", s.max_lag_us}, {"p50_us", s.p50_us}, {"p99_us", s.p99_us},
          {"p999_us", s.p999_us},       {"max_us", s.max_us}};
}

// One line per (agent, rate, batch delay): medians and ranges over the runs.
void print_summary(const std::vector<Sample>& samples) {
  std::map<std::tuple<double, unsigned, std::string>, std::vector<const Sample*>> groups;
  for (const Sample& s : samples) groups[{s.rate, s.batch_delay_us, s.agent}].push_back(&s);
  std::printf(
      "\nmapping -> ACK latency, us: median (range) over runs | mappings per batch | lost | max "
      "loop lag us\n");
  for (const auto& [key, group] : groups) {
    std::vector<double> p50, p99, p999, per_batch, lag;
    uint64_t lost = 0;
    for (const Sample* s : group) {
      p50.push_back(s->p50_us);
      p99.push_back(s->p99_us);
      p999.push_back(s->p999_us);
      per_batch.push_back(s->batches ? static_cast<double>(s->mappings) / s->batches : 0);
      lag.push_back(s->max_lag_us);
      lost += s->mappings - s->acked;
    }
    const auto& [rate, delay, kind] = key;
    std::printf("%6.0f/s delay %4u us %-8s p50 %s  p99 %s  p99.9 %s | %s | %lu | %s\n", rate, delay,
                kind.c_str(), range_text(p50, "%.0f").c_str(), range_text(p99, "%.0f").c_str(),
                range_text(p999, "%.0f").c_str(), range_text(per_batch, "%.1f").c_str(),
                static_cast<unsigned long>(lost), range_text(lag, "%.0f").c_str());
  }
}

int run(const Options& options) {
  if (auto missing = test::missing_capabilities(); !missing.empty()) {
    std::fprintf(stderr, "dnsproxy-agent-bench needs %s (run as root)\n", missing.c_str());
    return 1;
  }
  char dir_template[] = "/tmp/dnsproxy-agent-bench-XXXXXX";
  if (::mkdtemp(dir_template) == nullptr) {
    std::perror("mkdtemp");
    return 1;
  }
  const std::string dir = dir_template;
  const std::string policy_path = dir + "/policy.yaml";
  std::ofstream(policy_path) << kPolicy;

  std::vector<Sample> samples;
  int status = 0;
  for (int r = 0; r < options.runs && status == 0; ++r) {
    std::vector<std::string> order = options.agents;
    if (r % 2 == 1) std::reverse(order.begin(), order.end());
    for (double rate : options.rates)
      for (unsigned delay : options.batch_delays_us)
        for (const std::string& kind : order) {
          auto sample = measure(options, kind, rate, delay, dir, policy_path);
          if (!sample) {
            std::fprintf(stderr, "run %d, %s at %.0f/s: %s\n", r + 1, kind.c_str(), rate,
                         sample.error().message.c_str());
            status = 1;
            break;
          }
          std::printf(
              "run %d %-8s %6.0f/s delay %4u us: p50 %.0f p99 %.0f p99.9 %.0f us, %lu/%lu "
              "acked, %lu batches\n",
              r + 1, kind.c_str(), rate, delay, sample->p50_us, sample->p99_us, sample->p999_us,
              static_cast<unsigned long>(sample->acked),
              static_cast<unsigned long>(sample->mappings),
              static_cast<unsigned long>(sample->batches));
          samples.push_back(*sample);
        }
  }
  print_summary(samples);
  json out = json::array();
  for (const Sample& s : samples) out.push_back(to_json(s));
  std::ofstream(options.json_path) << out.dump(2) << "\n";
  std::filesystem::remove_all(dir);
  return status;
}

}  // namespace
}  // namespace dnsproxy::bench

int main(int argc, char** argv) {
  dnsproxy::bench::Options options;
  CLI::App app{"dnsproxy-agent-bench: mapping -> ACK latency through the agent link"};
  app.add_option("--rates", options.rates, "new mappings per second")->capture_default_str();
  app.add_option("--batch-delays", options.batch_delays_us,
                 "the Coordinator's batch delay, us (dnsproxyd's --plumb-batch-delay; default 0)")
      ->capture_default_str();
  app.add_option("--batch-max", options.batch_max, "addresses per batch")->capture_default_str();
  app.add_option("--agents", options.agents, "external, embedded")->capture_default_str();
  app.add_option("--runs", options.runs, "alternating runs (median and range reported)")
      ->capture_default_str();
  app.add_option("--seconds", options.seconds, "length of each run")->capture_default_str();
  app.add_option("--json", options.json_path, "every run's figures")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  for (const std::string& kind : options.agents)
    if (kind != "external" && kind != "embedded") {
      std::fprintf(stderr, "--agents: '%s' is neither external nor embedded\n", kind.c_str());
      return 2;
    }
  return dnsproxy::bench::run(options);
}
