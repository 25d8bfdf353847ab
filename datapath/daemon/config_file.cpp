#include "datapath/daemon/config_file.h"

#include <charconv>
#include <fstream>
#include <limits>
#include <map>
#include <type_traits>

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

namespace dnsproxy::daemon {
namespace {

constexpr Knob kKnobs[] = {
    {"interfaces", "-i,--interface", "interface to serve (repeat for each)", &Config::interfaces},
    {"forward-all", "--forward-all", "forward every DNS packet to its next hop, no policy",
     &Config::forward_all},
    {"policy", "--policy",
     "policy file (tools/policy.example.yaml): decide every query, track every response",
     &Config::policy_file},
    {"deny-rcode", "--deny-rcode", "answer to a denied query: refused|nxdomain",
     &Config::deny_rcode},
    {"max-delay", "--max-delay", "ms a response may wait for its addresses to be plumbed",
     &Config::max_delay},
    {"on-max-delay", "--on-max-delay", "what a response gets at the max delay: release|servfail",
     &Config::on_max_delay},
    {"release-before-plumb", "--release-before-plumb",
     "ablation: release responses at once, without waiting for plumbing",
     &Config::release_before_plumb},
    {"max-parked", "--max-parked", "responses parked per worker, at most", &Config::max_parked},
    {"plumb-batch-max", "--plumb-batch-max", "addresses per plumbing batch to the agent, at most",
     &Config::plumb_batch_max},
    {"plumb-batch-delay", "--plumb-batch-delay",
     "us a plumbing batch waits after its first address (0: sent at the next loop pass)",
     &Config::plumb_batch_delay},
    {"agent-plumb-delay", "--agent-plumb-delay",
     "ms the embedded agent waits before its map write and ACK (experiments)",
     &Config::agent_plumb_delay},
    {"agent", "--agent",
     "external agent's socket, unix:PATH (dnsproxy-agent): it owns the pinned maps under "
     "--pin-dir, sends the policy and plumbs over gRPC; default: the embedded agent (--policy)",
     &Config::agent},
    {"agent-uid", "--agent-uid",
     "uid the --agent peer must run as (SO_PEERCRED); a peer with another uid is refused",
     &Config::agent_uid},
    {"policy-state", "--policy-state",
     "with --agent: the last policy the agent sent, kept here (atomically) and served at start "
     "until the agent answers; \"\" keeps none",
     &Config::policy_state},
    {"no-l3-guard", "--no-l3-guard",
     "do not load l3_guard (the L3 toFQDNs check in XDP): the node's own policy enforces L3",
     InvertedBool{&Config::l3_guard}},
    {"dns-port", "--dns-port", "UDP port that carries DNS (repeatable)", &Config::dns_ports},
    {"xdp-mode", "--xdp-mode", "auto|native|generic", &Config::xdp_mode},
    {"bind-mode", "--bind-mode", "AF_XDP bind: auto|zerocopy|copy", &Config::bind_mode},
    {"queues", "--queues", "queues per interface (default 0: all of them)", &Config::queues},
    {"cpus", "--cpus", "worker CPUs, one worker each, e.g. 0,1", &Config::cpus, true},
    {"frame-size", "--frame-size", "UMEM frame size: 2048 or 4096", &Config::frame_size},
    {"umem-frames", "--umem-frames", "frames per worker UMEM", &Config::umem_frames},
    {"ring-size", "--ring-size", "size of every AF_XDP ring", &Config::ring_size},
    {"batch-size", "--batch-size", "packets per RX batch", &Config::batch_size},
    {"busy-poll", "--busy-poll", "busy-poll the sockets instead of sleeping in poll()",
     &Config::busy_poll},
    {"fail-closed", "--fail-closed", "drop DNS on queues without a socket (default: pass)",
     &Config::fail_closed},
    {"tcp-dns", "--tcp-dns",
     "TCP to a DNS port from an endpoint with DNS rules (not policed yet): drop|pass",
     &Config::tcp_dns},
    {"pin-dir", "--pin-dir", "bpffs directory for the program's maps", &Config::pin_dir},
    {"no-mount-bpffs", "--no-mount-bpffs",
     "never mount a bpf filesystem on /sys/fs/bpf (by default one is mounted there when "
     "--pin-dir is under it and nothing is mounted)",
     InvertedBool{&Config::mount_bpffs}},
    {"chain-into", "--chain-into",
     "pinned program array whose slot 0 the interfaces' XDP owner tail-calls (an L3AF root or "
     "the previous l3afd program): dns_steer goes in front of what the slot held, instead of "
     "attaching to the interfaces",
     &Config::chain_into},
    {"bpf-package", "--bpf-package",
     "load dns_steer from this signed package (dns_steer.tar.gz, its signature beside it as "
     ".minisig) instead of the embedded copy; needs --trusted-key",
     &Config::bpf_package},
    {"trusted-key", "--trusted-key", "minisign public key that must have signed --bpf-package",
     &Config::trusted_key},
    {"stats-file", "--stats-file",
     "write a JSON stats snapshot here (atomically) every --stats-interval, on SIGUSR1 and at exit",
     &Config::stats_file},
    {"stats-interval", "--stats-interval", "ms between stats snapshots", &Config::stats_interval},
    {"metrics", "--metrics", "serve Prometheus metrics on ADDR:PORT (GET /metrics); default off",
     &Config::metrics},
    {"admin-socket", "--admin-socket",
     "listen for dnsproxyctl on this unix socket (mode 0600, root only); default off",
     &Config::admin_socket},
    {"verbose", "-v,--verbose", "debug log, including libbpf's and libxdp's messages",
     &Config::verbose},
    {"log-format", "--log-format", "text, or json (one object per line, for collectors)",
     &Config::log_format},
};

// "FILE:LINE: key 'k': " (yaml-cpp marks are 0-based).
std::string where(const std::string& path, const YAML::Mark& mark, std::string_view key) {
  return fmt::format("{}:{}: key '{}': ", path, mark.line + 1, key);
}

// What a wrong value looked like, for the message.
std::string got(const YAML::Node& node) {
  if (node.IsScalar()) return " (got '" + node.Scalar() + "')";
  if (node.IsSequence()) return " (got a list)";
  if (node.IsMap()) return " (got a mapping)";
  return " (got nothing)";
}

template <class T>
bool parse_unsigned(const std::string& text, T& out) {
  uint64_t value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size() ||
      value > std::numeric_limits<T>::max())
    return false;
  out = static_cast<T>(value);
  return true;
}

bool parse_bool(const std::string& text, bool& out) {
  if (text == "true") return out = true, true;
  if (text == "false") return out = false, true;
  return false;
}

template <class T>
constexpr std::string_view type_name() {
  if constexpr (std::is_same_v<T, std::string>)
    return "a string";
  else if constexpr (std::is_same_v<T, bool>)
    return "true or false";
  else if constexpr (std::is_same_v<T, uint16_t>)
    return "an integer 0..65535";
  else
    return "an unsigned integer";
}

// One scalar node into `out`; false when it is not a scalar of that type.
template <class T>
bool scalar_into(const YAML::Node& node, T& out) {
  if (!node.IsScalar()) return false;
  const std::string& text = node.Scalar();
  if constexpr (std::is_same_v<T, std::string>) {
    out = text;
    return true;
  } else if constexpr (std::is_same_v<T, bool>) {
    return parse_bool(text, out);
  } else {
    return parse_unsigned(text, out);
  }
}

Setup<void> apply(const std::string& path, const std::string& key, const YAML::Node& value,
                  const Field& field, Config& config) {
  return std::visit(
      [&](auto member) -> Setup<void> {
        using M = decltype(member);
        if constexpr (std::is_same_v<M, InvertedBool>) {
          bool on = false;
          if (!scalar_into(value, on))
            return failure(kExitBadConfig,
                           where(path, value.Mark(), key) + "expected true or false" + got(value));
          config.*member.member = !on;
          return {};
        } else {
          using T = std::remove_reference_t<decltype(config.*member)>;
          if constexpr (!std::is_same_v<T, std::string> &&
                        requires(T t) { t.push_back(t.front()); }) {
            using E = typename T::value_type;
            T list;
            // A list, or one scalar for a one-element list.
            if (value.IsSequence()) {
              for (const YAML::Node& item : value) {
                E element{};
                if (!scalar_into(item, element))
                  return failure(kExitBadConfig, where(path, item.Mark(), key) + "expected " +
                                                     std::string(type_name<E>()) + " in the list" +
                                                     got(item));
                list.push_back(element);
              }
            } else {
              E element{};
              if (!scalar_into(value, element))
                return failure(kExitBadConfig, where(path, value.Mark(), key) +
                                                   "expected a list of " +
                                                   std::string(type_name<E>()) + got(value));
              list.push_back(element);
            }
            config.*member = std::move(list);
            return {};
          } else {
            T parsed{};
            if (!scalar_into(value, parsed))
              return failure(kExitBadConfig, where(path, value.Mark(), key) + "expected " +
                                                 std::string(type_name<T>()) + got(value));
            config.*member = parsed;
            return {};
          }
        }
      },
      field);
}

const Knob* find_knob(std::string_view key) {
  for (const Knob& knob : kKnobs)
    if (knob.key == key) return &knob;
  return nullptr;
}

void copy_field(const Field& field, const Config& from, Config& to) {
  std::visit(
      [&](auto member) {
        if constexpr (std::is_same_v<decltype(member), InvertedBool>)
          to.*member.member = from.*member.member;
        else
          to.*member = from.*member;
      },
      field);
}

// Where each key of the file is, so a bad value found by validate() can point at its line.
Setup<std::map<std::string, int>> load_with_lines(const std::string& path, Config& config) {
  std::ifstream in(path);
  if (!in) return failure(kExitBadConfig, fmt::format("--config {}: cannot read the file", path));
  YAML::Node root;
  try {
    root = YAML::Load(in);
  } catch (const YAML::Exception& error) {
    return failure(kExitBadConfig, fmt::format("{}:{}: {}", path, error.mark.line + 1, error.msg));
  }
  std::map<std::string, int> lines;
  if (root.IsNull()) return lines;  // an empty file changes nothing
  if (!root.IsMap())
    return failure(kExitBadConfig,
                   fmt::format("{}:{}: expected a mapping of keys", path, root.Mark().line + 1));
  for (const auto& entry : root) {
    const std::string key = entry.first.as<std::string>();
    const Knob* knob = find_knob(key);
    if (knob == nullptr)
      return failure(kExitBadConfig, where(path, entry.first.Mark(), key) + "unknown key");
    if (lines.count(key))
      return failure(kExitBadConfig, where(path, entry.first.Mark(), key) + "given twice");
    if (auto applied = apply(path, key, entry.second, knob->field, config); !applied)
      return tl::unexpected(applied.error());
    lines[key] = entry.first.Mark().line + 1;
  }
  return lines;
}

}  // namespace

