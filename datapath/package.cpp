#include "datapath/package.h"

#include <archive.h>
#include <archive_entry.h>
#include <bpf/libbpf.h>
#include <elf.h>
#include <linux/bpf.h>
#include <sodium.h>
#include <sys/utsname.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>

// The skeleton's .rodata struct uses the ABI types, so the ABI header comes first.
#include "datapath/abi.h"
#include "dns_steer.skel.h"

namespace dnsproxy::datapath {
namespace {

using nlohmann::json;

constexpr const char* kName = "dns_steer";
constexpr const char* kArtifact = "dns_steer.tar.gz";
constexpr const char* kBaseDir = "dns_steer";  // the artifact's name up to its first dot
constexpr const char* kObjectFile = "dns_steer.bpf.o";
constexpr const char* kPayloadFile = "l3afd-payload.json";
constexpr const char* kManifestFile = "manifest.json";
constexpr const char* kFormat = "dnsproxy-bpf-package/1";
constexpr const char* kProgramType = "xdp";
constexpr const char* kEntryFunction = "dns_steer";
constexpr const char* kChainingMap = "dns_steer_next";  // l3afd's map_name
// The maps SteerProgram pins (steer_program.cpp, pinned_maps()).
constexpr std::array<const char*, 5> kPinnedMaps = {
    "dns_steer_stats", "dns_steer_xsks", "dns_steer_ifaces", "dns_steer_next", "dns_steer_sources"};
// README "What it needs": XDP metadata on veth, AF_XDP need-wakeup, bpf_fib_lookup as used.
constexpr const char* kMinKernel = "6.1";
constexpr size_t kMaxFileSize = 16 << 20;  // far above the object's size; bounds a hostile archive

std::string path_in_archive(const char* file) {
  return std::string(kBaseDir) + "/" + file;
}

std::string hex(std::span<const uint8_t> bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (uint8_t byte : bytes) {
    out += kDigits[byte >> 4];
    out += kDigits[byte & 15];
  }
  return out;
}

std::string sha256_hex(std::span<const uint8_t> bytes) {
  std::array<uint8_t, crypto_hash_sha256_BYTES> digest;
  crypto_hash_sha256(digest.data(), bytes.data(), bytes.size());
  return hex(digest);
}

// The NUL-terminated string in the object's "license" section (what the kernel checks for
// GPL-only helpers), read from the ELF section headers with every offset bounds-checked.
Result<std::string> license_section(std::span<const uint8_t> object) {
  Elf64_Ehdr header;
  if (object.size() < sizeof(header)) return fail("not an ELF object (too short)");
  std::memcpy(&header, object.data(), sizeof(header));
  if (std::memcmp(header.e_ident, ELFMAG, SELFMAG) != 0 || header.e_ident[EI_CLASS] != ELFCLASS64)
    return fail("not a 64-bit ELF object");
  if (header.e_shentsize != sizeof(Elf64_Shdr) || header.e_shstrndx >= header.e_shnum ||
      header.e_shoff > object.size() ||
      (object.size() - header.e_shoff) / sizeof(Elf64_Shdr) < header.e_shnum)
    return fail("ELF section headers out of bounds");
  const auto section = [&](size_t index) {
    Elf64_Shdr out;
    std::memcpy(&out, object.data() + header.e_shoff + index * sizeof(Elf64_Shdr), sizeof(out));
    return out;
  };
  const auto in_bounds = [&](const Elf64_Shdr& s) {
    return s.sh_offset <= object.size() && s.sh_size <= object.size() - s.sh_offset;
  };
  const Elf64_Shdr names = section(header.e_shstrndx);
  if (!in_bounds(names)) return fail("ELF section names out of bounds");
  const std::string_view name_table(reinterpret_cast<const char*>(object.data()) + names.sh_offset,
                                    names.sh_size);
  for (size_t i = 0; i < header.e_shnum; ++i) {
    const Elf64_Shdr s = section(i);
    if (s.sh_name >= name_table.size()) continue;
    const std::string_view name = name_table.substr(s.sh_name);
    if (name.substr(0, name.find('\0')) != "license") continue;
    if (!in_bounds(s)) return fail("ELF license section out of bounds");
    const std::string_view text(reinterpret_cast<const char*>(object.data()) + s.sh_offset,
                                s.sh_size);
    return std::string(text.substr(0, text.find('\0')));
  }
  return fail("the object has no license section");
}

json payload_entry(const PackageLabels& labels) {
  // The shape of l3afd's payload (models.L3afBPFPrograms): one xdp_ingress program, chained
  // through dns_steer_next. l3afd can load the object itself from this entry, but only dnsproxyd
  // binds the AF_XDP sockets dns_steer redirects to, so the supported deployment is dnsproxyd
  // --chain-into the previous program's map_name pin (README); this entry documents the labels.
  return json::array({{
      {"host_name", "NODE"},
      {"iface", "IFACE"},
      {"bpf_programs",
       {{"xdp_ingress", json::array({{
                            {"name", kName},
                            {"seq_id", 1},
                            {"artifact", kArtifact},
                            {"map_name", kChainingMap},
                            {"cmd_start", ""},
                            {"version", labels.version},
                            {"user_program_daemon", false},
                            {"admin_status", "enabled"},
                            {"prog_type", kProgramType},
                            {"cfg_version", 1},
                            {"object_file", kObjectFile},
                            {"entry_function_name", kEntryFunction},
                        }})}}},
  }});
}

std::vector<uint8_t> bytes_of(const std::string& text) {
  return {text.begin(), text.end()};
}

Result<std::string> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return fail("cannot read ", path, ": ", std::strerror(errno));
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

Result<std::vector<uint8_t>> base64(const std::string& text, const char* what) {
  std::vector<uint8_t> out(text.size());
  size_t length = 0;
  if (sodium_base642bin(out.data(), out.size(), text.data(), text.size(), nullptr, &length, nullptr,
                        sodium_base64_VARIANT_ORIGINAL) != 0)
    return fail(what, ": not base64");
  out.resize(length);
  return out;
}

// minisign prints a key ID as the 8 bytes read as a little-endian integer, in upper-case hex
// (0.12 pads it to 16 digits, 0.11 drops leading zeros; the padded form is unambiguous).
std::string key_id_text(std::span<const uint8_t> id) {
  std::string out;
  static constexpr char kDigits[] = "0123456789ABCDEF";
  for (size_t i = id.size(); i-- > 0;) {
    out += kDigits[id[i] >> 4];
    out += kDigits[id[i] & 15];
  }
  return out;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    lines.push_back(line);
  }
  return lines;
}

// minisign's public key: "untrusted comment: ..." then base64 of "Ed" + key ID (8) + key (32).
struct PublicKey {
  std::array<uint8_t, 8> id{};
  std::array<uint8_t, crypto_sign_PUBLICKEYBYTES> key{};
};
Result<PublicKey> parse_public_key(const std::string& text) {
  for (const std::string& line : lines_of(text)) {
    if (line.empty() || line.starts_with("untrusted comment:")) continue;
    auto raw = base64(line, "trusted key");
    if (!raw) return tl::unexpected(raw.error());
    if (raw->size() != 42 || (*raw)[0] != 'E' || (*raw)[1] != 'd')
      return fail("trusted key: not a minisign Ed25519 public key");
    PublicKey key;
    std::copy_n(raw->begin() + 2, 8, key.id.begin());
    std::copy_n(raw->begin() + 10, key.key.size(), key.key.begin());
    return key;
  }
  return fail("trusted key: no key in the file (expected minisign's public key format)");
}

// minisign's signature file: untrusted comment, base64 of algorithm (2) + key ID (8) +
// signature (64), "trusted comment: ...", base64 of the signature over signature + comment.
struct Signature {
  bool prehashed = true;  // "ED": the signature is over BLAKE2b-512 of the file
  std::array<uint8_t, 8> key_id{};
  std::array<uint8_t, crypto_sign_BYTES> signature{};
  std::string trusted_comment;
  std::array<uint8_t, crypto_sign_BYTES> global_signature{};
};
Result<Signature> parse_signature(const std::string& text) {
  const std::vector<std::string> lines = lines_of(text);
  if (lines.size() < 4 || !lines[0].starts_with("untrusted comment:") ||
      !lines[2].starts_with("trusted comment: "))
    return fail("signature: not a minisign signature file");
  auto raw = base64(lines[1], "signature");
  if (!raw) return tl::unexpected(raw.error());
  if (raw->size() != 74) return fail("signature: wrong length");
  Signature out;
  if ((*raw)[0] != 'E' || ((*raw)[1] != 'D' && (*raw)[1] != 'd'))
    return fail("signature: unknown algorithm (expected minisign Ed25519)");
  out.prehashed = (*raw)[1] == 'D';
  std::copy_n(raw->begin() + 2, 8, out.key_id.begin());
  std::copy_n(raw->begin() + 10, out.signature.size(), out.signature.begin());
  out.trusted_comment = lines[2].substr(std::strlen("trusted comment: "));
  auto global = base64(lines[3], "signature's trusted comment");
  if (!global) return tl::unexpected(global.error());
  if (global->size() != crypto_sign_BYTES) return fail("signature: trusted comment wrong length");
  std::copy(global->begin(), global->end(), out.global_signature.begin());
  return out;
}

Result<void> check_signature(std::span<const uint8_t> artifact, const Signature& signature,
                             const PublicKey& key) {
  if (signature.key_id != key.id) {
    return fail("signed by key ID ", key_id_text(signature.key_id), ", but the trusted key is ",
                key_id_text(key.id),
                " (signed with another key, or the key was rotated: verify with the key that "
                "signed it, or re-sign the package)");
  }
  std::array<uint8_t, crypto_generichash_BYTES_MAX> digest;
  std::span<const uint8_t> message = artifact;
  if (signature.prehashed) {
    crypto_generichash(digest.data(), digest.size(), artifact.data(), artifact.size(), nullptr, 0);
    message = digest;
  }
  if (crypto_sign_verify_detached(signature.signature.data(), message.data(), message.size(),
                                  key.key.data()) != 0) {
    return fail(
        "signature does not verify: the artifact was changed after it was signed (or the "
        "signature belongs to another file)");
  }
  std::vector<uint8_t> signed_comment(signature.signature.begin(), signature.signature.end());
  signed_comment.insert(signed_comment.end(), signature.trusted_comment.begin(),
                        signature.trusted_comment.end());
  if (crypto_sign_verify_detached(signature.global_signature.data(), signed_comment.data(),
                                  signed_comment.size(), key.key.data()) != 0)
    return fail("the signature's trusted comment does not verify: the signature file was altered");
  return {};
}

// A string field of the manifest, or why not.
Result<std::string> field(const json& manifest, const char* key) {
  const auto found = manifest.find(key);
  if (found == manifest.end() || !found->is_string())
    return fail("manifest: '", key, "' missing or not a string");
  return found->get<std::string>();
}

bool has_map(const ObjectFacts& facts, const std::string& name, uint32_t type) {
  return std::any_of(facts.maps.begin(), facts.maps.end(), [&](const ObjectFacts::Map& map) {
    return map.name == name && (type == 0 || map.type == type);
  });
}

// The manifest's labels against the object's own facts and this binary's expectations.
Result<void> check_labels(const json& manifest, const ObjectFacts& facts) {
  const auto expect = [&](const char* key, const std::string& wanted,
                          const char* whose) -> Result<void> {
    auto value = field(manifest, key);
    if (!value) return tl::unexpected(value.error());
    if (*value != wanted)
      return fail("mislabelled: manifest says ", key, " '", *value, "', ", whose, " '", wanted,
                  "'");
    return {};
  };
  for (auto checked : {expect("format", kFormat, "this dnsproxy reads"),
                       expect("name", kName, "this dnsproxy loads"),
                       expect("program_type", kProgramType, "dns_steer is"),
                       expect("object_file", kObjectFile, "the package holds"),
                       expect("license", facts.license, "the object's license section says"),
                       expect("dns_steer_abi", DNSPROXY_STEER_ABI,
                              "this dnsproxy was built with dns_steer ABI")}) {
    if (!checked) return checked;
  }
  auto entry = field(manifest, "entry_function");
  if (!entry) return tl::unexpected(entry.error());
  const auto program =
      std::find_if(facts.programs.begin(), facts.programs.end(),
                   [&](const ObjectFacts::Program& p) { return p.name == *entry; });
  if (program == facts.programs.end())
    return fail("mislabelled: entry function '", *entry, "' is not a program of the object");
  if (!program->section.starts_with(kProgramType))
    return fail("mislabelled: entry function '", *entry, "' is in section '", program->section,
                "', not an XDP program");
  auto chaining = field(manifest, "map_name");
  if (!chaining) return tl::unexpected(chaining.error());
  if (!has_map(facts, *chaining, BPF_MAP_TYPE_PROG_ARRAY))
    return fail("mislabelled: chaining map '", *chaining, "' is not a program array of the object");
  const auto pinned = manifest.find("pinned_maps");
  if (pinned == manifest.end() || !pinned->is_array())
    return fail("manifest: 'pinned_maps' missing or not a list");
  for (const json& name : *pinned) {
    if (!name.is_string() || !has_map(facts, name.get<std::string>(), 0))
      return fail("mislabelled: pinned map ", name.dump(), " is not a map of the object");
  }
  auto min_kernel = field(manifest, "min_kernel");
  if (!min_kernel) return tl::unexpected(min_kernel.error());
  unsigned major = 0, minor = 0;
  if (std::sscanf(min_kernel->c_str(), "%u.%u", &major, &minor) != 2)
    return fail("manifest: min_kernel '", *min_kernel, "' is not MAJOR.MINOR");
  return {};
}

}  // namespace

