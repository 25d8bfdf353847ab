// `dnsproxyctl policy test|check`: the exit codes are the interface (0 yes, 1 no, 2 bad input).
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>

namespace {

int run(const std::string& args) {
  const std::string command = std::string(DNSPROXYCTL) + " " + args + " >/dev/null 2>&1";
  const int status = std::system(command.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST(DnsproxyctlPolicyTest, TestExitCodes) {
  EXPECT_EQ(run("policy test '*.example.com' www.example.com"), 0);
  EXPECT_EQ(run("policy test '*.example.com' a.www.example.com"), 1);
  EXPECT_EQ(run("policy test '**.example.com' a.www.EXAMPLE.com."), 0);
  EXPECT_EQ(run("policy test '*' 'a\\.b.example'"), 1);              // a dot inside a label
  EXPECT_EQ(run("policy test 'abc.example' '\\097bc.example'"), 0);  // \097 is 'a'
  EXPECT_EQ(run("policy test --name api.example.com API.example.com"), 0);
  EXPECT_EQ(run("policy test --name '*.example.com' www.example.com"), 2);
  EXPECT_EQ(run("policy test 'a+b.example' ab.example"), 2);
  EXPECT_EQ(run("policy test '*.example' 'bad\\999.example'"), 2);
  EXPECT_EQ(run("policy test onlyone"), 64);
}

TEST(DnsproxyctlPolicyTest, CheckExitCodes) {
  EXPECT_EQ(run(std::string("policy check ") + DNSPROXY_SOURCE_DIR + "/tools/policy.example.yaml"),
            0);
  const std::string path = "/tmp/dnsproxyctl-policy-test-" + std::to_string(getpid()) + ".yaml";
  { std::ofstream(path) << "policies:\n  - endpointSelector: {}\n    egres: []\n"; }
  EXPECT_EQ(run("policy check " + path), 2);
  std::remove(path.c_str());
  EXPECT_EQ(run("policy check /nonexistent.yaml"), 2);
}

}  // namespace
