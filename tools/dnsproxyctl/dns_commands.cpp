// `dnsproxyctl dns ...`: look at DNS packets the way the proxy's codec sees them.
#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "dns/message.h"
#include "dns/message_text.h"
#include "tools/dnsproxyctl/commands.h"

namespace {

constexpr int kExitBadInput = 2;

[[noreturn]] void fail_with(int code, const std::string& message) {
  std::cerr << "dnsproxyctl dns decode: " << message << '\n';
  throw CLI::RuntimeError(code);
}

std::vector<uint8_t> read_packet(const std::string& file) {
  if (!file.empty()) {
    std::ifstream in(file, std::ios::binary);
    if (!in) fail_with(kExitBadInput, "cannot open " + file);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  }
  const std::string hex{std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>()};
  auto bytes = dnsproxy::dns::bytes_from_hex(hex);
  if (!bytes) fail_with(kExitBadInput, "bad hex on stdin: " + bytes.error().message);
  return std::move(*bytes);
}

void decode(const std::string& file) {
  const std::vector<uint8_t> packet = read_packet(file);
  const auto message = dnsproxy::dns::parse_message(packet);
  if (!message)
    fail_with(kExitBadInput, "malformed packet: " + std::string(to_string(message.error())));
  std::cout << dnsproxy::dns::message_to_json(*message) << '\n';
}

}  // namespace

void add_dns_commands(CLI::App& app) {
  CLI::App* dns = app.add_subcommand("dns", "DNS packets as the proxy's codec sees them");
  dns->require_subcommand(1);
  CLI::App* decode_command = dns->add_subcommand(
      "decode",
      "Decode one DNS message (hex on stdin, or raw bytes with --file) into one line of JSON; "
      "a malformed message prints the reason on stderr and exits 2");
  auto file = std::make_shared<std::string>();
  decode_command->add_option("--file", *file, "read the raw message from this file");
  decode_command->callback([file] { decode(*file); });
}