std::span<const uint8_t> embedded_steer_object() {
  size_t size = 0;
  const void* bytes = dns_steer::elf_bytes(&size);
  return {static_cast<const uint8_t*>(bytes), size};
}

Result<ObjectFacts> inspect_object(std::span<const uint8_t> object) {
  ObjectFacts facts;
  auto license = license_section(object);
  if (!license) return tl::unexpected(license.error());
  facts.license = std::move(*license);
  // Only looked at, never loaded: libbpf's notes on sections it skips would be noise here.
  const libbpf_print_fn_t previous = libbpf_set_print(nullptr);
  bpf_object* opened = bpf_object__open_mem(object.data(), object.size(), nullptr);
  libbpf_set_print(previous);
  if (!opened) return fail("not a BPF object libbpf can open: ", std::strerror(errno));
  bpf_program* program;
  bpf_object__for_each_program(program, opened) {
    facts.programs.push_back({bpf_program__name(program), bpf_program__section_name(program)});
  }
  bpf_map* map;
  bpf_object__for_each_map(map, opened) {
    facts.maps.push_back({bpf_map__name(map), static_cast<uint32_t>(bpf_map__type(map))});
  }
  bpf_object__close(opened);
  return facts;
}

Result<std::vector<uint8_t>> pack_archive(const std::vector<PackageFile>& files) {
  std::vector<uint8_t> out;
  std::unique_ptr<archive, decltype(&archive_write_free)> writer(archive_write_new(),
                                                                 archive_write_free);
  const auto append = [](archive*, void* sink, const void* data, size_t size) -> la_ssize_t {
    auto* bytes = static_cast<const uint8_t*>(data);
    static_cast<std::vector<uint8_t>*>(sink)->insert(
        static_cast<std::vector<uint8_t>*>(sink)->end(), bytes, bytes + size);
    return static_cast<la_ssize_t>(size);
  };
  archive* a = writer.get();
  if (archive_write_add_filter_gzip(a) != ARCHIVE_OK ||
      archive_write_set_format_ustar(a) != ARCHIVE_OK ||
      // No time in the gzip header: the same files give the same artifact.
      archive_write_set_filter_option(a, "gzip", "timestamp", nullptr) != ARCHIVE_OK ||
      archive_write_open(a, &out, nullptr, append, nullptr) != ARCHIVE_OK)
    return fail("creating the archive: ", archive_error_string(a));
  for (const PackageFile& file : files) {
    std::unique_ptr<archive_entry, decltype(&archive_entry_free)> entry(archive_entry_new(),
                                                                        archive_entry_free);
    archive_entry_set_pathname(entry.get(), file.path.c_str());
    archive_entry_set_size(entry.get(), static_cast<la_int64_t>(file.bytes.size()));
    archive_entry_set_filetype(entry.get(), AE_IFREG);
    archive_entry_set_perm(entry.get(), 0644);
    if (archive_write_header(a, entry.get()) != ARCHIVE_OK ||
        archive_write_data(a, file.bytes.data(), file.bytes.size()) !=
            static_cast<la_ssize_t>(file.bytes.size()))
      return fail("adding ", file.path, " to the archive: ", archive_error_string(a));
  }
  if (archive_write_close(a) != ARCHIVE_OK)
    return fail("finishing the archive: ", archive_error_string(a));
  return out;
}

