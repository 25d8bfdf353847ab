// `dnsproxyctl dns decode` as users run it: the real binary, its stdout, stderr and exit code.
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "test/dns/packet_builder.h"

namespace {

struct CommandResult {
  int exit_code;
  std::string output;  // stdout and stderr
};

CommandResult run(const std::string& command) {
  CommandResult result{-1, {}};
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return result;
  char buffer[4096];
  size_t n;
  while ((n = fread(buffer, 1, sizeof buffer, pipe)) > 0) result.output.append(buffer, n);
  const int status = pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

std::string hex_of(const std::vector<uint8_t>& bytes) {
  std::string hex;
  char digits[3];
  for (uint8_t b : bytes) {
    std::snprintf(digits, sizeof digits, "%02x", b);
    hex += digits;
  }
  return hex;
}

const std::string kDecode = std::string(DNSPROXYCTL) + " dns decode";

TEST(DnsproxyctlDnsTest, DecodesHexFromStdin) {
  const CommandResult r =
      run("echo " + hex_of(dnsproxy::dns::testing::typical_query()) + " | " + kDecode);
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(
      r.output,
      R"({"id":4660,"qr":false,"opcode":"QUERY","rcode":"NOERROR","qname":"www.Example.com.",)"
      R"("qtype":"A","answers":[],"min_ttl":null})"
      "\n");
}

TEST(DnsproxyctlDnsTest, DecodesRawBytesFromAFile) {
  const std::string path = ::testing::TempDir() + "dnsproxyctl_dns_test.bin";
  const auto packet = dnsproxy::dns::testing::chain_response();
  std::ofstream(path, std::ios::binary)
      .write(reinterpret_cast<const char*>(packet.data()),
             static_cast<std::streamsize>(packet.size()));
  const CommandResult r = run(kDecode + " --file " + path);
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.output.find(R"("min_ttl":30})"), std::string::npos) << r.output;
}

TEST(DnsproxyctlDnsTest, MalformedPacketExitsTwoWithTheReason) {
  auto packet = dnsproxy::dns::testing::typical_query();
  packet.push_back(0);
  const CommandResult r = run("echo " + hex_of(packet) + " | " + kDecode);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.output, "dnsproxyctl dns decode: malformed packet: trailing_bytes\n");
}

TEST(DnsproxyctlDnsTest, BadHexOrMissingFileExitsTwo) {
  EXPECT_EQ(run("echo zz | " + kDecode).exit_code, 2);
  EXPECT_EQ(run(kDecode + " --file /nonexistent/packet").exit_code, 2);
}

}  // namespace