std::span<const Knob> knobs() {
  return kKnobs;
}

std::string_view long_flag(const Knob& knob) {
  const size_t comma = knob.flag.rfind(',');
  return comma == std::string_view::npos ? knob.flag : knob.flag.substr(comma + 1);
}

Setup<void> load_config_file(const std::string& path, Config& config) {
  auto loaded = load_with_lines(path, config);
  if (!loaded) return tl::unexpected(loaded.error());
  return {};
}

Setup<Config> resolve_config(const Config& cli, const std::set<std::string>& given,
                             const std::string& config_path) {
  Config config;
  std::map<std::string, int> lines;
  if (!config_path.empty()) {
    auto loaded = load_with_lines(config_path, config);
    if (!loaded) return tl::unexpected(loaded.error());
    lines = std::move(*loaded);
  }
  for (const Knob& knob : kKnobs)
    if (given.count(std::string(knob.key))) {
      copy_field(knob.field, cli, config);
      lines.erase(std::string(knob.key));  // the flag's value is in force, not the file's
    }
  Config checked = config;  // validate() fills defaults in; --print-config shows what was given
  if (auto valid = validate(checked); !valid) {
    std::string message = valid.error().message;
    for (const auto& [key, line] : lines)
      if (const Knob* knob = find_knob(key);
          message.find(std::string(long_flag(*knob))) != std::string::npos)
        message += fmt::format(" ({}:{}: key '{}')", config_path, line, key);
    return failure(valid.error().code, message);
  }
  return config;
}