Result<std::vector<PackageFile>> unpack_archive(std::span<const uint8_t> bytes) {
  std::unique_ptr<archive, decltype(&archive_read_free)> reader(archive_read_new(),
                                                                archive_read_free);
  archive* a = reader.get();
  if (archive_read_support_filter_gzip(a) != ARCHIVE_OK ||
      archive_read_support_format_tar(a) != ARCHIVE_OK ||
      archive_read_open_memory(a, bytes.data(), bytes.size()) != ARCHIVE_OK)
    return fail("not a .tar.gz: ", archive_error_string(a));
  std::vector<PackageFile> files;
  std::set<std::string> seen;
  for (;;) {
    archive_entry* entry = nullptr;
    const int status = archive_read_next_header(a, &entry);
    if (status == ARCHIVE_EOF) break;
    if (status != ARCHIVE_OK) return fail("reading the archive: ", archive_error_string(a));
    const std::string path = archive_entry_pathname(entry) ? archive_entry_pathname(entry) : "";
    if (archive_entry_filetype(entry) != AE_IFREG)
      return fail("the archive holds '", path, "', which is not a regular file");
    if (path.empty() || path.front() == '/' || path.find("..") != std::string::npos)
      return fail("the archive holds a file outside its directory: '", path, "'");
    if (!seen.insert(path).second) return fail("the archive holds '", path, "' twice");
    const la_int64_t size = archive_entry_size(entry);
    if (size < 0 || static_cast<uint64_t>(size) > kMaxFileSize)
      return fail("'", path, "' in the archive is too large");
    PackageFile file{path, std::vector<uint8_t>(static_cast<size_t>(size))};
    if (archive_read_data(a, file.bytes.data(), file.bytes.size()) != size)
      return fail("reading '", path, "' from the archive: ", archive_error_string(a));
    files.push_back(std::move(file));
  }
  return files;
}

