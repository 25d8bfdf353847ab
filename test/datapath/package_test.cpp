// The dns_steer package (datapath/package.h): its layout and labels, and every way verification
// must refuse one: unsigned, a byte flipped anywhere (in the artifact or its signature), signed
// by another key, correctly signed but mislabelled or with a file that does not match its hash.
// Keys and signatures come from the real minisign, so the formats are checked against it; the
// `dnsproxyctl bpf` commands are run as an operator runs them.
#include "datapath/package.h"

#include <gtest/gtest.h>
#include <linux/bpf.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "test/support/netns.h"

namespace dnsproxy::datapath {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

std::vector<uint8_t> read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}
std::string read_text(const fs::path& path) {
  const std::vector<uint8_t> bytes = read_bytes(path);
  return {bytes.begin(), bytes.end()};
}
void write_bytes(const fs::path& path, const std::vector<uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
}

class PackageTest : public testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/dnsproxy-package-XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
    for (const char* key : {"a", "b"}) {
      auto made = test::run_command({"minisign", "-G", "-W", "-p", (dir_ / key).string() + ".pub",
                                     "-s", (dir_ / key).string() + ".key"});
      ASSERT_TRUE(made) << made.error().message;
      ASSERT_EQ(made->exit_code, 0) << made->output;
    }
    auto built = build_package(embedded_steer_object(), labels_);
    ASSERT_TRUE(built) << built.error().message;
    built_ = *built;
    artifact_ = dir_ / built_.relative_path;
    fs::create_directories(artifact_.parent_path());
    write_bytes(artifact_, built_.archive);
    sign(artifact_, "a");
  }
  void TearDown() override { fs::remove_all(dir_); }

  void sign(const fs::path& file, const char* key) {
    fs::remove(file.string() + ".minisig");
    auto signed_ = test::run_command({"minisign", "-S", "-s", (dir_ / key).string() + ".key", "-m",
                                      file.string(), "-t", "dnsproxy test"});
    ASSERT_TRUE(signed_) << signed_.error().message;
    ASSERT_EQ(signed_->exit_code, 0) << signed_->output;
  }
  std::string public_key(const char* key) const {
    return read_text(dir_ / (std::string(key) + ".pub"));
  }
  std::string signature_of(const fs::path& file) const {
    return read_text(file.string() + ".minisig");
  }

  // The package with its files changed by `edit`, packed again and properly signed with key a:
  // what a signer's mistake (not an attacker) produces. Returns the verification's outcome.
  template <class Edit>
  Result<VerifiedPackage> resigned(Edit edit) {
    auto files = unpack_archive(built_.archive);
    EXPECT_TRUE(files) << files.error().message;
    if (!files) return fail("unpack");
    edit(*files);
    auto archive = pack_archive(*files);
    EXPECT_TRUE(archive) << archive.error().message;
    if (!archive) return fail("pack");
    const fs::path path = dir_ / "edited.tar.gz";
    write_bytes(path, *archive);
    sign(path, "a");
    return verify_package(*archive, signature_of(path), public_key("a"));
  }
  static json& manifest_of(std::vector<PackageFile>& files, json& storage) {
    for (PackageFile& file : files)
      if (file.path == "dns_steer/manifest.json")
        storage = json::parse(file.bytes.begin(), file.bytes.end());
    return storage;
  }
  static void put_manifest(std::vector<PackageFile>& files, const json& manifest) {
    for (PackageFile& file : files)
      if (file.path == "dns_steer/manifest.json") {
        const std::string text = manifest.dump(2);
        file.bytes.assign(text.begin(), text.end());
      }
  }
  // Edits one manifest field of a re-signed package.
  Result<VerifiedPackage> with_manifest_field(const std::string& key, const json& value) {
    return resigned([&](std::vector<PackageFile>& files) {
      json manifest;
      manifest_of(files, manifest)[key] = value;
      put_manifest(files, manifest);
    });
  }

  fs::path dir_;
  PackageLabels labels_{.version = "0.1.0", .platform = "bookworm"};
  BuiltPackage built_;
  fs::path artifact_;
};

TEST(PackageObjectTest, TheEmbeddedObjectIsDnsSteerWithItsLicenseAndMaps) {
  auto facts = inspect_object(embedded_steer_object());
  ASSERT_TRUE(facts) << facts.error().message;
  EXPECT_EQ(facts->license, "GPL");
  ASSERT_EQ(facts->programs.size(), 1u);
  EXPECT_EQ(facts->programs[0].name, "dns_steer");
  EXPECT_EQ(facts->programs[0].section, "xdp");
  for (const char* map : {"dns_steer_stats", "dns_steer_xsks", "dns_steer_ifaces"}) {
    EXPECT_TRUE(std::any_of(facts->maps.begin(), facts->maps.end(), [&](const ObjectFacts::Map& m) {
      return m.name == map;
    })) << map;
  }
  EXPECT_TRUE(std::any_of(facts->maps.begin(), facts->maps.end(), [](const ObjectFacts::Map& m) {
    return m.name == "dns_steer_next" && m.type == BPF_MAP_TYPE_PROG_ARRAY;
  }));
  EXPECT_FALSE(inspect_object(std::vector<uint8_t>(64, 0)));
}

