// The config file (--config) and --print-config through the knob table: keys are the long flag
// names, every kind of error names the file, line and key (exit 2), flags given override the
// file, and what --print-config prints loads back to the same configuration.
#include "datapath/daemon/config_file.h"

#include <unistd.h>

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

namespace dnsproxy::daemon {
namespace {

class ConfigFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("dnsproxy-config-test-" + std::to_string(getpid()));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string write(const std::string& text) {
    const std::string path = dir_ + "/config" + std::to_string(files_++) + ".yaml";
    std::ofstream(path) << text;
    return path;
  }
  // The error for `text`, which must fail with exit 2.
  std::string error_of(const std::string& text) {
    const std::string path = write(text);
    auto resolved = resolve_config(Config{}, {}, path);
    EXPECT_FALSE(resolved) << text;
    if (resolved) return "";
    EXPECT_EQ(resolved.error().code, kExitBadConfig);
    return resolved.error().message;
  }

  std::string dir_;
  int files_ = 0;
};

TEST_F(ConfigFileTest, EveryKeyIsTheLongFlagNameButInterfaces) {
  for (const Knob& knob : knobs()) {
    if (knob.key == "interfaces")
      EXPECT_EQ(long_flag(knob), "--interface");
    else
      EXPECT_EQ(long_flag(knob), "--" + std::string(knob.key));
  }
}

TEST_F(ConfigFileTest, AFileSetsKnobsOfEveryType) {
  const std::string path = write(
      "interfaces: [cli0, up0]\n"
      "forward-all: true\n"
      "dns-port: 5353\n"  // one scalar for a one-element list
      "cpus: [0]\n"
      "ring-size: 1024\n"
      "pin-dir: /sys/fs/bpf/test\n"
      "tcp-dns: pass\n"
      "no-mount-bpffs: true\n");
  auto config = resolve_config(Config{}, {}, path);
  ASSERT_TRUE(config) << config.error().message;
  EXPECT_EQ(config->interfaces, (std::vector<std::string>{"cli0", "up0"}));
  EXPECT_TRUE(config->forward_all);
  EXPECT_EQ(config->dns_ports, std::vector<uint16_t>{5353});
  EXPECT_EQ(config->ring_size, 1024u);
  EXPECT_EQ(config->pin_dir, "/sys/fs/bpf/test");
  EXPECT_EQ(config->tcp_dns, "pass");
  EXPECT_FALSE(config->mount_bpffs);
  EXPECT_EQ(config->umem_frames, Config{}.umem_frames) << "keys not in the file keep defaults";
}

TEST_F(ConfigFileTest, FlagsGivenOverrideTheFile) {
  const std::string path = write("interfaces: [cli0]\nforward-all: true\nring-size: 1024\n");
  Config cli;
  cli.ring_size = 4096;
  cli.batch_size = 7;  // not given: stays the file's (default) value
  auto config = resolve_config(cli, {"ring-size"}, path);
  ASSERT_TRUE(config) << config.error().message;
  EXPECT_EQ(config->ring_size, 4096u);
  EXPECT_EQ(config->batch_size, Config{}.batch_size);
}

TEST_F(ConfigFileTest, EachErrorNamesFileLineAndKey) {
  EXPECT_NE(error_of("interfaces: [cli0]\nforward-all: true\nbogus: 1\n")
                .find(":3: key 'bogus': unknown key"),
            std::string::npos);
  const std::string wrong_type = error_of("interfaces: [cli0]\nring-size: big\n");
  EXPECT_NE(wrong_type.find(":2: key 'ring-size': expected an unsigned integer (got 'big')"),
            std::string::npos)
      << wrong_type;
  EXPECT_NE(
      error_of("forward-all: yes please\n").find(":1: key 'forward-all': expected true or false"),
      std::string::npos);
  EXPECT_NE(error_of("interfaces: [cli0]\ndns-port: [53, 70000]\n").find(":2: key 'dns-port'"),
            std::string::npos);
  EXPECT_NE(error_of("interfaces:\n  a: b\n").find("key 'interfaces': expected a list"),
            std::string::npos);
  EXPECT_NE(error_of("ring-size: -1\n").find("key 'ring-size'"), std::string::npos);
  EXPECT_NE(error_of("ring-size: 1\nring-size: 2\n").find(":2: key 'ring-size': given twice"),
            std::string::npos);
  EXPECT_NE(error_of("- a\n- b\n").find(":1: expected a mapping"), std::string::npos);
  EXPECT_NE(error_of("a: [b\n").find("config"), std::string::npos);  // YAML syntax, with its line
  // A bad value found by validation names the flag and where the file set it.
  const std::string bad_value =
      error_of("interfaces: [cli0]\nforward-all: true\n\nbatch-size: 0\n");
  EXPECT_NE(bad_value.find("--batch-size must be"), std::string::npos) << bad_value;
  EXPECT_NE(bad_value.find(":4: key 'batch-size'"), std::string::npos) << bad_value;
}

TEST_F(ConfigFileTest, AnUnreadableFileIsExit2) {
  auto config = resolve_config(Config{}, {}, dir_ + "/missing.yaml");
  ASSERT_FALSE(config);
  EXPECT_EQ(config.error().code, kExitBadConfig);
  EXPECT_NE(config.error().message.find("missing.yaml"), std::string::npos);
}

TEST_F(ConfigFileTest, PrintConfigLoadsBackToTheSameConfiguration) {
  Config original;
  original.interfaces = {"cli0", "up0"};
  original.forward_all = true;
  original.dns_ports = {53, 5353};
  original.cpus = {0};
  original.ring_size = 1024;
  original.mount_bpffs = false;
  original.stats_file = "/run/dnsproxy/stats.json";
  const std::string printed = to_yaml(original);
  auto loaded = resolve_config(Config{}, {}, write(printed));
  ASSERT_TRUE(loaded) << loaded.error().message << "\n" << printed;
  EXPECT_EQ(to_yaml(*loaded), printed);
  EXPECT_EQ(loaded->dns_ports, original.dns_ports);
  EXPECT_FALSE(loaded->mount_bpffs);
}

}  // namespace
}  // namespace dnsproxy::daemon