PackageLabels default_labels() {
  PackageLabels labels{.version = DNSPROXY_VERSION, .platform = "linux"};
  std::ifstream os_release("/etc/os-release");
  for (std::string line; std::getline(os_release, line);) {
    if (!line.starts_with("VERSION_CODENAME=")) continue;
    std::string value = line.substr(std::strlen("VERSION_CODENAME="));
    std::erase(value, '"');
    if (!value.empty()) labels.platform = value;
  }
  return labels;
}

Result<BuiltPackage> build_package(std::span<const uint8_t> object, const PackageLabels& labels) {
  if (labels.version.empty() || labels.platform.empty() ||
      labels.version.find('/') != std::string::npos ||
      labels.platform.find('/') != std::string::npos)
    return fail("package version and platform must be non-empty names without '/'");
  auto facts = inspect_object(object);
  if (!facts) return fail("the dns_steer object: ", facts.error().message);
  const std::vector<uint8_t> payload = bytes_of(payload_entry(labels).dump(2) + "\n");
  json manifest = {
      {"format", kFormat},
      {"name", kName},
      {"version", labels.version},
      {"platform", labels.platform},
      {"artifact", kArtifact},
      {"program_type", kProgramType},
      {"object_file", kObjectFile},
      {"entry_function", kEntryFunction},
      {"map_name", kChainingMap},
      {"pinned_maps", kPinnedMaps},
      {"license", facts->license},
      {"min_kernel", kMinKernel},
      {"dns_steer_abi", DNSPROXY_STEER_ABI},
      {"files",
       {{kObjectFile, {{"sha256", sha256_hex(object)}}},
        {kPayloadFile, {{"sha256", sha256_hex(payload)}}}}},
  };
  std::vector<PackageFile> files = {
      {path_in_archive(kObjectFile), {object.begin(), object.end()}},
      {path_in_archive(kPayloadFile), payload},
      {path_in_archive(kManifestFile), bytes_of(manifest.dump(2) + "\n")},
  };
  auto archive = pack_archive(files);
  if (!archive) return tl::unexpected(archive.error());
  return BuiltPackage{.relative_path = std::string(kName) + "/" + labels.version + "/" +
                                       labels.platform + "/" + kArtifact,
                      .archive = std::move(*archive)};
}