TEST_F(PackageTest, TheL3afLayoutHoldsTheEmbeddedObjectAManifestAndAPayload) {
  EXPECT_EQ(built_.relative_path, "dns_steer/0.1.0/bookworm/dns_steer.tar.gz");
  auto files = unpack_archive(built_.archive);
  ASSERT_TRUE(files) << files.error().message;
  ASSERT_EQ(files->size(), 3u);
  EXPECT_EQ((*files)[0].path, "dns_steer/dns_steer.bpf.o");
  const std::span<const uint8_t> embedded = embedded_steer_object();
  EXPECT_TRUE(std::equal(embedded.begin(), embedded.end(), (*files)[0].bytes.begin(),
                         (*files)[0].bytes.end()))
      << "the package must hold the very object the skeleton embeds";
  json manifest;
  manifest_of(*files, manifest);
  EXPECT_EQ(manifest["name"], "dns_steer");
  EXPECT_EQ(manifest["version"], "0.1.0");
  EXPECT_EQ(manifest["platform"], "bookworm");
  EXPECT_EQ(manifest["program_type"], "xdp");
  EXPECT_EQ(manifest["entry_function"], "dns_steer");
  EXPECT_EQ(manifest["map_name"], "dns_steer_next");
  EXPECT_EQ(manifest["license"], "GPL");
  EXPECT_EQ(manifest["min_kernel"], "6.1");
  EXPECT_EQ(manifest["pinned_maps"].size(), 5u);
  EXPECT_EQ(manifest["files"].size(), 2u);
  const json payload = json::parse((*files)[1].bytes.begin(), (*files)[1].bytes.end());
  const json& entry = payload[0]["bpf_programs"]["xdp_ingress"][0];
  EXPECT_EQ(entry["artifact"], "dns_steer.tar.gz");
  EXPECT_EQ(entry["map_name"], "dns_steer_next");
  EXPECT_EQ(entry["entry_function_name"], "dns_steer");
  // The same input gives the same bytes (no timestamps): a rebuild can be checked against it.
  auto again = build_package(embedded_steer_object(), labels_);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->archive, built_.archive);
}

TEST_F(PackageTest, WhatMinisignSignedVerifies) {
  auto verified = verify_package_files(artifact_.string(), (dir_ / "a.pub").string());
  ASSERT_TRUE(verified) << verified.error().message;
  EXPECT_EQ(verified->license, "GPL");
  EXPECT_EQ(verified->trusted_comment, "dnsproxy test");
  // The ID minisign wrote into the key's comment, read as a number: minisign 0.11 prints it
  // without leading zeros (%PRIX64), later versions with them (%016PRIX64).
  const std::string key = public_key("a");
  const std::string prefix = "minisign public key ";
  const size_t at = key.find(prefix);
  ASSERT_NE(at, std::string::npos) << key;
  EXPECT_EQ(std::stoull(key.substr(at + prefix.size()), nullptr, 16),
            std::stoull(verified->key_id, nullptr, 16));
  EXPECT_EQ(verified->key_id.size(), 16u);
  const std::span<const uint8_t> embedded = embedded_steer_object();
  EXPECT_TRUE(std::equal(embedded.begin(), embedded.end(), verified->object.begin(),
                         verified->object.end()));
}

TEST_F(PackageTest, AnUnsignedPackageIsRefused) {
  fs::remove(artifact_.string() + ".minisig");
  auto verified = verify_package_files(artifact_.string(), (dir_ / "a.pub").string());
  ASSERT_FALSE(verified);
  EXPECT_NE(verified.error().message.find("unsigned"), std::string::npos)
      << verified.error().message;
}

TEST_F(PackageTest, EveryFlippedByteOfTheArtifactIsRefused) {
  const std::string signature = signature_of(artifact_);
  const std::string key = public_key("a");
  std::vector<uint8_t> bytes = built_.archive;
  size_t accepted = 0;
  for (size_t i = 0; i < bytes.size(); ++i) {
    bytes[i] ^= 0x01;
    auto verified = verify_package(bytes, signature, key);
    if (verified) ++accepted;
    if (!verified && i == bytes.size() / 2) {
      EXPECT_NE(verified.error().message.find("changed after it was signed"), std::string::npos)
          << verified.error().message;
    }
    bytes[i] ^= 0x01;
  }
  EXPECT_EQ(accepted, 0u) << "of " << bytes.size() << " one-byte changes";
  EXPECT_TRUE(verify_package(bytes, signature, key));  // and unchanged it passes
}

