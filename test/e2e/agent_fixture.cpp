#include "test/e2e/agent_fixture.h"

#include <signal.h>

#include <filesystem>
#include <fstream>
#include <thread>

#include "test/support/policy_text.h"

namespace dnsproxy::test {

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

}  // namespace dnsproxy::test