Result<VerifiedPackage> verify_package(std::span<const uint8_t> artifact,
                                       const std::string& signature_text,
                                       const std::string& public_key_text) {
  if (sodium_init() < 0) return fail("libsodium failed to initialise");
  auto key = parse_public_key(public_key_text);
  if (!key) return tl::unexpected(key.error());
  if (signature_text.empty()) return fail("unsigned: the signature is empty");
  auto signature = parse_signature(signature_text);
  if (!signature) return tl::unexpected(signature.error());
  if (auto valid = check_signature(artifact, *signature, *key); !valid)
    return tl::unexpected(valid.error());

  // Signed by the trusted key. What follows catches a signer's mistakes, not an attacker's.
  auto files = unpack_archive(artifact);
  if (!files) return tl::unexpected(files.error());
  std::map<std::string, const PackageFile*> by_name;
  for (const PackageFile& file : *files) {
    const std::string prefix = std::string(kBaseDir) + "/";
    const std::string name = file.path.starts_with(prefix) ? file.path.substr(prefix.size()) : "";
    if (name != kObjectFile && name != kPayloadFile && name != kManifestFile)
      return fail("the archive holds an unexpected file '", file.path, "'");
    by_name[name] = &file;
  }
  for (const char* name : {kObjectFile, kPayloadFile, kManifestFile}) {
    if (!by_name.contains(name)) return fail("the archive lacks ", path_in_archive(name));
  }
  const std::vector<uint8_t>& manifest_bytes = by_name[kManifestFile]->bytes;
  const json manifest = json::parse(manifest_bytes.begin(), manifest_bytes.end(), nullptr, false);
  if (manifest.is_discarded() || !manifest.is_object())
    return fail("manifest.json is not a JSON object");
  const auto hashes = manifest.find("files");
  if (hashes == manifest.end() || !hashes->is_object() || hashes->size() != 2)
    return fail("manifest: 'files' must list ", kObjectFile, " and ", kPayloadFile);
  for (const char* name : {kObjectFile, kPayloadFile}) {
    const auto listed = hashes->find(name);
    if (listed == hashes->end() || !listed->is_object() || !listed->contains("sha256"))
      return fail("manifest: no sha256 for ", name);
    if (listed->at("sha256") != sha256_hex(by_name[name]->bytes))
      return fail(name, ": SHA-256 differs from the manifest's");
  }
  const std::vector<uint8_t>& object = by_name[kObjectFile]->bytes;
  auto facts = inspect_object(object);
  if (!facts) return fail(kObjectFile, ": ", facts.error().message);
  if (auto labelled = check_labels(manifest, *facts); !labelled)
    return tl::unexpected(labelled.error());

  VerifiedPackage verified;
  verified.name = kName;
  verified.version = field(manifest, "version").value_or("");
  verified.platform = field(manifest, "platform").value_or("");
  verified.license = facts->license;
  verified.min_kernel = field(manifest, "min_kernel").value_or("");
  verified.key_id = key_id_text(key->id);
  verified.trusted_comment = signature->trusted_comment;
  verified.object = object;
  return verified;
}