TEST_F(PackageTest, AFlippedByteOfTheSignatureIsRefused) {
  const std::string signature = signature_of(artifact_);
  const std::string key = public_key("a");
  size_t accepted = 0;
  for (size_t i = 0; i < signature.size(); ++i) {
    std::string changed = signature;
    changed[i] ^= 0x01;
    if (changed[i] == '\n' || signature[i] == '\n') continue;  // a split line is another test
    if (verify_package(built_.archive, changed, key)) ++accepted;
  }
  // The untrusted comment (the first line) is, as its name says, not signed.
  const size_t untrusted = signature.find('\n');
  EXPECT_EQ(accepted, untrusted - std::string("untrusted comment:").size());
}

TEST_F(PackageTest, APackageSignedByAnotherKeyIsRefused) {
  sign(artifact_, "b");
  auto verified = verify_package_files(artifact_.string(), (dir_ / "a.pub").string());
  ASSERT_FALSE(verified);
  EXPECT_NE(verified.error().message.find("signed by key ID"), std::string::npos)
      << verified.error().message;
}

TEST_F(PackageTest, MislabelledPackagesAreRefusedThoughCorrectlySigned) {
  struct Case {
    std::string key;
    json value;
    std::string message;
  };
  const Case cases[] = {
      {"license", "MIT", "manifest says license 'MIT', the object's license section says 'GPL'"},
      {"entry_function", "dns_steer_v2", "entry function 'dns_steer_v2' is not a program"},
      {"map_name", "dns_steer_stats", "chaining map 'dns_steer_stats' is not a program array"},
      {"pinned_maps", json::array({"dns_steer_stats", "no_such_map"}),
       "pinned map \"no_such_map\""},
      {"program_type", "tc", "manifest says program_type 'tc'"},
      {"name", "ratelimiting", "manifest says name 'ratelimiting'"},
      {"dns_steer_abi", "0000", "dns_steer ABI"},
      {"min_kernel", "six", "min_kernel 'six'"},
  };
  for (const Case& c : cases) {
    auto verified = with_manifest_field(c.key, c.value);
    ASSERT_FALSE(verified) << c.key;
    EXPECT_NE(verified.error().message.find(c.message), std::string::npos)
        << c.key << ": " << verified.error().message;
  }
}

TEST_F(PackageTest, AFileThatDoesNotMatchItsHashOrDoesNotBelongIsRefused) {
  auto changed_object = resigned([](std::vector<PackageFile>& files) {
    files[0].bytes.back() ^= 0x01;  // the object, its manifest hash unchanged
  });
  ASSERT_FALSE(changed_object);
  EXPECT_NE(changed_object.error().message.find("dns_steer.bpf.o: SHA-256 differs"),
            std::string::npos)
      << changed_object.error().message;

  auto extra = resigned([](std::vector<PackageFile>& files) {
    files.push_back({"dns_steer/run.sh", {'x'}});
  });
  ASSERT_FALSE(extra);
  EXPECT_NE(extra.error().message.find("unexpected file 'dns_steer/run.sh'"), std::string::npos)
      << extra.error().message;

  auto missing = resigned([](std::vector<PackageFile>& files) { files.erase(files.begin()); });
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message.find("lacks dns_steer/dns_steer.bpf.o"), std::string::npos)
      << missing.error().message;
}

TEST_F(PackageTest, DnsproxyctlWritesVerifiesAndExitsTwoWithTheReason) {
  auto written =
      test::run_command({DNSPROXYCTL, "bpf", "package", "--out", (dir_ / "repo").string(),
                         "--version", "0.1.0", "--platform", "bookworm"});
  ASSERT_TRUE(written) << written.error().message;
  ASSERT_EQ(written->exit_code, 0) << written->output;
  const fs::path artifact = dir_ / "repo" / "dns_steer/0.1.0/bookworm/dns_steer.tar.gz";
  EXPECT_NE(written->output.find(artifact.string()), std::string::npos) << written->output;
  EXPECT_EQ(read_bytes(artifact), built_.archive);
  sign(artifact, "a");

  auto good = test::run_command(
      {DNSPROXYCTL, "bpf", "verify", artifact.string(), "--key", (dir_ / "a.pub").string()});
  ASSERT_TRUE(good) << good.error().message;
  EXPECT_EQ(good->exit_code, 0) << good->output;
  EXPECT_NE(good->output.find("verified"), std::string::npos) << good->output;

  auto wrong_key = test::run_command(
      {DNSPROXYCTL, "bpf", "verify", artifact.string(), "--key", (dir_ / "b.pub").string()});
  ASSERT_TRUE(wrong_key) << wrong_key.error().message;
  EXPECT_EQ(wrong_key->exit_code, 2) << wrong_key->output;
  EXPECT_NE(wrong_key->output.find("signed by key ID"), std::string::npos) << wrong_key->output;
}

}  // namespace
}  // namespace dnsproxy::datapath
