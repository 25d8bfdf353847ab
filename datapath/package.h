// The dns_steer package: the very BPF object the skeleton embeds, in the layout of the L3AF eBPF
// Package Repository, signed, and verified before anything loads it (README, "Coexisting with
// other XDP programs (L3AF)").
//
// On disk, as l3afd fetches it (<repo>/<name>/<version>/<platform>/<artifact>):
//   dns_steer/0.1.0/bookworm/dns_steer.tar.gz           the artifact
//   dns_steer/0.1.0/bookworm/dns_steer.tar.gz.minisig   its detached minisign (Ed25519) signature
// Inside the artifact, under the artifact's base name (l3afd extracts to <dir>/<name>/<version>
// and looks in <artifact up to its first dot>/):
//   dns_steer/dns_steer.bpf.o      the object (the skeleton's embedded bytes, unchanged)
//   dns_steer/l3afd-payload.json   an example l3afd payload entry for this program
//   dns_steer/manifest.json        labels (program type, entry function, chaining map, pinned
//                                  maps, license, minimum kernel, dns_steer ABI) and the SHA-256
//                                  of each other file
// The signature covers the whole artifact, so a byte changed anywhere in it (compressed data,
// gzip or tar headers, padding) is refused; the hashes and labels are then checked against the
// object itself, so a correctly signed but mislabelled package is refused too.
//
// Verification is in process (libsodium over minisign's formats); signing is the operator's
// `minisign -S` (tools/run package, the bpf-package target). Control plane only.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "common/result.h"

namespace dnsproxy::datapath {

// The dns_steer object compiled into this binary (the skeleton's bytes).
std::span<const uint8_t> embedded_steer_object();

// What a BPF object says about itself: the license section, its programs and maps.
struct ObjectFacts {
  struct Program {
    std::string name;
    std::string section;  // "xdp"
  };
  struct Map {
    std::string name;
    uint32_t type = 0;  // enum bpf_map_type
  };
  std::string license;
  std::vector<Program> programs;
  std::vector<Map> maps;
};
Result<ObjectFacts> inspect_object(std::span<const uint8_t> object);

// One file of the artifact, by its path inside it ("dns_steer/manifest.json").
struct PackageFile {
  std::string path;
  std::vector<uint8_t> bytes;
};
// A .tar.gz of `files` (regular files, mode 0644, owner 0, time 0: the same input gives the same
// bytes), and back. unpack_archive refuses anything but regular files with plain relative paths.
Result<std::vector<uint8_t>> pack_archive(const std::vector<PackageFile>& files);
Result<std::vector<PackageFile>> unpack_archive(std::span<const uint8_t> archive);

struct PackageLabels {
  std::string version;   // this build's version by default
  std::string platform;  // l3afd's platform: the distribution codename, e.g. "bookworm"
};
// The labels of this build on this machine (version from CMake, platform from /etc/os-release).
PackageLabels default_labels();

struct BuiltPackage {
  std::string relative_path;  // <name>/<version>/<platform>/<artifact>
  std::vector<uint8_t> archive;
};
// The package of `object` (normally embedded_steer_object()): manifest from the object's facts.
Result<BuiltPackage> build_package(std::span<const uint8_t> object, const PackageLabels& labels);

struct VerifiedPackage {
  std::string name, version, platform, license, min_kernel;
  std::string key_id;           // the trusted key's ID, 16 upper-case hex digits
  std::string trusted_comment;  // signed along with the signature
  std::vector<uint8_t> object;  // the verified dns_steer object
};
// Checks, in order, each failure a reason an operator can act on: the signature file exists and
// its key ID is the trusted key's, the Ed25519 signature over the artifact and over the trusted
// comment, the archive holds exactly the expected files, the manifest's hashes, and the
// manifest's labels against the object (license section, entry function and its section, the
// chaining and pinned maps, the dns_steer ABI this binary was built with).
Result<VerifiedPackage> verify_package(std::span<const uint8_t> artifact,
                                       const std::string& signature_text,
                                       const std::string& public_key_text);
// The same from files: `artifact_path` and `artifact_path + ".minisig"`, and the public key file
// (`minisign -G` writes one).
Result<VerifiedPackage> verify_package_files(const std::string& artifact_path,
                                             const std::string& public_key_path);

// Whether the running kernel is at least `min_kernel` ("6.1"); the failure says both versions.
Result<void> check_min_kernel(const std::string& min_kernel);

}  // namespace dnsproxy::datapath