Result<VerifiedPackage> verify_package_files(const std::string& artifact_path,
                                             const std::string& public_key_path) {
  auto artifact = read_file(artifact_path);
  if (!artifact) return tl::unexpected(artifact.error());
  const std::string signature_path = artifact_path + ".minisig";
  std::ifstream signature_file(signature_path, std::ios::binary);
  if (!signature_file) {
    return fail("unsigned: no signature ", signature_path,
                " (sign the package: minisign -S -s KEY -m ", artifact_path, ")");
  }
  const std::string signature{std::istreambuf_iterator<char>(signature_file),
                              std::istreambuf_iterator<char>()};
  auto key = read_file(public_key_path);
  if (!key) return tl::unexpected(key.error());
  const std::span<const uint8_t> bytes(reinterpret_cast<const uint8_t*>(artifact->data()),
                                       artifact->size());
  auto verified = verify_package(bytes, signature, *key);
  if (!verified) return fail(artifact_path, ": ", verified.error().message);
  return verified;
}

Result<void> check_min_kernel(const std::string& min_kernel) {
  utsname system{};
  unsigned want_major = 0, want_minor = 0, major = 0, minor = 0;
  if (uname(&system) != 0 || std::sscanf(system.release, "%u.%u", &major, &minor) != 2)
    return fail("cannot read the running kernel's version");
  if (std::sscanf(min_kernel.c_str(), "%u.%u", &want_major, &want_minor) != 2)
    return fail("minimum kernel '", min_kernel, "' is not MAJOR.MINOR");
  if (major < want_major || (major == want_major && minor < want_minor))
    return fail("the package needs kernel ", min_kernel, " or later, this is ", system.release);
  return {};
}

}  // namespace dnsproxy::datapath
