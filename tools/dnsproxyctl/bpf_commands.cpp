// `dnsproxyctl bpf ...`: the dns_steer package (datapath/package.h).
//   bpf package --out DIR     write DIR/<name>/<version>/<platform>/dns_steer.tar.gz from the
//                             object this binary embeds; prints the path (sign it with minisign)
//   bpf verify PACKAGE --key PUBKEY
//                             exit 0 with what was verified, or 2 with the reason
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>

#include "datapath/package.h"
#include "tools/dnsproxyctl/commands.h"

namespace {

constexpr int kExitBadInput = 2;

[[noreturn]] void fail_with(const std::string& command, const std::string& message) {
  std::cerr << "dnsproxyctl bpf " << command << ": " << message << '\n';
  throw CLI::RuntimeError(kExitBadInput);
}

struct PackageOptions {
  std::string out;
  dnsproxy::datapath::PackageLabels labels = dnsproxy::datapath::default_labels();
};

void write_package(const PackageOptions& options) {
  auto built = dnsproxy::datapath::build_package(dnsproxy::datapath::embedded_steer_object(),
                                                 options.labels);
  if (!built) fail_with("package", built.error().message);
  const std::filesystem::path path = std::filesystem::path(options.out) / built->relative_path;
  std::error_code error;
  std::filesystem::create_directories(path.parent_path(), error);
  if (error)
    fail_with("package", "creating " + path.parent_path().string() + ": " + error.message());
  // Written aside and renamed, so a signer never signs half a file.
  const std::filesystem::path partial = path.string() + ".tmp";
  {
    std::ofstream out(partial, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(built->archive.data()),
              static_cast<std::streamsize>(built->archive.size()));
    if (!out) fail_with("package", "writing " + partial.string() + ": " + std::strerror(errno));
  }
  std::filesystem::rename(partial, path, error);
  if (error) fail_with("package", "renaming to " + path.string() + ": " + error.message());
  std::cout << path.string() << '\n';
}

void verify(const std::string& package, const std::string& key) {
  auto verified = dnsproxy::datapath::verify_package_files(package, key);
  if (!verified) fail_with("verify", verified.error().message);
  std::cout << "verified " << package << ": " << verified->name << ' ' << verified->version << " ("
            << verified->platform << "), license " << verified->license
            << ", kernel >= " << verified->min_kernel << ", signed by key ID " << verified->key_id
            << " (\"" << verified->trusted_comment << "\")\n";
}

}  // namespace

void add_bpf_commands(CLI::App& app) {
  CLI::App* bpf = app.add_subcommand("bpf", "the dns_steer package: build it, verify it");
  bpf->require_subcommand(1);

  CLI::App* package = bpf->add_subcommand(
      "package",
      "write the L3AF-layout package of the dns_steer object this binary embeds under --out "
      "(<name>/<version>/<platform>/dns_steer.tar.gz) and print its path; sign it with "
      "minisign -S");
  auto options = std::make_shared<PackageOptions>();
  package->add_option("--out", options->out, "repository directory")->required();
  package->add_option("--version", options->labels.version, "package version")
      ->capture_default_str();
  package
      ->add_option("--platform", options->labels.platform, "l3afd platform (distribution codename)")
      ->capture_default_str();
  package->callback([options] { write_package(*options); });

  CLI::App* verify_command = bpf->add_subcommand(
      "verify",
      "check PACKAGE's minisign signature (PACKAGE.minisig) against --key, the hashes in its "
      "manifest and the manifest's labels against the object; exit 0, or 2 with the reason");
  auto package_path = std::make_shared<std::string>();
  auto key = std::make_shared<std::string>();
  verify_command->add_option("PACKAGE", *package_path, "the .tar.gz")->required();
  verify_command->add_option("--key", *key, "trusted minisign public key file")->required();
  verify_command->callback([package_path, key] { verify(*package_path, *key); });
}