std::vector<std::string_view> changed_keys(const Config& a, const Config& b) {
  std::vector<std::string_view> changed;
  for (const Knob& knob : kKnobs) {
    const bool differs = std::visit(
        [&](auto member) {
          if constexpr (std::is_same_v<decltype(member), InvertedBool>)
            return a.*member.member != b.*member.member;
          else
            return a.*member != b.*member;
        },
        knob.field);
    if (differs) changed.push_back(knob.key);
  }
  return changed;
}

// Only the log level today: everything else shapes sockets, UMEMs, threads or the program.
bool applies_live(std::string_view key) {
  return key == "verbose" || key == "log-format";
}

std::string to_yaml(const Config& config) {
  YAML::Emitter out;
  out << YAML::BeginMap;
  for (const Knob& knob : kKnobs) {
    out << YAML::Key << std::string(knob.key) << YAML::Value;
    std::visit(
        [&](auto member) {
          if constexpr (std::is_same_v<decltype(member), InvertedBool>) {
            out << !(config.*member.member);
          } else {
            const auto& value = config.*member;
            using T = std::remove_cvref_t<decltype(value)>;
            if constexpr (requires { value.begin(); } && !std::is_same_v<T, std::string>) {
              out << YAML::Flow << YAML::BeginSeq;
              for (const auto& element : value) out << element;
              out << YAML::EndSeq;
            } else if constexpr (std::is_same_v<T, std::string>) {
              out << YAML::DoubleQuoted << value;
            } else {
              out << value;
            }
          }
        },
        knob.field);
  }
  out << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

}  // namespace dnsproxy::daemon
