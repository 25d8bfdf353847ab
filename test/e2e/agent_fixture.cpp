#include "test/e2e/agent_fixture.h"

#include <signal.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string_view>
#include <thread>

#include "test/support/policy_text.h"

namespace dnsproxy::test {
namespace {

// The number that follows `label` in dnsperf's report (0 when the label is missing).
double number_after(const std::string& output, std::string_view label, size_t from = 0) {
  const size_t at = output.find(label, from);
  return at == std::string::npos ? 0 : std::strtod(output.c_str() + at + label.size(), nullptr);
}

}  // namespace

DnsperfReport parse_dnsperf(std::string output) {
  DnsperfReport report;
  report.sent = static_cast<uint64_t>(number_after(output, "Queries sent:"));
  report.completed = static_cast<uint64_t>(number_after(output, "Queries completed:"));
  report.lost = static_cast<uint64_t>(number_after(output, "Queries lost:"));
  // "Response codes:       NOERROR 95 (95.00%), SERVFAIL 5 (5.00%)"
  constexpr std::string_view kCodes = "Response codes:";
  if (const size_t at = output.find(kCodes); at != std::string::npos) {
    std::istringstream codes(output.substr(at + kCodes.size(), output.find('\n', at) - at));
    std::string code;
    uint64_t count = 0;
    std::string share;
    while (codes >> code >> count >> share) report.rcodes[code] = count;
  }
  // "Average Latency (s):  0.000116 (min 0.000058, max 0.000368)"
  if (const size_t at = output.find("Average Latency (s):"); at != std::string::npos) {
    report.min_latency_s = number_after(output, "(min ", at);
    report.max_latency_s = number_after(output, "max ", at);
  }
  report.output = std::move(output);
  return report;
}

DnsperfReport DnsperfLoad::finish(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (process.running() && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_FALSE(process.running()) << "dnsperf still running after " << timeout.count() << " ms";
  process.stop();
  std::ifstream in(log);
  return parse_dnsperf(std::string(std::istreambuf_iterator<char>(in), {}));
}

void AgentFixture::TearDown() {
  daemon_.reset();
  agent_.reset();
  DaemonFixture::TearDown();
}

void AgentFixture::build_with_agent(NodeSetup setup) {
  ASSERT_NO_FATAL_FAILURE(build(setup));
  policy_ = write_file("policy.yaml", frontend_policy(R"([{matchPattern: "host*.example.test"}])",
                                                      R"([{matchPattern: "host*.example.test"}])"));
  directory_ = std::filesystem::path(policy_).parent_path().string();
  socket_path_ = directory_ + "/agent.sock";
  agent_target_ = "unix:" + socket_path_;
  policy_state_ = directory_ + "/policy-state.pb";
  pin_dir_ = new_pin_dir();
}

void AgentFixture::start_agent(std::vector<std::string> extra, std::string pin_dir) {
  std::vector<std::string> args = {DNSPROXY_AGENT_PATH,
                                   "--listen",
                                   agent_target_,
                                   "--policy",
                                   policy_,
                                   "--pin-dir",
                                   pin_dir.empty() ? pin_dir_ : pin_dir,
                                   "--stats-file",
                                   directory_ + "/agent-stats.json"};
  args.insert(args.end(), extra.begin(), extra.end());
  std::filesystem::remove(directory_ + "/agent.log");
  auto agent = BackgroundProcess::start(args, nullptr, directory_ + "/agent.log");
  ASSERT_TRUE(agent) << agent.error().message;
  agent_ = std::make_unique<BackgroundProcess>(std::move(*agent));
  for (int i = 0; i < 500 && agent_log().find("serving the agent link") == std::string::npos; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ASSERT_NE(agent_log().find("serving the agent link"), std::string::npos) << agent_log();
}

void AgentFixture::kill_agent() {
  ASSERT_EQ(::kill(agent_->pid(), SIGKILL), 0);
  agent_->stop();  // reaps it
}

int AgentFixture::stop_agent() {
  return agent_->stop();
}

std::string AgentFixture::agent_log() const {
  std::ifstream in(directory_ + "/agent.log");
  return std::string(std::istreambuf_iterator<char>(in), {});
}

nlohmann::json AgentFixture::agent_counters() const {
  std::ifstream in(directory_ + "/agent-stats.json");
  const nlohmann::json stats = nlohmann::json::parse(in, nullptr, false);
  return stats.is_object() ? stats.value("counters", nlohmann::json::object())
                           : nlohmann::json::object();
}

void AgentFixture::start_daemon_with_agent(std::vector<std::string> extra, bool wait_for_policy) {
  std::vector<std::string> args = {"--agent",     agent_target_,      "--policy-state",
                                   policy_state_, "--stats-interval", "50"};
  args.insert(args.end(), extra.begin(), extra.end());
  daemon_ = start_daemon(args, pin_dir_);
  ASSERT_TRUE(daemon_) << "agent:\n" << agent_log();
  if (!wait_for_policy) return;
  ASSERT_TRUE(wait_stats([](const nlohmann::json& s) {
    return policy_field(s, "source") == "agent";
  })) << daemon_->log()
      << "agent:\n"
      << agent_log();
}

std::string AgentFixture::policy_field(const nlohmann::json& stats, const char* key) {
  const auto policy = stats.find("policy");
  if (policy == stats.end() || !policy->is_object() || !policy->contains(key)) return "";
  const nlohmann::json& value = policy->at(key);
  return value.is_string() ? value.get<std::string>() : value.dump();
}

bool AgentFixture::wait_stats(const std::function<bool(const nlohmann::json&)>& done,
                              std::chrono::milliseconds timeout) {
  nlohmann::json last;
  return wait_for(*daemon_, done, last, timeout);
}

std::string AgentFixture::queries(unsigned first, unsigned count) {
  std::string text;
  for (const std::string& name : host_names(first, count)) text += name + " AAAA\n";
  return write_file("queries-" + std::to_string(first) + "-" + std::to_string(count) + ".txt",
                    text);
}

DnsperfReport AgentFixture::resolve_once(const std::string& file) const {
  return dnsperf({"-d", file, "-n", "1", "-q", "50"});
}

DnsperfReport AgentFixture::resolve_at(const std::string& file, unsigned rate,
                                       unsigned seconds) const {
  return dnsperf({"-d", file, "-Q", std::to_string(rate), "-l", std::to_string(seconds)});
}

std::optional<DnsperfLoad> AgentFixture::resolve_at_in_background(const std::string& file,
                                                                  unsigned rate, unsigned seconds) {
  const std::string log = write_file("dnsperf-" + std::to_string(++loads_) + ".log", "");
  auto load = BackgroundProcess::start(
      dnsperf_args({"-d", file, "-Q", std::to_string(rate), "-l", std::to_string(seconds)}),
      &topology_->client(), log);
  EXPECT_TRUE(load) << load.error().message;
  if (!load) return std::nullopt;
  return DnsperfLoad{std::move(*load), log};
}

DnsperfReport AgentFixture::dnsperf(const std::vector<std::string>& extra) const {
  auto run = topology_->client().run(dnsperf_args(extra));
  EXPECT_TRUE(run) << run.error().message;
  return parse_dnsperf(run ? run->output : "");
}

std::vector<std::string> AgentFixture::dnsperf_args(const std::vector<std::string>& extra) {
  std::vector<std::string> args = {"dnsperf", "-s", Topology::kUpstreamV6, "-t", "2"};
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

void AgentFixture::expect_resolved_at_once(const std::string& file, unsigned rate, unsigned seconds,
                                           int max_delay_ms) {
  const nlohmann::json before = stats();
  const DnsperfReport load = resolve_at(file, rate, seconds);
  EXPECT_GE(load.sent, rate * seconds * 9 / 10) << load.output;
  EXPECT_EQ(load.lost, 0u) << load.output;
  EXPECT_EQ(load.rcode("NOERROR"), load.completed) << load.output;
  // Generous (a scheduler hiccup under ASan on 2 shared cores is not a round trip): anything
  // parked takes the max delay; the counters below are the exact check.
  EXPECT_LT(load.max_latency_s, max_delay_ms * 0.9 / 1000) << "nothing waited for the agent";
  const nlohmann::json after = stats();
  EXPECT_EQ(counter(after, "released_plumbed"),
            counter(before, "released_plumbed") + load.completed);
  EXPECT_EQ(counter(after, "responses_parked"), counter(before, "responses_parked"));
}

}  // namespace dnsproxy::test
